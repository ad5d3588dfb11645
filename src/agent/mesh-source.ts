/**
 * The agent's mesh source: once Cluster Mesh is enabled for its cluster
 * (mesh.json appears), it reads the cluster's own clustermesh etcd (where
 * kvstoremesh caches every remote cluster) through RemoteState and feeds the
 * agent: remote nodes -> routes to their pod CIDRs, remote ipcache -> the
 * ipcache map, remote services -> backends of global services. Disabling
 * the mesh (mesh.json removed) drops all remote state. Changes are coalesced
 * (a bulk sync of thousands of entries is one recompute, not thousands).
 */
import type { ClusterService } from '../clustermesh/remote-state.js';
import { MeshStateSource } from '../clustermesh/agent-source.js';
import { meshEnabled } from '../clustermesh/mesh-files.js';
import type { Logger } from '../util/log.js';
import type { Agent, NodeInfo } from './agent.js';
import type { IPCacheEntry } from '../datapath/types.js';

export interface MeshSourceOptions {
  labCluster: string;
  clusterName: string;
  agent: Agent;
  /** Receives every remote cluster's services (for the service catalog). */
  setRemoteServices: (services: ClusterService[]) => void;
  /** Receives every remote cluster's MCS exports. */
  setRemoteExports?: (list: Array<{ cluster: string; namespace: string; name: string }>) => void;
  logger: Logger;
  /** How often to look for mesh.json (default 2-3 s). */
  pollMs?: number;
  /** Coalescing delay of updates (default 15 ms). */
  batchMs?: number;
}

/** Follows the mesh for one agent (on the clustermesh package's MeshStateSource). */
export class MeshSource {
  private readonly source: MeshStateSource;
  private pending: NodeJS.Timeout | undefined;
  private problemTimer: NodeJS.Timeout | undefined;
  private readonly known = new Set<string>();
  private flushedState: unknown;

  constructor(private readonly o: MeshSourceOptions) {
    this.source = new MeshStateSource({
      labCluster: o.labCluster,
      localCluster: o.clusterName,
      ...(o.pollMs ? { pollMs: o.pollMs } : {}),
      logger: o.logger,
    });
    this.source.on(() => this.schedule());
  }

  start(): void {
    this.source.start();
    // report a mesh that is enabled but unreachable; flush also clears state after a disable
    this.problemTimer = setInterval(() => {
      const enabled = meshEnabled(this.o.labCluster);
      if (enabled && !this.source.state && this.source.lastError) {
        this.o.agent.setProblem('clustermesh', {
          cause: `cannot read the clustermesh etcd: ${this.source.lastError}`,
          hint: 'see `tendril clustermesh status`; the agent retries',
        });
      } else this.o.agent.setProblem('clustermesh', undefined);
      // a new connection whose initial events came before it was published, or a disable
      if (this.source.state !== this.flushedState || (!this.source.state && this.known.size > 0))
        this.flush();
    }, this.o.pollMs ?? 1000);
  }

  private schedule(): void {
    if (this.pending) return;
    this.pending = setTimeout(
      () => {
        this.pending = undefined;
        this.flush();
      },
      Math.min(500, Math.max(this.o.batchMs ?? 15, this.lastFlushMs * 2)),
    );
  }

  /** Pushes the current remote state into the agent. */
  private flush(): void {
    const t0 = performance.now();
    try {
      this.push();
    } finally {
      // a flush over thousands of remote entries spaces out the next one (bulk sync)
      this.lastFlushMs = performance.now() - t0;
    }
  }
  private lastFlushMs = 0;

  private push(): void {
    const rs = this.source.state;
    this.flushedState = rs;
    const seen = new Set<string>();
    const services: ClusterService[] = [];
    const exportsList: Array<{ cluster: string; namespace: string; name: string }> = [];
    for (const c of rs?.clusters() ?? []) {
      if (c.local) continue;
      seen.add(c.name);
      const nodes: NodeInfo[] = [];
      for (const n of c.nodes.values()) {
        const ip = n.addresses.find((a) => a.type === 'InternalIP')?.ip;
        if (!ip) continue;
        const podCIDR = n.podCIDRs.find((x) => !x.includes(':'));
        nodes.push({
          name: `${c.name}/${n.name}`,
          ip,
          ...(podCIDR ? { podCIDR } : {}),
          clusterId: n.clusterID,
        });
      }
      this.o.agent.setNodes(c.name, nodes);
      const ipc: IPCacheEntry[] = [];
      for (const e of c.ipcache.values()) {
        const prefix = e.ip.includes('/') ? e.ip : `${e.ip}/32`;
        ipc.push({ prefix, identity: e.identity, ...(e.hostIP ? { hostIP: e.hostIP } : {}) });
      }
      this.o.agent.setIPCacheSource(`remote:${c.name}`, ipc);
      this.o.agent.policy.setClusterIdentities(c.name, c.identities);
      for (const s of c.services.values()) services.push(s);
      for (const e of c.serviceExports.values())
        exportsList.push({ cluster: e.cluster || c.name, namespace: e.namespace, name: e.name });
    }
    for (const c of [...this.known]) {
      if (seen.has(c)) continue;
      this.o.agent.setNodes(c, []);
      this.o.agent.setIPCacheSource(`remote:${c}`, []);
      this.o.agent.policy.setClusterIdentities(c, new Map());
      this.known.delete(c);
    }
    for (const c of seen) this.known.add(c);
    this.o.setRemoteServices(services);
    this.o.setRemoteExports?.(exportsList);
  }

  async stop(): Promise<void> {
    if (this.problemTimer) clearInterval(this.problemTimer);
    if (this.pending) clearTimeout(this.pending);
    await this.source.stop().catch(() => undefined);
  }
}

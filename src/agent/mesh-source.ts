/**
 * The agent's mesh source: once Cluster Mesh is enabled for its cluster
 * (mesh.json appears), it reads the cluster's own clustermesh etcd (where
 * kvstoremesh caches every remote cluster) through RemoteState and feeds the
 * agent: remote nodes -> routes to their pod CIDRs, remote ipcache -> the
 * ipcache map, remote services -> backends of global services. Disabling
 * the mesh (mesh.json removed) drops all remote state. Changes are coalesced
 * (a bulk sync of thousands of entries is one recompute, not thousands).
 */
import { readFileSync } from 'node:fs';
import { EtcdKVStore } from '../kvstore/etcd.js';
import { RemoteState, type ClusterService } from '../clustermesh/remote-state.js';
import { meshEnabled, meshPaths, readMeshConfig } from '../clustermesh/mesh-files.js';
import type { Logger } from '../util/log.js';
import type { Agent, NodeInfo } from './agent.js';
import type { IPCacheEntry } from '../datapath/types.js';

export interface MeshSourceOptions {
  labCluster: string;
  clusterName: string;
  agent: Agent;
  /** Receives every remote cluster's services (for the service catalog). */
  setRemoteServices: (services: ClusterService[]) => void;
  logger: Logger;
  /** How often to look for mesh.json (default 3 s). */
  pollMs?: number;
  /** Coalescing delay of updates (default 15 ms). */
  batchMs?: number;
}

/** Follows the mesh for one agent. */
export class MeshSource {
  private store: EtcdKVStore | undefined;
  private rs: RemoteState | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pending: NodeJS.Timeout | undefined;
  private readonly known = new Set<string>();
  private stopped = false;
  private starting = false;
  private readonly log: Logger;

  constructor(private readonly o: MeshSourceOptions) {
    this.log = o.logger.child({ subsys: 'mesh-source' });
  }

  start(): void {
    void this.check();
    this.timer = setInterval(() => void this.check(), this.o.pollMs ?? 3000);
  }

  private async check(): Promise<void> {
    if (this.stopped || this.starting) return;
    const enabled = meshEnabled(this.o.labCluster);
    if (enabled && !this.rs) await this.connect();
    else if (!enabled && this.rs) await this.disconnect();
  }

  private async connect(): Promise<void> {
    const cfg = readMeshConfig(this.o.labCluster);
    if (!cfg) return;
    this.starting = true;
    const p = meshPaths(this.o.labCluster);
    try {
      const store = new EtcdKVStore({
        endpoints: [`https://${cfg.listenIP}:2379`],
        tls: { ca: readFileSync(p.caCert), cert: readFileSync(p.agentCert), key: readFileSync(p.agentKey) },
        logger: this.log,
      });
      const rs = new RemoteState({ store, localCluster: this.o.clusterName, logger: this.log });
      rs.on((ev) => {
        if (ev.type === 'initial-sync' || ev.type === 'cluster' || ev.type === 'upsert' || ev.type === 'delete') this.schedule();
      });
      await rs.start();
      this.store = store;
      this.rs = rs;
      this.o.agent.setProblem('clustermesh', undefined);
      this.log.info('following the mesh', { etcd: cfg.listenIP });
      this.flush();
    } catch (err) {
      this.o.agent.setProblem('clustermesh', {
        cause: `cannot read the clustermesh etcd: ${(err as Error).message}`,
        hint: 'see `tendril clustermesh status`; the agent retries every few seconds',
      });
    } finally {
      this.starting = false;
    }
  }

  private async disconnect(): Promise<void> {
    await this.rs?.stop().catch(() => undefined);
    this.store?.close?.();
    this.rs = undefined;
    this.store = undefined;
    for (const c of this.known) {
      this.o.agent.setNodes(c, []);
      this.o.agent.setIPCacheSource(`remote:${c}`, []);
    }
    this.known.clear();
    this.o.setRemoteServices([]);
    this.log.info('mesh disabled: remote state dropped');
  }

  private schedule(): void {
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.flush();
    }, this.o.batchMs ?? 15);
  }

  /** Pushes the current remote state into the agent. */
  private flush(): void {
    const rs = this.rs;
    if (!rs) return;
    const seen = new Set<string>();
    const services: ClusterService[] = [];
    for (const c of rs.clusters()) {
      if (c.local) continue;
      seen.add(c.name);
      const nodes: NodeInfo[] = [];
      for (const n of c.nodes.values()) {
        const ip = n.addresses.find((a) => a.type === 'InternalIP')?.ip;
        if (!ip) continue;
        const podCIDR = n.podCIDRs.find((x) => !x.includes(':'));
        nodes.push({ name: `${c.name}/${n.name}`, ip, ...(podCIDR ? { podCIDR } : {}), clusterId: n.clusterID });
      }
      this.o.agent.setNodes(c.name, nodes);
      const ipc: IPCacheEntry[] = [];
      for (const e of c.ipcache.values()) {
        const prefix = e.ip.includes('/') ? e.ip : `${e.ip}/32`;
        ipc.push({ prefix, identity: e.identity, ...(e.hostIP ? { hostIP: e.hostIP } : {}) });
      }
      this.o.agent.setIPCacheSource(`remote:${c.name}`, ipc);
      for (const s of c.services.values()) services.push(s);
    }
    for (const c of [...this.known]) {
      if (seen.has(c)) continue;
      this.o.agent.setNodes(c, []);
      this.o.agent.setIPCacheSource(`remote:${c}`, []);
      this.known.delete(c);
    }
    for (const c of seen) this.known.add(c);
    this.o.setRemoteServices(services);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.pending) clearTimeout(this.pending);
    await this.rs?.stop().catch(() => undefined);
    this.store?.close?.();
  }
}

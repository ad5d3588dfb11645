/**
 * The agent's mesh source: once its clustermesh config directory
 * (`--clustermesh-config`, Cilium's `clustermesh-config` shape) names a remote
 * cluster, it reads the etcd those files name (the cluster's own clustermesh
 * etcd, where kvstoremesh caches every remote) through RemoteState and feeds
 * the agent: remote nodes -> routes to their pod CIDRs, remote ipcache -> the
 * ipcache map, remote services -> backends of global services. A remote whose
 * file goes away (disconnect, disable) is dropped. Changes are coalesced
 * (a bulk sync of thousands of entries is one recompute, not thousands).
 */
import type { ClusterService } from '../clustermesh/remote-state.js';
import type { IPCacheEntry as RemoteIPCacheEntry, StateKind } from '../clustermesh/keys.js';
import { MeshStateSource } from '../clustermesh/agent-source.js';
import { readClusterMeshConfig } from '../clustermesh/clustermesh-config.js';
import type { Logger } from '../util/log.js';
import type { Agent, NodeInfo } from './agent.js';
import type { IPCacheEntry } from '../datapath/types.js';
import { Coalescer } from './coalesce.js';

export interface MeshSourceOptions {
  /** The clustermesh config directory (one etcd config file per remote cluster). */
  configDir: string;
  clusterName: string;
  agent: Agent;
  /** Receives every remote cluster's services (for the service catalog). */
  setRemoteServices: (services: ClusterService[]) => void;
  /** Receives every remote cluster's MCS exports. */
  setRemoteExports?: (list: Array<{ cluster: string; namespace: string; name: string }>) => void;
  logger: Logger;
  /** How often to read the config directory (default 2 s). */
  pollMs?: number;
  /** Upper bound of the spacing between two pushes after an expensive one (default 500 ms). */
  maxBatchMs?: number;
  /** Seconds from a remote change reaching this agent to its state being applied (metrics). */
  onPropagated?: (seconds: number) => void;
  /** The mesh state to follow (tests); default a MeshStateSource on `configDir`. */
  stateSource?: MeshStateFollower;
}

/** What MeshSource needs of a MeshStateSource (tests hand in one over a memory store). */
export type MeshStateFollower = Pick<
  MeshStateSource,
  'on' | 'start' | 'stop' | 'state' | 'lastError' | 'remoteNames'
>;

/** One remote cluster as the agent's mesh source sees it (metrics, status). */
export interface RemoteClusterView {
  name: string;
  /** Every kind synced, not stale. */
  ready: boolean;
  connected: boolean;
  stale: boolean;
}

/** Follows the mesh for one agent (on the clustermesh package's MeshStateSource). */
export class MeshSource {
  private readonly source: MeshStateFollower;
  private readonly pushes: Coalescer;
  private problemTimer: NodeJS.Timeout | undefined;
  private readonly known = new Set<string>();
  private flushedState: unknown;
  private flushedNames = '';
  private meshSyncTimer: NodeJS.Timeout | undefined;
  private meshSyncSent = false;

  constructor(private readonly o: MeshSourceOptions) {
    this.source =
      o.stateSource ??
      new MeshStateSource({
        configDir: o.configDir,
        localCluster: o.clusterName,
        // Remote node pod CIDRs and ipcache IPs inside the local cluster's are refused.
        localPodCIDRs: () => o.agent.localPodCIDRs(),
        ...(o.pollMs ? { pollMs: o.pollMs } : {}),
        logger: o.logger,
      });
    // No fixed delay: a lone change is pushed on the next turn of the event loop; a
    // push over thousands of remote entries spaces out the next one (bulk sync).
    this.pushes = new Coalescer(
      () => {
        try {
          this.push();
        } finally {
          if (this.changedAt !== undefined) {
            this.o.onPropagated?.((performance.now() - this.changedAt) / 1000);
            this.changedAt = undefined;
          }
        }
      },
      { maxDelayMs: o.maxBatchMs ?? 500 },
    );
    this.source.on((ev) => {
      // A cluster's flags (synced, stale, connected) or config: nothing pushed depends on
      // them (an ID change re-applies its records, as entry events). Each remote's flags
      // change several times during a sync: a rebuild of its entries each time was most
      // of a 250-cluster sync's pushes.
      if (ev.type === 'cluster' && ev.change === 'updated') return;
      this.changedAt ??= performance.now();
      // only what changed is pushed again: a change of one remote cluster does not
      // re-diff the other clusters' entries (250 clusters x 1,000 endpoints)
      // and within a cluster only the kinds that changed: an endpoint's new identity does
      // not rebuild the routes over every remote node (250 x 100 nodes)
      if (ev.type === 'initial-sync') this.allDirty = true;
      else {
        let kinds = this.dirty.get(ev.cluster);
        if (!kinds) this.dirty.set(ev.cluster, (kinds = new Set()));
        kinds.add(ev.type === 'cluster' ? 'cluster' : ev.kind);
        // and within the kind 'ip' only the entries that changed: an endpoint's new identity
        // is one ipcache update, not a diff over its cluster's every entry
        if (ev.type !== 'cluster' && ev.kind === 'ip') {
          let names = this.ipDirty.get(ev.cluster);
          if (!names) this.ipDirty.set(ev.cluster, (names = new Set()));
          names.add(ev.name);
        }
        if (ev.type === 'cluster' || ev.kind === 'services' || ev.kind === 'serviceexports')
          this.servicesDirty = true;
      }
      this.pushes.schedule();
    });
  }
  /** Clusters with changes since the last push, with the kinds that changed ('cluster': added or removed); everything when allDirty. */
  private readonly dirty = new Map<string, Set<StateKind | 'cluster'>>();
  /** Per cluster, the names (IPs or CIDRs) of its ipcache entries changed since the last push. */
  private readonly ipDirty = new Map<string, Set<string>>();
  private allDirty = true;
  private servicesDirty = true;

  start(): void {
    this.source.start();
    // report a mesh that is enabled but unreachable; flush also clears state after a disable
    this.problemTimer = setInterval(() => {
      const enabled = this.meshConfigured();
      // Not in a mesh: nothing remote to wait for; adopted remote leftovers may go.
      if (!enabled) this.markMeshSynced(0);
      if (enabled && !this.source.state && this.source.lastError) {
        this.o.agent.setProblem('clustermesh', {
          cause: `cannot follow the mesh: ${this.source.lastError}`,
          hint: 'see `tendril clustermesh status`; the agent retries',
        });
      } else this.o.agent.setProblem('clustermesh', undefined);
      // a new connection whose initial events came before it was published, a disable,
      // or a remote added to / removed from the config directory
      const names = [...this.source.remoteNames].sort().join(',');
      if (
        this.source.state !== this.flushedState ||
        (!this.source.state && this.known.size > 0) ||
        names !== this.flushedNames
      ) {
        this.flushedNames = names;
        this.flush();
      }
    }, this.o.pollMs ?? 1000);
  }

  /** Remote clusters configured, with their sync state. */
  remoteClusters(): RemoteClusterView[] {
    const rs = this.source.state;
    const byName = new Map((rs?.clusters() ?? []).filter((c) => !c.local).map((c) => [c.name, c]));
    return [...this.source.remoteNames].sort().map((name) => {
      const c = byName.get(name);
      return {
        name,
        ready: c ? Object.values(c.synced).every(Boolean) && !c.stale : false,
        connected: c?.connected ?? false,
        stale: c?.stale ?? false,
      };
    });
  }

  /** When the oldest change not yet applied arrived (performance.now()). */
  private changedAt: number | undefined;

  /** Pushes the whole current remote state into the agent now. */
  private flush(): void {
    this.allDirty = true;
    this.pushes.runNow();
  }

  private push(): void {
    const rs = this.source.state;
    if (rs !== this.flushedState) this.allDirty = true;
    this.flushedState = rs;
    const all = this.allDirty;
    const dirty = new Map(this.dirty);
    const ipDirty = new Map(this.ipDirty);
    const servicesDirty = all || this.servicesDirty;
    this.allDirty = false;
    this.dirty.clear();
    this.ipDirty.clear();
    this.servicesDirty = false;
    const seen = new Set<string>();
    const services: ClusterService[] = [];
    const exportsList: Array<{ cluster: string; namespace: string; name: string }> = [];
    const wanted = this.source.remoteNames;
    const nodeUpdates: Array<[string, NodeInfo[]]> = [];
    // Services are pushed over every cluster; otherwise only the clusters that changed are
    // looked at (one endpoint's change does not walk 250 clusters).
    const every = all || servicesDirty;
    const candidates = every
      ? (rs?.clusters() ?? [])
      : [...dirty.keys()].flatMap((n) => rs?.cluster(n) ?? []);
    for (const c of candidates) {
      if (c.local || !wanted.has(c.name)) continue;
      seen.add(c.name);
      if (servicesDirty) {
        for (const s of c.services.values()) services.push(s);
        for (const e of c.serviceExports.values())
          exportsList.push({ cluster: e.cluster || c.name, namespace: e.namespace, name: e.name });
      }
      const kinds = dirty.get(c.name);
      const fresh = all || !this.known.has(c.name) || kinds?.has('cluster') === true;
      if (!fresh && !kinds) continue;
      const changed = (k: StateKind) => fresh || kinds!.has(k);
      if (fresh) {
        // a cluster new to the agent (or added again), or everything (initial sync, a new
        // connection, remotes configured): its whole ipcache list replaces what the agent had
        const ipc: IPCacheEntry[] = [];
        const pods: Array<{ ip: string; namespace: string; podName: string }> = [];
        for (const e of c.ipcache.values()) {
          ipc.push(ipcacheEntryOf(e));
          const pod = remotePodOf(e);
          if (pod) pods.push({ ip: e.ip, ...pod });
        }
        this.o.agent.setIPCacheSource(`remote:${c.name}`, ipc);
        // flows name the pods of connected clusters too
        this.o.agent.flowMeta.setRemotePeers(c.name, pods);
      } else if (kinds!.has('ip')) {
        // only the entries that changed: work in proportion to the change, not the cluster
        const source = `remote:${c.name}`;
        for (const name of ipDirty.get(c.name) ?? []) {
          const prefix = prefixOf(name);
          // "10.1.2.3" and "10.1.2.3/32" are one prefix: the other spelling may still hold it
          const e =
            c.ipcache.get(name) ??
            (name.endsWith('/32') ? c.ipcache.get(name.slice(0, -3)) : c.ipcache.get(`${name}/32`));
          this.o.agent.updateIPCacheEntry(source, prefix, e && ipcacheEntryOf(e));
          if (!name.includes('/')) {
            const pod = e && remotePodOf(e);
            this.o.agent.flowMeta.updateRemotePeer(c.name, name, pod);
          }
        }
      }
      if (changed('identities')) this.o.agent.policy.setClusterIdentities(c.name, c.identities);
      if (!changed('nodes')) continue;
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
      nodeUpdates.push([c.name, nodes]);
    }
    for (const c of every ? [...this.known] : [...dirty.keys()].filter((n) => this.known.has(n))) {
      if (seen.has(c)) continue;
      nodeUpdates.push([c, []]);
      this.o.agent.setIPCacheSource(`remote:${c}`, []);
      this.o.agent.flowMeta.setRemotePeers(c, []);
      this.o.agent.policy.setClusterIdentities(c, new Map());
      this.known.delete(c);
    }
    // one recompute of routes and node ipcache entries for every cluster whose nodes changed
    if (nodeUpdates.length) this.o.agent.setNodeSources(nodeUpdates);
    for (const c of seen) this.known.add(c);
    if (servicesDirty) {
      this.o.setRemoteServices(services);
      this.o.setRemoteExports?.(exportsList);
    }
    // The mesh answered (its full initial state is pushed): adopted remote state it did not
    // confirm may go. Later, so the service catalog (it coalesces for up to 500 ms) has
    // turned the remote services into backends first.
    if (rs?.started) this.markMeshSynced(1500);
  }

  /**
   * Whether the config directory names a remote cluster now (read directly: the
   * source's view lags until its first poll). A directory that cannot be read
   * counts as configured, so adopted remote state is kept, not dropped.
   */
  private meshConfigured(): boolean {
    try {
      return readClusterMeshConfig(this.o.configDir).length > 0;
    } catch {
      return true;
    }
  }

  /** Tells the agent, once, that the mesh's state has been delivered. */
  private markMeshSynced(afterMs: number): void {
    if (this.meshSyncSent || this.meshSyncTimer) return;
    this.meshSyncTimer = setTimeout(() => {
      this.meshSyncSent = true;
      this.o.agent.meshSynced();
    }, afterMs);
  }

  async stop(): Promise<void> {
    if (this.problemTimer) clearInterval(this.problemTimer);
    if (this.meshSyncTimer) clearTimeout(this.meshSyncTimer);
    this.pushes.stop();
    await this.source.stop().catch(() => undefined);
  }
}

/** The ipcache prefix of a remote entry's IP or CIDR (an address is a /32). */
function prefixOf(ip: string): string {
  return ip.includes('/') ? ip : `${ip}/32`;
}

/** A remote ipcache record as the agent's ipcache entry. */
function ipcacheEntryOf(e: RemoteIPCacheEntry): IPCacheEntry {
  // one object of one shape per entry (no spread: 250,000 of them in a full sync)
  const out: IPCacheEntry = { prefix: prefixOf(e.ip), identity: e.identity };
  if (e.hostIP) out.hostIP = e.hostIP;
  return out;
}

/** The pod a remote ipcache record names (flows show it), if it names one. */
function remotePodOf(e: RemoteIPCacheEntry): { namespace: string; podName: string } | undefined {
  if (!e.k8sPodName || !e.k8sNamespace || e.ip.includes('/')) return undefined;
  return { namespace: e.k8sNamespace, podName: e.k8sPodName };
}

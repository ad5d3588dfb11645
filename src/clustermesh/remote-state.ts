/**
 * The agents' view of the mesh: watches the LOCAL etcd (kvstoremesh's
 * cilium/cache/... copies of every remote cluster, their cluster configs,
 * synced canaries and kvstoremesh status records, and optionally the own
 * cluster's cilium/state/...) and keeps, per cluster, its nodes, services,
 * identities, ipcache entries and service exports, with synced/stale flags
 * and change events. Agents plug it into their datapath reconcilers:
 *
 *   const rs = new RemoteState({ store: localEtcd, localCluster: 'cluster1' });
 *   rs.on((ev) => { if (ev.type === 'upsert' && ev.kind === 'nodes') addRoutes(ev.value); ... });
 *   await rs.start();            // resolves after the initial list is applied
 *   rs.cluster('cluster2')?.services.get('default/echo')
 *
 * Decoding errors skip the entry (logged, counted in `errors`); they never stop the watch.
 * Every remote record is also checked (validate-remote.ts: its cluster's name
 * and ID, routable CIDRs outside the local pod CIDRs, ...) before it is kept or
 * announced; refused ones are listed per cluster in `rejected`.
 */
import type { KVStore, Watch, WatchEvent } from '../kvstore/types.js';
export type { ClusterService } from '../services/cluster-service.js';
import { nopLogger, type Logger } from '../util/log.js';
import {
  decodeClusterConfig,
  decodeIdentityLabels,
  decodeIPCacheEntry,
  decodeNode,
  decodeServiceExport,
  KVSTOREMESH_STATUS_PREFIX,
  parseCacheKey,
  parseIdentityID,
  parseStateKey,
  ROOT_PREFIX,
  STATE_KINDS,
  SYNCED_PREFIX,
  type ClusterConfig,
  type IPCacheEntry,
  type KVStoreMeshRemoteState,
  type MeshNode,
  type MeshServiceExport,
  type StateKind,
} from './keys.js';

import { decodeClusterService, type ClusterService } from '../services/cluster-service.js';
import { checkRemoteRecord, type RejectedRecord } from './validate-remote.js';

/** Rejected records kept per cluster (the total is counted beyond it). */
const MAX_REJECTED_KEPT = 100;

/** What one cluster looks like through the local etcd. */
export interface MeshClusterState {
  name: string;
  /** True for the own cluster (includeLocal). */
  local: boolean;
  config: ClusterConfig | undefined;
  /** By node name. */
  nodes: Map<string, MeshNode>;
  /** By "<namespace>/<name>". */
  services: Map<string, ClusterService>;
  /** Numeric identity -> Cilium label string. */
  identities: Map<number, string>;
  /** By IP. */
  ipcache: Map<string, IPCacheEntry>;
  /** By "<namespace>/<name>". */
  serviceExports: Map<string, MeshServiceExport>;
  /** Per kind: kvstoremesh finished the initial list of the current connection (local canary). */
  synced: Record<StateKind, boolean>;
  /** kvstoremesh says this is the last known state of a disconnected (or resyncing) remote. */
  stale: boolean;
  /** kvstoremesh says it is connected to the remote (true for the local cluster). */
  connected: boolean;
  lastError: string | undefined;
  /** Remote records refused (did not decode or failed validation), by key; at most 100 kept. */
  rejected: Map<string, RejectedRecord>;
  /** Records refused since start (counting those no longer kept). */
  rejectedTotal: number;
}

/** A change. `name` is the map key of the entry ("ns/name", node name, IP, or the identity as a string). */
export type RemoteStateEvent =
  | {
      type: 'upsert';
      cluster: string;
      kind: StateKind;
      name: string;
      value: unknown;
      previous: unknown;
    }
  | { type: 'delete'; cluster: string; kind: StateKind; name: string; previous: unknown }
  /** A cluster appeared, vanished (drained), or its config/synced/stale/connected flags changed. */
  | { type: 'cluster'; cluster: string; change: 'added' | 'removed' | 'updated' }
  /** The initial list has been applied. */
  | { type: 'initial-sync' };

export type RemoteStateListener = (ev: RemoteStateEvent) => void;

export interface RemoteStateOptions {
  /** The local etcd (the agents' certificate may read cilium/). */
  store: Pick<KVStore, 'list' | 'watchPrefix'>;
  /** The own cluster's name (its cilium/cluster-config entry is not a remote). */
  localCluster: string;
  /** Also track the own cluster's cilium/state/... (default false). */
  includeLocal?: boolean;
  /** Decodes a service value (default: decodeClusterService of the service catalog). */
  decodeService?: (value: string) => ClusterService;
  /**
   * The local cluster's pod CIDRs: remote node pod CIDRs and ipcache IPs
   * overlapping them are refused. Default: none known (the other checks still apply).
   */
  localPodCIDRs?: () => readonly string[];
  logger?: Logger;
}

/**
 * What is read of the local etcd without includeLocal: everything under
 * cilium/ except the own cluster's cilium/state/ (its syncer's writes: one
 * event per change in this cluster, which every agent would otherwise be
 * woken for and drop) and the heartbeat. `cilium/c` holds cilium/cache/ and
 * cilium/cluster-config/. Listed in this order, so a canary or status record
 * (read first, older) never promises entries the cache list (read last,
 * newer) lacks; each prefix is watched from its own list's revision.
 */
export const REMOTE_PREFIXES: readonly string[] = [
  SYNCED_PREFIX,
  KVSTOREMESH_STATUS_PREFIX,
  'cilium/c',
];

const kinds = <T>(v: T): Record<StateKind, T> =>
  Object.fromEntries(STATE_KINDS.map((k) => [k, v])) as Record<StateKind, T>;

/** Maintains every mesh cluster's state from the local etcd. */
export class RemoteState {
  private readonly states = new Map<string, MeshClusterState>();
  private readonly listeners = new Set<RemoteStateListener>();
  private readonly log: Logger;
  private watches: Watch[] = [];
  private resyncing = false;
  private initialDone = false;
  /** Entries skipped because they did not decode. */
  errors = 0;
  /** Times the watch broke for good and everything was listed again. */
  resyncs = 0;
  /** Every key applied, with its raw value (to diff a relist against). */
  private readonly known = new Map<string, string>();
  private stopped = false;

  constructor(private readonly opts: RemoteStateOptions) {
    this.log = (opts.logger ?? nopLogger).child({ subsys: 'remote-state' });
  }

  /** Subscribes to changes; returns the unsubscribe function. */
  on(listener: RemoteStateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Lists and starts watching; resolves once the initial state is applied (events for it are emitted). @throws KVStoreError if the list fails. */
  async start(): Promise<void> {
    await this.listAndWatch();
    this.initialDone = true;
    this.emit({ type: 'initial-sync' });
  }

  /**
   * Lists everything and watches from the list's revision. On a relist (the
   * watch broke for good, e.g. its revision was compacted while the store was
   * unreachable), keys that vanished meanwhile are applied as deletions, so
   * consumers see exactly the changes they missed.
   */
  private async listAndWatch(): Promise<void> {
    const prefixes = this.opts.includeLocal ? [ROOT_PREFIX] : REMOTE_PREFIXES;
    const listed = new Map<string, string>();
    const revisions: number[] = [];
    for (const prefix of prefixes) {
      const { kvs, revision } = await this.opts.store.list(prefix);
      for (const kv of kvs) listed.set(kv.key, kv.value);
      revisions.push(revision);
    }
    for (const key of [...this.known.keys()]) if (!listed.has(key)) this.apply(key, undefined);
    // Cluster configs first: records are checked against their cluster's ID.
    const ordered = [...listed].sort(
      ([a], [b]) =>
        Number(!a.startsWith('cilium/cluster-config/')) -
        Number(!b.startsWith('cilium/cluster-config/')),
    );
    for (const [key, value] of ordered) if (this.known.get(key) !== value) this.apply(key, value);
    if (this.stopped) return;
    const watches: Watch[] = [];
    try {
      for (const [i, prefix] of prefixes.entries())
        watches.push(
          await this.opts.store.watchPrefix(prefix, (ev) => this.onEvent(ev), {
            afterRevision: revisions[i]!,
            onError: (err) => {
              if (this.stopped) return;
              this.log.warn('watch of the local etcd broke; listing again', {
                prefix,
                error: err,
              });
              void this.resync();
            },
            onDisconnect: (err) =>
              this.log.warn('lost the local etcd; will resume', { prefix, error: err }),
          }),
        );
    } catch (err) {
      await Promise.all(watches.map((w) => w.close().catch(() => {})));
      throw err;
    }
    this.watches = watches;
  }

  private async resync(): Promise<void> {
    // one resync at a time (every prefix's watch may break at once)
    if (this.resyncing) return;
    this.resyncing = true;
    try {
      await this.resyncOnce();
    } finally {
      this.resyncing = false;
    }
  }

  private async resyncOnce(): Promise<void> {
    const old = this.watches;
    this.watches = [];
    await Promise.all(old.map((w) => w.close().catch(() => {})));
    for (let delay = 200; !this.stopped; delay = Math.min(delay * 2, 5000)) {
      try {
        await this.listAndWatch();
        this.resyncs++;
        return;
      } catch (err) {
        this.log.warn('relist of the local etcd failed; retrying', {
          error: err,
          retryInMs: delay,
        });
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const old = this.watches;
    this.watches = [];
    await Promise.all(old.map((w) => w.close()));
  }

  /** True after start() applied the initial list. */
  get started(): boolean {
    return this.initialDone;
  }

  /** Every remote cluster (and the local one with includeLocal), by name. */
  clusters(): MeshClusterState[] {
    return [...this.states.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** One cluster, or undefined. */
  cluster(name: string): MeshClusterState | undefined {
    return this.states.get(name);
  }

  /** Remote clusters whose every kind is synced and not stale. */
  readyClusters(): string[] {
    return this.clusters()
      .filter((c) => !c.local && STATE_KINDS.every((k) => c.synced[k]) && !c.stale)
      .map((c) => c.name);
  }

  /** Looks up an IP in every cluster's ipcache (local first). */
  lookupIP(ip: string): (IPCacheEntry & { cluster: string }) | undefined {
    for (const c of this.clusters().sort((a, b) => Number(b.local) - Number(a.local))) {
      const e = c.ipcache.get(ip);
      if (e) return { ...e, cluster: c.name };
    }
    return undefined;
  }

  /** Every cluster's ClusterService for ns/name (the input of global service merging). */
  servicesNamed(namespace: string, name: string): ClusterService[] {
    const out: ClusterService[] = [];
    for (const c of this.clusters()) {
      const s = c.services.get(`${namespace}/${name}`);
      if (s) out.push(s);
    }
    return out;
  }

  private emit(ev: RemoteStateEvent): void {
    for (const l of this.listeners) {
      try {
        l(ev);
      } catch (err) {
        this.log.error('listener failed', { error: err, event: ev.type });
      }
    }
  }

  private onEvent(ev: WatchEvent): void {
    if (ev.type === 'put') this.apply(ev.kv.key, ev.kv.value);
    else this.apply(ev.key, undefined);
  }

  private get(name: string, local = false): MeshClusterState {
    let s = this.states.get(name);
    if (!s) {
      s = {
        name,
        local,
        config: undefined,
        nodes: new Map(),
        services: new Map(),
        identities: new Map(),
        ipcache: new Map(),
        serviceExports: new Map(),
        synced: kinds(local),
        stale: false,
        connected: local,
        lastError: undefined,
        rejected: new Map(),
        rejectedTotal: 0,
      };
      this.states.set(name, s);
      this.emit({ type: 'cluster', cluster: name, change: 'added' });
    }
    return s;
  }

  private maybeRemove(s: MeshClusterState): void {
    if (s.local) return;
    const empty =
      s.config === undefined &&
      s.nodes.size +
        s.services.size +
        s.identities.size +
        s.ipcache.size +
        s.serviceExports.size ===
        0;
    if (empty && !STATE_KINDS.some((k) => s.synced[k])) {
      this.states.delete(s.name);
      this.emit({ type: 'cluster', cluster: s.name, change: 'removed' });
    }
  }

  /** Applies one key (value undefined: deleted). */
  private apply(key: string, value: string | undefined): void {
    if (value === undefined) this.known.delete(key);
    else this.known.set(key, value);
    try {
      this.applyUnsafe(key, value);
    } catch (err) {
      this.errors++;
      this.log.warn('skipping an entry that does not decode', { key, error: err });
    }
  }

  private applyUnsafe(key: string, value: string | undefined): void {
    const local = this.opts.localCluster;
    let m: RegExpExecArray | null;
    if ((m = /^cilium\/cluster-config\/([^/]+)$/.exec(key))) {
      const name = m[1]!;
      if (name === local && !this.opts.includeLocal) return;
      const s = value === undefined ? this.states.get(name) : this.get(name, name === local);
      if (!s) return;
      const before = s.config?.id;
      s.config = value === undefined ? undefined : decodeClusterConfig(value);
      this.emit({ type: 'cluster', cluster: name, change: 'updated' });
      if (!s.local && s.config && s.config.id !== before) this.recheck(name);
      if (value === undefined) this.maybeRemove(s);
      return;
    }
    if (
      (m =
        /^cilium\/synced\/([^/]+)\/cilium\/cache\/(nodes|services|identities|ip|serviceexports)\/v1$/.exec(
          key,
        ))
    ) {
      const name = m[1]!;
      if (name === local) return;
      const s = value === undefined ? this.states.get(name) : this.get(name);
      if (!s) return;
      s.synced[m[2] as StateKind] = value !== undefined;
      this.emit({ type: 'cluster', cluster: name, change: 'updated' });
      if (value === undefined) this.maybeRemove(s);
      return;
    }
    if (key.startsWith(KVSTOREMESH_STATUS_PREFIX)) {
      const name = key.slice(KVSTOREMESH_STATUS_PREFIX.length);
      if (name === local) return;
      const s = this.states.get(name) ?? (value !== undefined ? this.get(name) : undefined);
      if (!s) return;
      if (value === undefined) {
        s.stale = false;
        s.connected = false;
        s.lastError = undefined;
      } else {
        const rec = JSON.parse(value) as KVStoreMeshRemoteState;
        s.stale = rec.stale === true;
        s.connected = rec.connected === true;
        s.lastError = rec.lastError;
      }
      this.emit({ type: 'cluster', cluster: name, change: 'updated' });
      if (value === undefined) this.maybeRemove(s);
      return;
    }
    const ck = parseCacheKey(key);
    if (ck) {
      if (ck.cluster === local) return;
      const s = value === undefined ? this.states.get(ck.cluster) : this.get(ck.cluster);
      if (!s) return;
      this.applyEntry(s, ck.kind, ck.suffix, value, key);
      if (value === undefined) this.maybeRemove(s);
      return;
    }
    if (this.opts.includeLocal) {
      const sk = parseStateKey(key);
      if (sk && (sk.cluster === undefined || sk.cluster === local))
        this.applyEntry(this.get(local, true), sk.kind, sk.suffix, value);
    }
  }

  private applyEntry(
    s: MeshClusterState,
    kind: StateKind,
    suffix: string,
    value: string | undefined,
    key?: string,
  ): void {
    const map = this.mapFor(s, kind);
    const name = suffix;
    let mapKey: unknown = suffix;
    let decoded: unknown;
    let refused: string | undefined;
    try {
      if (kind === 'identities') mapKey = parseIdentityID(suffix);
      if (value !== undefined) decoded = this.decode(kind, value);
    } catch (err) {
      if (s.local) throw err;
      this.errors++;
      refused = `does not decode: ${(err as Error).message}`;
    }
    if (!s.local && key !== undefined) {
      if (value === undefined) s.rejected.delete(key);
      else {
        refused ??= checkRemoteRecord(kind, suffix, decoded, {
          cluster: s.name,
          clusterId: s.config?.id,
          maxConnectedClusters: s.config?.capabilities.maxConnectedClusters,
          localPodCIDRs: this.opts.localPodCIDRs?.() ?? [],
        });
        if (refused) {
          this.reject(s, key, refused);
          value = undefined; // a record that turned bad is removed, not kept at its old value
        } else s.rejected.delete(key);
      }
    }
    const previous = map.get(mapKey as never);
    if (value === undefined) {
      if (!map.has(mapKey as never)) return;
      map.delete(mapKey as never);
      this.emit({ type: 'delete', cluster: s.name, kind, name, previous });
      return;
    }
    map.set(mapKey as never, decoded as never);
    this.emit({ type: 'upsert', cluster: s.name, kind, name, value: decoded, previous });
  }

  /** Applies a cluster's records again (its ID changed: they are checked against the new one). */
  private recheck(cluster: string): void {
    for (const [key, value] of [...this.known]) {
      const ck = parseCacheKey(key);
      if (ck?.cluster === cluster) this.apply(key, value);
    }
  }

  private reject(s: MeshClusterState, key: string, reason: string): void {
    s.rejectedTotal++;
    s.rejected.delete(key);
    s.rejected.set(key, { key, reason, at: new Date().toISOString() });
    if (s.rejected.size > MAX_REJECTED_KEPT) s.rejected.delete(s.rejected.keys().next().value!);
    this.log.warn('refusing a remote record', { cluster: s.name, key, reason });
  }

  private mapFor(s: MeshClusterState, kind: StateKind): Map<unknown, unknown> {
    switch (kind) {
      case 'nodes':
        return s.nodes;
      case 'services':
        return s.services;
      case 'identities':
        return s.identities;
      case 'ip':
        return s.ipcache;
      case 'serviceexports':
        return s.serviceExports;
    }
  }

  private decode(kind: StateKind, value: string): unknown {
    switch (kind) {
      case 'nodes':
        return decodeNode(value);
      case 'services':
        return (this.opts.decodeService ?? defaultDecodeService)(value);
      case 'identities':
        return decodeIdentityLabels(value);
      case 'ip':
        return decodeIPCacheEntry(value);
      case 'serviceexports':
        return decodeServiceExport(value);
    }
  }
}

function defaultDecodeService(value: string): ClusterService {
  return decodeClusterService(value);
}

/**
 * kvstoremesh: mirrors each connected remote cluster's exported state
 * (cilium/state/... in the remote's etcd) into the local etcd under
 * cilium/cache/<kind>/v1/<remote>/..., so local agents watch one store.
 *
 * Per remote, a *session* is one connection: dial, read and validate the
 * remote's cluster config, then per kind wait for the remote's synced canary,
 * list, mirror, and watch. Once a kind's list is mirrored, cached keys the
 * list did not contain are deleted (never earlier, so a reconnect never
 * empties the cache while the new list is incomplete) and the local canary
 * cilium/synced/<remote>/cilium/cache/<kind>/v1 is written.
 *
 * When the remote becomes unreachable the session ends; the cached state
 * stays, marked stale (cilium/kvstoremesh/v1/status/<remote>), and is dropped
 * after `cacheTTLms` if set. Sessions retry with backoff. A remote whose
 * cluster ID changes is drained (its cached state removed) and reconnected.
 *
 * All local writes for one remote go through one ordered queue.
 */
import type { KVStore, Watch } from '../kvstore/types.js';
import { nopLogger, type Logger } from '../util/log.js';
import {
  cacheClusterPrefixes,
  cacheDir,
  clusterConfigKey,
  decodeClusterConfig,
  decodeTimestamp,
  encodeClusterConfig,
  encodeTimestamp,
  HEARTBEAT_KEY,
  kvstoremeshStatusKey,
  parseCacheKey,
  stateDir,
  stateToCacheKey,
  STATE_KINDS,
  syncedCanaryKey,
  syncedClusterPrefix,
  type ClusterConfig,
  type KVStoreMeshRemoteState,
  type StateKind,
} from './keys.js';
import { storeBatchWriter, type BatchWriter } from './batch-writer.js';
import { refuseRemoteRecord, type RejectedRecord } from './validate-remote.js';
import {
  classifyMeshError,
  describeChain,
  hintForReason,
  MeshError,
  type MeshErrorReason,
} from './errors.js';

/** A remote cluster as `clustermesh connect` recorded it. */
export interface RemoteClusterConfig {
  name: string;
  /** The cluster ID connect saw; a different ID at runtime drains and reconnects the remote. */
  clusterId: number;
  endpoints: string[];
  /** Changes when connect re-issues credentials (a change reconnects). */
  version?: string;
  /** The pod CIDRs the remote declared at connect: its nodes' pod CIDRs and its ipcache IPs must lie inside. */
  podCIDRs?: string[];
  /** The node CIDRs the remote declared at connect: its nodes' addresses must lie inside. */
  nodeCIDRs?: string[];
}

/** Opens a KVStore client to a remote's etcd (with its CA and our client certificate). */
export type RemoteDialer = (remote: RemoteClusterConfig) => Promise<KVStore>;

export interface KVStoreMeshOptions {
  /** The local etcd (as root). */
  local: KVStore;
  localCluster: { name: string; id: number; maxConnectedClusters: number };
  dial: RemoteDialer;
  /** How bulk writes (initial lists) reach the local etcd (default: the store's putMany, etcd transactions). */
  batchWriter?: BatchWriter;
  /** Live-change writes to the local etcd in flight at once (LocalPuts; default 2). */
  localWritesInFlight?: number;
  /** Drop a disconnected remote's cached state after this long; undefined keeps it forever. */
  cacheTTLms?: number;
  /** Backoff between sessions (default 500 ms doubling to 10 s). */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** How often a live session probes the remote (default 3000 ms). */
  probeIntervalMs?: number;
  /** The local cluster's pod CIDRs: remote records overlapping them are refused (default none known). */
  localPodCIDRs?: () => readonly string[];
  logger?: Logger;
}

/** Per-remote state, as `clustermesh status` shows it. */
export interface RemoteClusterStatus {
  name: string;
  /** ID recorded by connect. */
  expectedClusterId: number;
  /** ID the remote reports (once read). */
  clusterId: number | undefined;
  endpoints: string[];
  configured: true;
  connected: boolean;
  /** Every kind mirrored in this session. */
  synced: boolean;
  syncedKinds: Record<StateKind, boolean>;
  /** Cached state is the last known (not connected, or resync in progress after a disconnection). */
  stale: boolean;
  counts: Record<StateKind, number>;
  lastHeartbeat: string | undefined;
  connectedSince: string | undefined;
  disconnectedSince: string | undefined;
  /** Sessions started successfully (1 after the first connection). */
  connections: number;
  lastError: { reason: MeshErrorReason; message: string; hint: string; at: string } | undefined;
  /**
   * Remote records refused (validate-remote.ts): never cached, so agents never
   * see them. `total` counts every refusal; `recent` lists the records refused
   * now (remote key and reason), at most 100.
   */
  rejected: { total: number; recent: RejectedRecord[] };
}

const emptyKinds = <T>(v: T): Record<StateKind, T> =>
  Object.fromEntries(STATE_KINDS.map((k) => [k, v])) as Record<StateKind, T>;

/** The kvstoremesh controller: one RemoteMirror per configured remote. */
export class KVStoreMesh {
  private readonly remotes = new Map<string, RemoteMirror>();
  private readonly log: Logger;
  private stopped = false;

  /** Single live puts of every remote, written to the local etcd together (see LocalPuts). */
  private readonly puts: LocalPuts;

  constructor(private readonly opts: KVStoreMeshOptions) {
    this.log = (opts.logger ?? nopLogger).child({ subsys: 'kvstoremesh' });
    this.puts = new LocalPuts(
      opts.batchWriter ?? storeBatchWriter(opts.local),
      opts.localWritesInFlight,
    );
  }

  /**
   * Makes the set of mirrored remotes equal `configs`: starts new ones,
   * restarts changed ones (endpoints or ID), stops and drains removed ones.
   */
  async setRemotes(configs: RemoteClusterConfig[]): Promise<void> {
    if (this.stopped) return;
    const want = new Map(configs.map((c) => [c.name, c]));
    for (const [name, m] of this.remotes) {
      const c = want.get(name);
      if (!c) {
        this.remotes.delete(name);
        this.log.info('remote cluster removed: draining its cached state', { remote: name });
        await m.stop();
        await m.drain();
      } else if (
        c.clusterId !== m.config.clusterId ||
        c.endpoints.join(',') !== m.config.endpoints.join(',') ||
        c.version !== m.config.version
      ) {
        this.log.info('remote cluster reconfigured: reconnecting', { remote: name });
        await m.stop();
        const n = new RemoteMirror(
          c,
          this.opts,
          this.log,
          (id) => this.idUsedByOther(name, id),
          this.puts,
        );
        this.remotes.set(name, n);
        n.start();
      }
    }
    for (const [name, c] of want) {
      if (this.remotes.has(name)) continue;
      if (name === this.opts.localCluster.name) {
        this.log.warn('ignoring a remote with the local cluster name', { remote: name });
        continue;
      }
      const m = new RemoteMirror(
        c,
        this.opts,
        this.log,
        (id) => this.idUsedByOther(name, id),
        this.puts,
      );
      this.remotes.set(name, m);
      m.start();
    }
  }

  private idUsedByOther(name: string, id: number): string | undefined {
    if (id === this.opts.localCluster.id)
      return `${this.opts.localCluster.name} (the local cluster)`;
    for (const [n, m] of this.remotes) if (n !== name && m.currentId === id) return n;
    return undefined;
  }

  /** Every remote's status, by name. */
  status(): RemoteClusterStatus[] {
    return [...this.remotes.values()]
      .map((m) => m.status())
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Resolves when every remote is connected and synced, or rejects after timeoutMs. */
  async waitSynced(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.status().every((s) => s.connected && s.synced)) {
      if (Date.now() > deadline) {
        const bad = this.status().filter((s) => !(s.connected && s.synced));
        throw new MeshError(
          'not-synced',
          `remote clusters not synced after ${timeoutMs} ms: ${bad.map((s) => `${s.name} (${s.lastError?.message ?? 'syncing'})`).join(', ')}`,
        );
      }
      await sleep(20);
    }
  }

  /** Stops every session; cached state stays in the local etcd. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.remotes.values()].map((m) => m.stop()));
  }
}

class RemoteMirror {
  readonly config: RemoteClusterConfig;
  /** The ID of the state currently cached (undefined before the first session). */
  currentId: number | undefined;
  private readonly log: Logger;
  private running = false;
  private session: Session | undefined;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private queue: Promise<void> = Promise.resolve();
  private ttlTimer: NodeJS.Timeout | undefined;
  /** What is cached in the local etcd per kind: cache key -> value. */
  private readonly cached = new Map<StateKind, Map<string, string>>(
    STATE_KINDS.map((k) => [k, new Map<string, string>()]),
  );
  private st: Omit<
    RemoteClusterStatus,
    'counts' | 'name' | 'expectedClusterId' | 'endpoints' | 'configured' | 'rejected'
  >;
  private published = '';
  /** Remote key -> why it is refused (records refused now). */
  private readonly rejected = new Map<string, RejectedRecord>();
  private rejectedTotal = 0;

  constructor(
    config: RemoteClusterConfig,
    private readonly opts: KVStoreMeshOptions,
    parentLog: Logger,
    private readonly idConflict: (id: number) => string | undefined,
    private readonly puts: LocalPuts,
  ) {
    this.config = { ...config, endpoints: [...config.endpoints] };
    this.log = parentLog.child({ remote: config.name });
    this.st = {
      clusterId: undefined,
      connected: false,
      synced: false,
      syncedKinds: emptyKinds(false),
      stale: false,
      lastHeartbeat: undefined,
      connectedSince: undefined,
      disconnectedSince: undefined,
      connections: 0,
      lastError: undefined,
    };
  }

  status(): RemoteClusterStatus {
    const counts = emptyKinds(0);
    for (const k of STATE_KINDS) counts[k] = this.cached.get(k)!.size;
    return {
      name: this.config.name,
      expectedClusterId: this.config.clusterId,
      endpoints: [...this.config.endpoints],
      configured: true,
      ...this.st,
      syncedKinds: { ...this.st.syncedKinds },
      counts,
      rejected: { total: this.rejectedTotal, recent: [...this.rejected.values()] },
    };
  }

  /**
   * Checks a record read from the remote before it is cached.
   * @returns true when it may be cached; false when refused (counted, named in status).
   */
  admit(kind: StateKind, remoteKey: string, cacheKey: string, value: string): boolean {
    const ck = parseCacheKey(cacheKey);
    const reason = ck
      ? refuseRemoteRecord(kind, ck.suffix, value, {
          cluster: this.config.name,
          clusterId: this.currentId,
          // a connected remote has the local value (checked at connect): its identity layout
          maxConnectedClusters: this.opts.localCluster.maxConnectedClusters,
          localPodCIDRs: this.opts.localPodCIDRs?.() ?? [],
          declaredPodCIDRs: this.config.podCIDRs,
          declaredNodeCIDRs: this.config.nodeCIDRs,
        })
      : 'key is not of this cluster';
    if (!reason) {
      if (this.rejected.delete(remoteKey)) this.publish();
      return true;
    }
    this.rejectedTotal++;
    this.rejected.delete(remoteKey);
    this.rejected.set(remoteKey, { key: remoteKey, reason, at: new Date().toISOString() });
    if (this.rejected.size > 100) this.rejected.delete(this.rejected.keys().next().value!);
    this.log.warn('refusing a remote record', { key: remoteKey, reason });
    this.publish();
    return false;
  }

  /** A refused record was deleted on the remote. */
  forget(remoteKey: string): void {
    if (this.rejected.delete(remoteKey)) this.publish();
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.ttlTimer);
    this.wake?.();
    await this.session?.abort(undefined);
    await this.loop;
    await this.queue.catch(() => {});
  }

  private async run(): Promise<void> {
    let delay = this.opts.retryMinMs ?? 500;
    const maxDelay = this.opts.retryMaxMs ?? 10_000;
    // Learn what is cached from earlier runs of the daemon, so counts and stale cleanup are right.
    await this.loadCached().catch((err) =>
      this.log.warn('cannot list cached state', { error: err }),
    );
    while (this.running) {
      const s = new Session(this, this.opts, this.log);
      this.session = s;
      const outcome = await s.run();
      this.session = undefined;
      if (!this.running) break;
      if (outcome.connectedOnce) delay = this.opts.retryMinMs ?? 500;
      if (outcome.reason === 'cluster-id-changed') {
        // Drained already; reconnect at once.
        continue;
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, delay);
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
      this.wake = undefined;
      delay = Math.min(delay * 2, maxDelay);
    }
  }

  private async loadCached(): Promise<void> {
    for (const k of STATE_KINDS) {
      const { kvs } = await this.opts.local.list(cacheDir(k, this.config.name) + '/');
      for (const kv of kvs) this.cached.get(k)!.set(kv.key, kv.value);
    }
    const cfg = await this.opts.local.get(clusterConfigKey(this.config.name));
    if (cfg) {
      try {
        this.currentId = decodeClusterConfig(cfg.value).id;
      } catch {
        // replaced on the first session
      }
    }
    if ([...this.cached.values()].some((s) => s.size > 0)) {
      this.st.stale = true;
      this.publish();
    }
  }

  // --- called by sessions -------------------------------------------------

  /** Runs a local write in this remote's ordered queue, retrying transient errors a few times. */
  enqueue(what: string, fn: () => Promise<void>): Promise<void> {
    // a job queued after the open put batch: later puts must go after it
    this.openPuts = undefined;
    const p = this.queue.then(async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          await fn();
          return;
        } catch (err) {
          if (attempt >= 4)
            throw new MeshError('error', `local etcd: ${what}: ${(err as Error).message}`, {
              cause: err,
            });
          await sleep(100 * 2 ** attempt);
        }
      }
    });
    this.queue = p.catch(() => {});
    return p;
  }

  /**
   * Mirrors one watched put. Puts that arrive while earlier writes are
   * queued join one batch (one etcd transaction per 128 keys through the
   * batch writer), so a burst of remote changes (10,000 services exported at
   * once) is not written one commit at a time. Order is kept: any other job
   * queued after the batch closes it, and later puts start a new one.
   */
  cachePut(kind: StateKind, key: string, value: string): Promise<void> {
    let b = this.openPuts;
    if (!b) {
      const batch = { entries: new Map<string, [StateKind, string]>(), done: Promise.resolve() };
      batch.done = this.enqueue(`put batch`, async () => {
        if (this.openPuts === batch) this.openPuts = undefined;
        const todo: [string, string][] = [];
        for (const [k, [kd, v]] of batch.entries)
          if (this.cached.get(kd)!.get(k) !== v) todo.push([k, v]); // unchanged: nothing rewritten
        if (todo.length === 1) await this.puts.put(todo[0]![0], todo[0]![1]);
        else if (todo.length > 1)
          await (this.opts.batchWriter ?? storeBatchWriter(this.opts.local))(todo);
        for (const [k, [kd, v]] of batch.entries) this.cached.get(kd)!.set(k, v);
      });
      this.openPuts = b = batch;
    }
    b.entries.set(key, [kind, value]);
    return b.done;
  }
  private openPuts: { entries: Map<string, [StateKind, string]>; done: Promise<void> } | undefined;

  /**
   * Writes many entries as one queue job through the batch writer (etcd
   * transactions: a resync of 10k entries would otherwise pay one commit per
   * entry). Unchanged entries are skipped.
   */
  cachePutMany(
    kind: StateKind,
    entries: [string, string][],
    skip: (key: string) => boolean = () => false,
  ): Promise<void> {
    return this.enqueue(`put ${entries.length} ${kind}`, async () => {
      const m = this.cached.get(kind)!;
      const todo = entries.filter(([k, v]) => m.get(k) !== v && !skip(k));
      if (todo.length === 0) return;
      await (this.opts.batchWriter ?? storeBatchWriter(this.opts.local))(todo);
      for (const [k, v] of todo) m.set(k, v);
    });
  }

  cacheDelete(kind: StateKind, key: string): Promise<void> {
    return this.enqueue(`delete ${key}`, async () => {
      await this.opts.local.delete(key);
      this.cached.get(kind)!.delete(key);
    });
  }

  /** Deletes cached keys of a kind that the new list did not contain, then writes the local canary. */
  finishKind(kind: StateKind, seen: Set<string>): Promise<void> {
    return this.enqueue(`finish ${kind}`, async () => {
      for (const key of [...this.cached.get(kind)!.keys()]) {
        if (!seen.has(key)) {
          await this.opts.local.delete(key);
          this.cached.get(kind)!.delete(key);
        }
      }
      await this.opts.local.put(
        syncedCanaryKey(this.config.name, kind, 'cache'),
        encodeTimestamp(),
      );
    });
  }

  /** Removes everything cached for this remote (cache, canaries, cluster config copy, status record). */
  drain(): Promise<void> {
    return this.enqueue('drain', async () => {
      for (const p of cacheClusterPrefixes(this.config.name)) await this.opts.local.deletePrefix(p);
      await this.opts.local.deletePrefix(syncedClusterPrefix(this.config.name));
      await this.opts.local.delete(clusterConfigKey(this.config.name));
      await this.opts.local.delete(kvstoremeshStatusKey(this.config.name));
      for (const s of this.cached.values()) s.clear();
      this.currentId = undefined;
      this.st.syncedKinds = emptyKinds(false);
      this.st.synced = false;
      this.st.stale = false;
      this.published = '';
    });
  }

  onConnected(cfg: ClusterConfig): Promise<void> {
    clearTimeout(this.ttlTimer);
    this.ttlTimer = undefined;
    this.currentId = cfg.id;
    this.st.clusterId = cfg.id;
    this.st.connected = true;
    this.st.connectedSince = new Date().toISOString();
    this.st.disconnectedSince = undefined;
    this.st.connections++;
    this.st.syncedKinds = emptyKinds(false);
    this.st.synced = false;
    // Until every kind is re-listed, what is cached may be stale.
    this.st.stale = [...this.cached.values()].some((s) => s.size > 0);
    const copy: ClusterConfig = { id: cfg.id, capabilities: { ...cfg.capabilities, cached: true } };
    return this.enqueue('cluster config', async () => {
      await this.opts.local.put(clusterConfigKey(this.config.name), encodeClusterConfig(copy));
      await this.publishNow();
    });
  }

  onKindSynced(kind: StateKind): void {
    this.st.syncedKinds[kind] = true;
    if (STATE_KINDS.every((k) => this.st.syncedKinds[k])) {
      this.st.synced = true;
      this.st.stale = false;
      this.st.lastError = undefined;
      this.log.info('remote cluster synced', { counts: this.status().counts });
    }
    this.publish();
  }

  onHeartbeat(value: string): void {
    const t = decodeTimestamp(value);
    if (t) this.st.lastHeartbeat = t.toISOString();
  }

  onError(err: unknown): void {
    const reason = classifyMeshError(err);
    const message = err instanceof Error ? err.message : describeChain(err);
    this.st.lastError = {
      reason,
      message,
      hint: hintForReason(reason, this.config.name),
      at: new Date().toISOString(),
    };
    this.publish();
  }

  onDisconnected(err: unknown): void {
    const wasConnected = this.st.connected;
    this.st.connected = false;
    this.st.synced = false;
    this.st.syncedKinds = emptyKinds(false);
    if (wasConnected || this.st.disconnectedSince === undefined)
      this.st.disconnectedSince = new Date().toISOString();
    if (err !== undefined) this.onError(err);
    const hasCache = [...this.cached.values()].some((s) => s.size > 0);
    this.st.stale = hasCache;
    if (wasConnected)
      this.log.warn('remote cluster disconnected; keeping its last known state as stale', {
        error: this.st.lastError?.message,
      });
    if (
      hasCache &&
      this.opts.cacheTTLms !== undefined &&
      this.ttlTimer === undefined &&
      this.running
    ) {
      this.ttlTimer = setTimeout(() => {
        this.ttlTimer = undefined;
        if (this.st.connected || !this.running) return;
        this.log.info('cache TTL expired for a disconnected remote: dropping its state', {
          ttlMs: this.opts.cacheTTLms,
        });
        void this.drain().then(
          () => this.publish(),
          (e) => this.log.warn('drain failed', { error: e }),
        );
      }, this.opts.cacheTTLms);
      this.ttlTimer.unref?.();
    }
    this.publish();
  }

  /** Checks an ID seen in a session: conflicts end the session; a change drains first. */
  async acceptClusterId(id: number): Promise<void> {
    const other = this.idConflict(id);
    if (other) {
      throw new MeshError(
        'cluster-id-conflict',
        `${this.config.name} reports cluster ID ${id}, which ${other} already uses`,
      );
    }
    if (this.currentId !== undefined && this.currentId !== id) {
      this.log.warn('remote cluster ID changed: draining its cached state before reconnecting', {
        from: this.currentId,
        to: id,
      });
      await this.drain();
    }
    // 0: the config did not say (an etcd config from --clustermesh-config carries no ID)
    if (this.config.clusterId !== 0 && id !== this.config.clusterId) {
      this.log.warn('remote cluster reports a different ID than when it was connected', {
        connectedWith: this.config.clusterId,
        now: id,
      });
    }
  }

  private publish(): void {
    void this.enqueue('status record', () => this.publishNow()).catch((err) =>
      this.log.warn('cannot write status record', { error: err }),
    );
  }

  private async publishNow(): Promise<void> {
    if (this.currentId === undefined && !this.st.connected && !this.st.stale) return;
    const rec: KVStoreMeshRemoteState = {
      cluster: this.config.name,
      connected: this.st.connected,
      stale: this.st.stale,
      synced: this.st.synced,
      since:
        (this.st.connected ? this.st.connectedSince : this.st.disconnectedSince) ??
        new Date().toISOString(),
    };
    if (this.currentId !== undefined) rec.clusterID = this.currentId;
    if (this.st.lastError && !this.st.connected)
      rec.lastError = `${reasonText(this.st.lastError.reason)}: ${this.st.lastError.message}`;
    if (this.rejected.size > 0) rec.rejected = this.rejected.size;
    const v = JSON.stringify(rec);
    if (v === this.published) return;
    await this.opts.local.put(kvstoremeshStatusKey(this.config.name), v);
    this.published = v;
  }
}

function reasonText(r: MeshErrorReason): string {
  switch (r) {
    case 'certificate-rejected':
      return 'certificate rejected';
    case 'endpoint-unreachable':
      return 'endpoint unreachable';
    case 'permission-denied':
      return 'permission denied';
    default:
      return r.replace(/-/g, ' ');
  }
}

/** One connection to a remote. `run` resolves when it ends (error, disconnect, abort). */
class Session {
  private store: KVStore | undefined;
  private readonly watches: Watch[] = [];
  private ended = false;
  private endResolve!: (v: { reason: MeshErrorReason | undefined }) => void;
  private readonly endP = new Promise<{ reason: MeshErrorReason | undefined }>(
    (r) => (this.endResolve = r),
  );
  private probe: NodeJS.Timeout | undefined;
  private connected = false;

  constructor(
    private readonly m: RemoteMirror,
    private readonly opts: KVStoreMeshOptions,
    private readonly log: Logger,
  ) {}

  async run(): Promise<{ connectedOnce: boolean; reason: MeshErrorReason | undefined }> {
    void this.start().catch((err) => this.abort(err));
    const { reason } = await this.endP;
    return { connectedOnce: this.connected, reason };
  }

  /** Ends the session (idempotent). err undefined: stopped on purpose. */
  async abort(err: unknown): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.probe);
    const reason = err === undefined ? undefined : classifyMeshError(err);
    await Promise.all(this.watches.map((w) => w.close().catch(() => {})));
    await this.store?.close().catch(() => {});
    if (reason === 'cluster-id-changed') {
      this.m.onError(err);
      await this.m.drain().catch((e) => this.log.warn('drain failed', { error: e }));
    } else {
      this.m.onDisconnected(err);
    }
    this.endResolve({ reason });
  }

  private check(): void {
    if (this.ended) throw new MeshError('error', 'session ended');
  }

  private async start(): Promise<void> {
    const name = this.m.config.name;
    this.store = await this.opts.dial(this.m.config);
    const store = this.store;
    this.check();
    const cfgKV = await store.get(clusterConfigKey(name));
    this.check();
    if (!cfgKV) {
      throw new MeshError(
        'invalid-cluster-config',
        `${name}'s etcd has no ${clusterConfigKey(name)}: its clustermesh-apiserver has not written its cluster config (is the cluster name right?)`,
      );
    }
    let cfg: ClusterConfig;
    try {
      cfg = decodeClusterConfig(cfgKV.value);
    } catch (err) {
      throw new MeshError(
        'invalid-cluster-config',
        `${name}'s cluster config is invalid: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const local = this.opts.localCluster;
    if (cfg.capabilities.maxConnectedClusters !== local.maxConnectedClusters) {
      throw new MeshError(
        'invalid-cluster-config',
        `${name} has maxConnectedClusters ${cfg.capabilities.maxConnectedClusters} but ${local.name} has ${local.maxConnectedClusters}; every cluster of a mesh must use the same value`,
      );
    }
    await this.m.acceptClusterId(cfg.id);
    this.check();
    this.connected = true;
    await this.m.onConnected(cfg);
    this.log.info('connected to remote cluster', {
      clusterId: cfg.id,
      endpoints: this.m.config.endpoints,
    });

    // A cluster config change (ID) ends the session: drain, then reconnect.
    this.watches.push(
      await store.watchPrefix(
        clusterConfigKey(name),
        (ev) => {
          if (ev.type !== 'put') return;
          let id: number | undefined;
          try {
            id = decodeClusterConfig(ev.kv.value).id;
          } catch {
            return;
          }
          if (id !== cfg.id && !this.ended) {
            // the same line as acceptClusterId's, so the drain shows in the log whichever path saw the change
            this.log.warn(
              'remote cluster ID changed: draining its cached state before reconnecting',
              {
                from: cfg.id,
                to: id,
              },
            );
            void this.abort(
              new MeshError(
                'cluster-id-changed',
                `${name}'s cluster ID changed from ${cfg.id} to ${id}; its cached state was drained`,
              ),
            );
          }
        },
        { afterRevision: cfgKV.modRevision, ...this.watchHooks() },
      ),
    );
    const hb = await store.get(HEARTBEAT_KEY);
    if (hb) this.m.onHeartbeat(hb.value);
    this.watches.push(
      await store.watchPrefix(
        HEARTBEAT_KEY,
        (ev) => ev.type === 'put' && this.m.onHeartbeat(ev.kv.value),
        this.watchHooks(),
      ),
    );
    this.probe = setInterval(() => {
      store.get(HEARTBEAT_KEY).catch((err) => void this.abort(err));
    }, this.opts.probeIntervalMs ?? 3000);
    this.probe.unref?.();
    await Promise.all(
      STATE_KINDS.map((k) => this.syncKind(store, k, cfg.capabilities.syncedCanaries)),
    );
  }

  private watchHooks() {
    return {
      onDisconnect: (err: Error) =>
        void this.abort(
          new MeshError(
            'endpoint-unreachable',
            `connection to ${this.m.config.name} lost: ${err.message}`,
            { cause: err },
          ),
        ),
      onError: (err: Error) => void this.abort(err),
    };
  }

  /**
   * Waits for the remote's synced canary of `kind`. Read first: a canary that
   * is there (the usual case) costs one read and no watch (250 remotes x 5
   * kinds of short-lived watches were most of a large mesh's connect); a
   * missing one is watched from the read's revision, so it cannot be missed.
   */
  private async waitCanary(store: KVStore, kind: StateKind): Promise<void> {
    const key = syncedCanaryKey(this.m.config.name, kind);
    const { kvs, revision } = await store.list(key);
    if (kvs.some((kv) => kv.key === key)) return;
    this.check();
    let resolve!: () => void;
    const appeared = new Promise<void>((r) => (resolve = r));
    const w = await store.watchPrefix(
      key,
      (ev) => ev.type === 'put' && ev.kv.key === key && resolve(),
      { afterRevision: revision, ...this.watchHooks() },
    );
    this.watches.push(w);
    this.m.onError(
      new MeshError(
        'not-synced',
        `${this.m.config.name} has not finished its initial export of ${kind} yet (no ${key})`,
      ),
    );
    await Promise.race([appeared, this.endP]);
    await w.close().catch(() => {});
  }

  private async syncKind(store: KVStore, kind: StateKind, canaries: boolean): Promise<void> {
    const name = this.m.config.name;
    if (canaries) await this.waitCanary(store, kind);
    this.check();
    const dir = stateDir(kind, name) + '/';
    const { kvs, revision } = await store.list(dir);
    this.check();
    const seen = new Set<string>();
    /** Keys changed by watch events newer than the list: the list's (older) value must not overwrite them. */
    const touched = new Set<string>();
    let listing = true;
    // Watch from the list's revision; events are applied in order through the queue.
    const w = await store.watchPrefix(
      dir,
      (ev) => {
        const key = ev.type === 'put' ? ev.kv.key : ev.key;
        const ck = stateToCacheKey(kind, name, key);
        if (!ck) return;
        if (listing) touched.add(ck);
        if (ev.type === 'put' && this.m.admit(kind, key, ck, ev.kv.value)) {
          if (listing) seen.add(ck);
          void this.m.cachePut(kind, ck, ev.kv.value).catch((err) => void this.abort(err));
        } else {
          // Deleted, or now refused: a refused record is not kept at its old value either.
          if (ev.type === 'delete') this.m.forget(key);
          if (listing) seen.delete(ck);
          void this.m.cacheDelete(kind, ck).catch((err) => void this.abort(err));
        }
      },
      { afterRevision: revision, ...this.watchHooks() },
    );
    this.watches.push(w);
    const entries: [string, string][] = [];
    for (const kv of kvs) {
      const ck = stateToCacheKey(kind, name, kv.key);
      if (!ck) continue;
      if (touched.has(ck) || !this.m.admit(kind, kv.key, ck, kv.value)) continue;
      seen.add(ck);
      entries.push([ck, kv.value]);
    }
    await this.m.cachePutMany(kind, entries, (k) => touched.has(k));
    this.check();
    listing = false;
    await this.m.finishKind(kind, seen);
    this.check();
    this.m.onKindSynced(kind);
  }
}

/**
 * The local etcd writes of live changes, shared by every remote: a remote's
 * queue writes one put at a time (its order), but 250 remotes with a change
 * each would be 250 etcd commits. Puts of the same turn of the event loop
 * go in one write (etcd transactions of up to 128 keys through the batch
 * writer); up to `maxInFlight` writes are out at once, and puts that arrive
 * while they all are go together in the next. No fixed delay: a lone put
 * is written on the next turn of the event loop.
 */
export class LocalPuts {
  private pending = new Map<
    string,
    { value: string; waiters: Array<[() => void, (e: unknown) => void]> }
  >();
  private inFlight = 0;
  /** Keys in a write now. */
  private readonly writing = new Set<string>();
  private scheduled = false;

  /**
   * @param maxInFlight writes in flight at once (default 2): a put that arrives
   *   while one write is out goes at once in a second one instead of waiting
   *   for the first's round trip. Safe for order: a remote's queue has at most
   *   one put of its own out at a time, and keys are per remote.
   */
  constructor(
    private readonly write: BatchWriter,
    private readonly maxInFlight = 2,
  ) {
    if (!(Number.isInteger(maxInFlight) && maxInFlight >= 1))
      throw new MeshError('error', `LocalPuts: maxInFlight ${maxInFlight} is not a count >= 1`);
  }

  /** Resolves once `key` = `value` is written (with whatever else was pending). */
  put(key: string, value: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const cur = this.pending.get(key);
      // the same key again before the write: the newer value wins, both callers wait for it
      if (cur) {
        cur.value = value;
        cur.waiters.push([resolve, reject]);
      } else this.pending.set(key, { value, waiters: [[resolve, reject]] });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.inFlight >= this.maxInFlight || this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.inFlight >= this.maxInFlight || this.pending.size === 0) return;
    // a key already out in another write waits for it (two writes of one key never race)
    const batch = new Map<
      string,
      { value: string; waiters: Array<[() => void, (e: unknown) => void]> }
    >();
    for (const [k, e] of this.pending) if (!this.writing.has(k)) batch.set(k, e);
    if (batch.size === 0) return;
    for (const k of batch.keys()) {
      this.pending.delete(k);
      this.writing.add(k);
    }
    this.inFlight++;
    try {
      await this.write([...batch].map(([k, e]) => [k, e.value]));
      for (const e of batch.values()) for (const [ok] of e.waiters) ok();
    } catch (err) {
      for (const e of batch.values()) for (const [, fail] of e.waiters) fail(err);
    } finally {
      for (const k of batch.keys()) this.writing.delete(k);
      this.inFlight--;
      if (this.pending.size > 0) this.schedule();
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * The mesh-scale benchmark's kvstoremesh process (forked by index.ts, IPC
 * only): Tendril's KVStoreMesh (src/clustermesh/kvstoremesh.ts) mirroring
 * every simulated remote cluster into the local mesh etcd. Each remote is a
 * separate remote configuration whose dialer opens its own etcd client
 * session (a new EtcdKVStore) to the shared remote etcd, seen through that
 * cluster's key namespace (NamespacedKVStore).
 *
 * Messages in: start, connect, sever {cluster}, stop. Out: ready,
 * synced {ms}, severed, resynced {cluster, ms}, error {message}.
 */
import { loopDelay, startProfile, stopProfile } from './profile.js';
import { EtcdKVStore } from '../../src/kvstore/etcd.js';
import { KVStoreMesh, type RemoteClusterConfig } from '../../src/clustermesh/kvstoremesh.js';
import { NamespacedKVStore } from './namespaced-store.js';
import { createLogger } from '../../src/util/log.js';

export type KvmIn =
  | {
      op: 'start';
      localUrl: string;
      remoteUrl: string;
      local: { name: string; id: number; maxConnectedClusters: number };
      remotes: Array<{ name: string; id: number; prefix: string }>;
    }
  | { op: 'connect' }
  | { op: 'sever'; cluster: string }
  | { op: 'status' }
  | { op: 'profile-start' }
  /** Report when ipcache changes were seen on a remote and written locally (`stages`), or stop. */
  | { op: 'report-stages'; on: boolean }
  | { op: 'profile-stop'; dir: string }
  | { op: 'stop' };

export type KvmOut =
  | { op: 'ready' }
  | { op: 'synced'; ms: number }
  | { op: 'severed'; cluster: string; watches: number }
  | { op: 'resynced'; cluster: string; ms: number }
  | KvmStatusMsg
  | { op: 'profile'; file?: string }
  | StagesMsg
  | { op: 'error'; message: string };

/** A summary of every remote's status (progress of a large sync). */
export interface KvmStatusMsg {
  op: 'status';
  remotes: number;
  connected: number;
  synced: number;
  /** Sessions started, over all remotes (more than `remotes`: some reconnected). */
  connections: number;
  /** Remotes with each kind synced. */
  syncedKinds: Record<string, number>;
  /** Cached entries per kind, over all remotes. */
  cached: Record<string, number>;
  /** A few last errors ("name: message"). */
  errors: string[];
}

/**
 * ipcache changes passing kvstoremesh: [IP, 'seen' (the remote's watch event
 * arrived) or 'cached' (the local etcd acknowledged its write), when
 * (process.hrtime ns as a decimal string: the machine's monotonic clock)].
 */
export interface StagesMsg {
  op: 'stages';
  entries: Array<[string, 'seen' | 'cached', string]>;
  /** With report-stages off: the event-loop delay while it was on (ms: p50, p99, max). */
  loopDelayMs?: [number, number, number];
}

const send = (m: KvmOut) => process.send?.(m);
let reportStages = false;
let stages: StagesMsg['entries'] = [];
function stage(key: string, what: 'seen' | 'cached'): void {
  if (!reportStages) return;
  if (stages.length === 0)
    setImmediate(() => {
      const entries = stages;
      stages = [];
      send({ op: 'stages', entries });
    });
  stages.push([key.slice(key.lastIndexOf('/') + 1), what, String(process.hrtime.bigint())]);
}
const IP_STATE = 'cilium/state/ip/';
const IP_CACHE = 'cilium/cache/ip/';
let mesh: KVStoreMesh | undefined;
let local: EtcdKVStore | undefined;
let configs: RemoteClusterConfig[] = [];
const sessions = new Map<string, NamespacedKVStore>();

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function handle(m: KvmIn): Promise<void> {
  switch (m.op) {
    case 'start': {
      const l = (local = new EtcdKVStore({ endpoints: [m.localUrl], requestTimeoutMs: 60_000 }));
      // the stages of the churn's changes (report-stages); nothing else is changed
      const put = l.put.bind(l);
      l.put = async (key, value, o) => {
        const rev = await put(key, value, o);
        if (key.startsWith(IP_CACHE)) stage(key, 'cached');
        return rev;
      };
      const putMany = l.putMany.bind(l);
      l.putMany = async (pairs, o) => {
        const rev = await putMany(pairs, o);
        for (const p of pairs) if (p.key.startsWith(IP_CACHE)) stage(p.key, 'cached');
        return rev;
      };
      const prefixes = new Map(m.remotes.map((r) => [r.name, r.prefix]));
      configs = m.remotes.map((r) => ({
        name: r.name,
        clusterId: r.id,
        endpoints: [m.remoteUrl],
      }));
      mesh = new KVStoreMesh({
        logger: createLogger({ daemon: 'bench-kvstoremesh' }, { level: 'warn' }),
        local,
        localCluster: m.local,
        // experiments: MESH_SCALE_KVM_WRITES_IN_FLIGHT (default: the product's)
        ...(process.env.MESH_SCALE_KVM_WRITES_IN_FLIGHT
          ? { localWritesInFlight: Number(process.env.MESH_SCALE_KVM_WRITES_IN_FLIGHT) }
          : {}),
        dial: async (rc) => {
          // one client session per remote configuration
          const s = new NamespacedKVStore(
            // one etcd stands in for every remote: answering 250 sessions' connects at once
            // takes it longer than one cluster's etcd would take for one (5 s by default)
            new EtcdKVStore({
              endpoints: rc.endpoints,
              requestTimeoutMs: 60_000,
              dialTimeoutMs: 60_000,
            }),
            prefixes.get(rc.name)!,
          );
          sessions.set(rc.name, s);
          const watchPrefix = s.watchPrefix.bind(s);
          s.watchPrefix = (prefix, onEvent, o) =>
            watchPrefix(
              prefix,
              (ev) => {
                if (ev.type === 'put' && ev.kv.key.startsWith(IP_STATE)) stage(ev.kv.key, 'seen');
                onEvent(ev);
              },
              o,
            );
          return s;
        },
      });
      send({ op: 'ready' });
      return;
    }
    case 'connect': {
      const t0 = performance.now();
      await mesh!.setRemotes(configs);
      await mesh!.waitSynced(3_600_000);
      send({ op: 'synced', ms: performance.now() - t0 });
      return;
    }
    case 'sever': {
      const before = mesh!.status().find((s) => s.name === m.cluster);
      if (!before) throw new Error(`no remote ${m.cluster}`);
      const t0 = performance.now();
      const watches = sessions.get(m.cluster)?.sever() ?? 0;
      send({ op: 'severed', cluster: m.cluster, watches });
      await waitFor(
        () => {
          const s = mesh!.status().find((x) => x.name === m.cluster)!;
          return s.connections > before.connections && s.connected && s.synced;
        },
        600_000,
        `${m.cluster} resynced`,
      );
      send({ op: 'resynced', cluster: m.cluster, ms: performance.now() - t0 });
      return;
    }
    case 'status': {
      const st = mesh!.status();
      const syncedKinds: Record<string, number> = {};
      const cached: Record<string, number> = {};
      for (const r of st) {
        for (const [k, v] of Object.entries(r.syncedKinds))
          syncedKinds[k] = (syncedKinds[k] ?? 0) + (v ? 1 : 0);
        for (const [k, v] of Object.entries(r.counts)) cached[k] = (cached[k] ?? 0) + v;
      }
      send({
        op: 'status',
        remotes: st.length,
        connected: st.filter((r) => r.connected).length,
        synced: st.filter((r) => r.synced).length,
        connections: st.reduce((n, r) => n + r.connections, 0),
        syncedKinds,
        cached,
        errors: st
          .filter((r) => r.lastError)
          .slice(0, 3)
          .map((r) => `${r.name}: ${r.lastError!.message}`),
      });
      return;
    }
    case 'report-stages':
      reportStages = m.on;
      send({ op: 'stages', entries: [], ...loopDelay(m.on) });
      return;
    case 'profile-start':
      await startProfile();
      send({ op: 'profile' });
      return;
    case 'profile-stop':
      send({ op: 'profile', file: await stopProfile(m.dir, 'kvstoremesh') });
      return;
    case 'stop': {
      await mesh?.stop();
      await local?.close();
      process.exit(0);
    }
  }
}

process.on('message', (m: KvmIn) => {
  handle(m).catch((err: unknown) => send({ op: 'error', message: String(err) }));
});
process.on('disconnect', () => process.exit(0));

/**
 * Test helpers for the mesh (used by unit tests and benchmarks, not by the
 * daemons): a KVStore wrapper whose "network" can be cut, and a writer that
 * fills a store with one cluster's exported state the way the syncer does.
 */
import { KVStoreError } from '../kvstore/errors.js';
import type { KubeObject } from '../k8s/objects.js';
import type { ObjectSource, SourceHandlers, SyncerSources } from './syncer.js';
import type {
  KVPair,
  KVStore,
  Lease,
  LeaseOptions,
  Watch,
  WatchEvent,
  WatchOptions,
} from '../kvstore/types.js';
import {
  clusterConfigKey,
  encodeClusterConfig,
  encodeIPCacheEntry,
  encodeNode,
  encodeServiceExport,
  encodeTimestamp,
  HEARTBEAT_KEY,
  identityKey,
  ipcacheKey,
  makeClusterConfig,
  nodeKey,
  serviceExportKey,
  serviceKey,
  STATE_KINDS,
  syncedCanaryKey,
  type StateKind,
} from './keys.js';

/** A switch shared by FlakyStore clients: when down, every call fails as unreachable and watches report a disconnect. */
export class FakeNetwork {
  down = false;
  private readonly listeners = new Set<() => void>();
  /** Cuts the network: every open watch gets onDisconnect. */
  cut(): void {
    this.down = true;
    for (const l of [...this.listeners]) l();
  }
  restore(): void {
    this.down = false;
  }
  onCut(l: () => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
}

/** A KVStore client over `inner` through a FakeNetwork; close() does not close `inner`. */
export class FlakyStore implements KVStore {
  private closed = false;
  private readonly watches = new Set<Watch>();
  constructor(
    private readonly inner: KVStore,
    private readonly net: FakeNetwork,
    private readonly name = 'remote',
  ) {}
  private gate(): void {
    if (this.closed) throw new KVStoreError('KVSTORE_CLOSED', 'store closed');
    if (this.net.down)
      throw new KVStoreError(
        'KVSTORE_UNREACHABLE',
        `etcd at ${this.name} is unreachable (connect ECONNREFUSED)`,
      );
  }
  async get(key: string): Promise<KVPair | undefined> {
    this.gate();
    return this.inner.get(key);
  }
  async list(prefix: string): Promise<{ kvs: KVPair[]; revision: number }> {
    this.gate();
    return this.inner.list(prefix);
  }
  async put(key: string, value: string, options?: { lease?: Lease }): Promise<number> {
    this.gate();
    return this.inner.put(key, value, options);
  }
  async create(key: string, value: string, options?: { lease?: Lease }): Promise<boolean> {
    this.gate();
    return this.inner.create(key, value, options);
  }
  async delete(key: string): Promise<void> {
    this.gate();
    return this.inner.delete(key);
  }
  async deletePrefix(prefix: string): Promise<void> {
    this.gate();
    return this.inner.deletePrefix(prefix);
  }
  async watchPrefix(
    prefix: string,
    onEvent: (ev: WatchEvent) => void,
    options: WatchOptions = {},
  ): Promise<Watch> {
    this.gate();
    let live = true;
    const w = await this.inner.watchPrefix(prefix, (ev) => live && !this.net.down && onEvent(ev), {
      ...options,
      onDisconnect: undefined,
    });
    const off = this.net.onCut(() => {
      if (!live) return;
      options.onDisconnect?.(
        new KVStoreError('KVSTORE_UNREACHABLE', `watch ${prefix}: connection lost`),
      );
    });
    const handle: Watch = {
      close: async () => {
        live = false;
        off();
        this.watches.delete(handle);
        await w.close();
      },
    };
    this.watches.add(handle);
    return handle;
  }
  async grantLease(ttlSeconds: number, options?: LeaseOptions): Promise<Lease> {
    this.gate();
    return this.inner.grantLease(ttlSeconds, options);
  }
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.watches].map((w) => w.close()));
  }
}

/** How many objects of each kind `writeClusterState` writes. */
export interface FakeClusterSpec {
  name: string;
  id: number;
  nodes?: number;
  services?: number;
  /** Kinds whose synced canary is not written. */
  withoutCanaries?: StateKind[];
  maxConnectedClusters?: number;
}

/** Writes a cluster's exported state (config, nodes, services, identities, ipcache, exports, canaries, heartbeat) into `store`. */
export async function writeClusterState(store: KVStore, spec: FakeClusterSpec): Promise<void> {
  const { name, id } = spec;
  await store.put(
    clusterConfigKey(name),
    encodeClusterConfig(
      makeClusterConfig(id, { maxConnectedClusters: spec.maxConnectedClusters ?? 255 }),
    ),
  );
  for (let i = 0; i < (spec.nodes ?? 2); i++) {
    const ip = `172.30.${id}.${10 + i}`;
    await store.put(
      nodeKey(name, `${name}-node${i}`),
      encodeNode({
        name: `${name}-node${i}`,
        cluster: name,
        clusterID: id,
        addresses: [{ type: 'InternalIP', ip }],
        podCIDRs: [`10.${243 + id}.${i}.0/24`],
      }),
    );
  }
  for (let i = 0; i < (spec.services ?? 2); i++) {
    await store.put(
      serviceKey(name, 'default', `svc${i}`),
      JSON.stringify(fakeClusterService(name, id, `svc${i}`, [`10.${243 + id}.1.${10 + i}`])),
    );
    const identity = (id << 16) | (256 + i);
    await store.put(
      identityKey(identity),
      `k8s:app=svc${i};k8s:io.kubernetes.pod.namespace=default;`,
    );
    await store.put(
      ipcacheKey(`10.${243 + id}.1.${10 + i}`),
      encodeIPCacheEntry({ ip: `10.${243 + id}.1.${10 + i}`, identity, hostIP: `172.30.${id}.11` }),
    );
  }
  await store.put(
    serviceExportKey(name, 'default', 'svc0'),
    encodeServiceExport({
      cluster: name,
      namespace: 'default',
      name: 'svc0',
      exportCreationTimestamp: '2026-01-01T00:00:00Z',
      type: 'ClusterSetIP',
      ports: [{ protocol: 'TCP', port: 80 }],
    }),
  );
  for (const k of STATE_KINDS) {
    if (!spec.withoutCanaries?.includes(k))
      await store.put(syncedCanaryKey(name, k), encodeTimestamp());
  }
  await store.put(HEARTBEAT_KEY, encodeTimestamp());
}

/** A ClusterService-shaped value (see src/services/cluster-service.ts) for tests. */
export function fakeClusterService(
  cluster: string,
  clusterID: number,
  name: string,
  backendIPs: string[],
  namespace = 'default',
) {
  return {
    cluster,
    namespace,
    name,
    frontends: { '10.96.0.50': { http: { Protocol: 'TCP', Port: 80 } } },
    backends: Object.fromEntries(
      backendIPs.map((ip) => [ip, { http: { Protocol: 'TCP', Port: 8080 } }]),
    ),
    labels: {},
    selector: { app: name },
    includeExternal: true,
    shared: true,
    clusterID,
  };
}

/** An ObjectSource fed by the test (objects in, synced when told). */
export class FakeSource {
  private h: SourceHandlers | undefined;
  private readonly objs = new Map<string, KubeObject>();
  private isSynced = false;
  readonly source: ObjectSource = async (h) => {
    this.h = h;
    for (const o of this.objs.values()) h.upsert(o);
    if (this.isSynced) h.synced();
    return { stop: async () => void (this.h = undefined) };
  };
  add(...objs: KubeObject[]): void {
    for (const o of objs) {
      this.objs.set(`${o.metadata.namespace ?? ''}/${o.metadata.name}`, o);
      this.h?.upsert(o);
    }
  }
  del(o: KubeObject): void {
    this.objs.delete(`${o.metadata.namespace ?? ''}/${o.metadata.name}`);
    this.h?.remove(o);
  }
  synced(): void {
    this.isSynced = true;
    this.h?.synced();
  }
  /** Reports a source error to the consumer (as a failed watch would). */
  error(e: Error): void {
    this.h?.error?.(e);
  }
  /** Reports that the source works again after an error (as a watch that reconnected would). */
  recovered(): void {
    this.h?.recovered?.();
  }
}

/**
 * Six FakeSources, one per kind the syncer reads, as SyncerSources: already
 * synced (empty), or with SYNCED false not yet (the test calls synced() on
 * each when it wants).
 */
export function fakeSources(o: { synced?: boolean } = {}) {
  const s = {
    nodes: new FakeSource(),
    services: new FakeSource(),
    endpointSlices: new FakeSource(),
    identities: new FakeSource(),
    endpoints: new FakeSource(),
    serviceExports: new FakeSource(),
  };
  if (o.synced !== false) for (const x of Object.values(s)) x.synced();
  const sources: SyncerSources = {
    nodes: s.nodes.source,
    services: s.services.source,
    endpointSlices: s.endpointSlices.source,
    identities: s.identities.source,
    endpoints: s.endpoints.source,
    serviceExports: s.serviceExports.source,
  };
  return { fakes: s, sources };
}

/** A Node object with an InternalIP and a pod CIDR. */
export function fakeK8sNode(name: string, ip: string, podCIDR: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name },
    spec: { podCIDR },
    status: { addresses: [{ type: 'InternalIP', address: ip }] },
  };
}

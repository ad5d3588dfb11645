/**
 * The clustermesh-apiserver's syncer: exports this cluster's state from its
 * API server into its etcd in the mesh's key layout (keys.ts): the cluster
 * config, nodes, global+shared services, identities, ipcache entries (from
 * CiliumEndpoints) and MCS service exports. Each kind's synced canary is
 * written once its initial list is in etcd; a heartbeat is refreshed every
 * few seconds.
 *
 * Sources are abstract (`ObjectSource`): the daemon uses Kubernetes
 * informers (k8s-source.ts); tests feed objects directly.
 */
import type { KVStore } from '../kvstore/types.js';
import type { KubeObject } from '../k8s/objects.js';
import { nopLogger, type Logger } from '../util/log.js';
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
  nodeKey,
  serviceExportKey,
  serviceKey,
  stateDir,
  STATE_KINDS,
  syncedCanaryKey,
  type ClusterConfig,
  type StateKind,
} from './keys.js';
import { SyncStore } from './sync-store.js';
import { storeBatchWriter, type BatchWriter } from './batch-writer.js';
import { encodeClusterService } from '../services/cluster-service.js';
import {
  catalogServiceExporter,
  endpointToIPCache,
  identityToMesh,
  nodeToMesh,
  serviceExportToMesh,
  SERVICE_NAME_LABEL,
  type ServiceExporter,
} from './export.js';
import { clusterIdOf, identityLayout } from '../identity/numeric.js';

/** Events from a list+watch source. `synced` is called once, after the initial list. */
export interface SourceHandlers {
  upsert(obj: KubeObject): void;
  remove(obj: KubeObject): void;
  synced(): void;
  /** The source broke (it retries by itself); for status. */
  error?(err: Error): void;
  /** The source works again after an error (clears the error from status). */
  recovered?(): void;
}

/** A list+watch of one resource. Resolves once started; the returned stop ends it. */
export type ObjectSource = (h: SourceHandlers) => Promise<{ stop(): Promise<void> }>;

/** The resources the syncer reads. */
export interface SyncerSources {
  nodes: ObjectSource;
  services: ObjectSource;
  endpointSlices: ObjectSource;
  identities: ObjectSource;
  endpoints: ObjectSource;
  serviceExports: ObjectSource;
}

export interface SyncerOptions {
  store: Pick<KVStore, 'put' | 'delete' | 'list' | 'putMany'>;
  clusterName: string;
  clusterConfig: ClusterConfig;
  sources: SyncerSources;
  /** The export decision for services (default: the service catalog's, src/services/export.ts). */
  exportService?: ServiceExporter;
  heartbeatIntervalMs?: number;
  /** Bulk writes (initial lists) into etcd; default the store's putMany (etcd transactions). */
  batchWriter?: BatchWriter;
  logger?: Logger;
}

/** What the syncer reports for status. */
export interface SyncerStatus {
  clusterConfigWritten: boolean;
  synced: Record<StateKind, boolean>;
  counts: Record<StateKind, number>;
  lastHeartbeat: string | undefined;
  sourceErrors: Record<string, string>;
  lastWriteError: string | undefined;
}

const key = (o: KubeObject) => `${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`;

/** Exports the cluster's state; `start` returns once every source has started. */
export class ClusterSyncer {
  private readonly stores: Record<StateKind, SyncStore>;
  private readonly log: Logger;
  private readonly stops: (() => Promise<void>)[] = [];
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly services = new Map<string, KubeObject>();
  private readonly slicesBySvc = new Map<string, Map<string, KubeObject>>();
  private readonly exports = new Map<string, KubeObject>();
  private readonly cepIPs = new Map<string, string[]>();
  private readonly srcSynced = new Set<string>();
  private readonly sourceErrors: Record<string, string> = {};
  private clusterConfigWritten = false;
  private lastHeartbeat: string | undefined;

  constructor(private readonly opts: SyncerOptions) {
    this.log = (opts.logger ?? nopLogger).child({ subsys: 'clustermesh-syncer' });
    const mk = (kind: StateKind) =>
      new SyncStore({
        backend: opts.store,
        prefix: stateDir(kind, opts.clusterName) + '/',
        canaryKey: syncedCanaryKey(opts.clusterName, kind),
        batchWriter: opts.batchWriter ?? storeBatchWriter(opts.store),
        logger: this.log,
      });
    this.stores = Object.fromEntries(STATE_KINDS.map((k) => [k, mk(k)])) as Record<
      StateKind,
      SyncStore
    >;
  }

  /** Writes the cluster config, starts every source and the heartbeat. @throws KVStoreError if the cluster config cannot be written. */
  async start(): Promise<void> {
    await this.writeClusterConfig();
    await this.beat();
    this.heartbeat = setInterval(() => void this.beat(), this.opts.heartbeatIntervalMs ?? 5000);
    this.heartbeat.unref?.();
    const s = this.opts.sources;
    await this.run('nodes', s.nodes, {
      upsert: (o) => this.onNode(o),
      remove: (o) =>
        o.metadata.name &&
        this.stores.nodes.remove(nodeKey(this.opts.clusterName, o.metadata.name)),
      synced: () => this.stores.nodes.markSynced(),
    });
    await this.run('identities', s.identities, {
      upsert: (o) => this.onIdentity(o),
      remove: (o) => {
        const id = Number(o.metadata.name);
        if (Number.isInteger(id) && id > 0) this.stores.identities.remove(identityKey(id));
      },
      synced: () => this.stores.identities.markSynced(),
    });
    await this.run('ciliumendpoints', s.endpoints, {
      upsert: (o) => this.onEndpoint(o),
      remove: (o) => this.onEndpointGone(o),
      synced: () => this.stores.ip.markSynced(),
    });
    await this.run('services', s.services, {
      upsert: (o) => {
        this.services.set(key(o), o);
        this.refreshService(key(o));
      },
      remove: (o) => {
        this.services.delete(key(o));
        this.refreshService(key(o));
      },
      synced: () => this.servicesPartSynced('services'),
    });
    await this.run('endpointslices', s.endpointSlices, {
      upsert: (o) => this.onSlice(o, false),
      remove: (o) => this.onSlice(o, true),
      synced: () => this.servicesPartSynced('endpointslices'),
    });
    await this.run('serviceexports', s.serviceExports, {
      upsert: (o) => {
        this.exports.set(key(o), o);
        this.refreshService(key(o));
      },
      remove: (o) => {
        this.exports.delete(key(o));
        this.refreshService(key(o));
      },
      synced: () => this.servicesPartSynced('serviceexports'),
    });
  }

  async stop(): Promise<void> {
    clearInterval(this.heartbeat);
    await Promise.all(this.stops.map((s) => s().catch(() => {})));
    for (const st of Object.values(this.stores)) st.stop();
  }

  /** Resolves when every kind's canary is written. */
  async waitSynced(timeoutMs = 10_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!STATE_KINDS.every((k) => this.stores[k].synced)) {
      if (Date.now() > end)
        throw new Error(
          `syncer not synced after ${timeoutMs} ms: ${STATE_KINDS.filter((k) => !this.stores[k].synced).join(', ')}`,
        );
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Resolves when nothing is waiting to be written (tests). */
  async idle(): Promise<void> {
    await Promise.all(Object.values(this.stores).map((s) => s.idle()));
  }

  status(): SyncerStatus {
    const synced = {} as Record<StateKind, boolean>;
    const counts = {} as Record<StateKind, number>;
    let lastWriteError: string | undefined;
    for (const k of STATE_KINDS) {
      synced[k] = this.stores[k].synced;
      counts[k] = this.stores[k].size;
      if (this.stores[k].lastError) lastWriteError = this.stores[k].lastError!.message;
    }
    return {
      clusterConfigWritten: this.clusterConfigWritten,
      synced,
      counts,
      lastHeartbeat: this.lastHeartbeat,
      sourceErrors: { ...this.sourceErrors },
      lastWriteError,
    };
  }

  private async writeClusterConfig(): Promise<void> {
    await this.opts.store.put(
      clusterConfigKey(this.opts.clusterName),
      encodeClusterConfig(this.opts.clusterConfig),
    );
    this.clusterConfigWritten = true;
  }

  private async beat(): Promise<void> {
    const now = encodeTimestamp();
    try {
      await this.opts.store.put(HEARTBEAT_KEY, now);
      this.lastHeartbeat = now;
    } catch (err) {
      this.log.warn('heartbeat write failed', { error: err });
    }
  }

  private async run(name: string, source: ObjectSource, h: SourceHandlers): Promise<void> {
    const wrap = (fn: (o: KubeObject) => unknown) => (o: KubeObject) => {
      try {
        fn(o);
      } catch (err) {
        this.log.warn('skipping an object that cannot be exported', {
          resource: name,
          object: key(o),
          error: err,
        });
      }
    };
    const handle = await source({
      upsert: wrap(h.upsert),
      remove: wrap(h.remove),
      synced: () => {
        this.srcSynced.add(name);
        delete this.sourceErrors[name];
        h.synced();
      },
      error: (err) => {
        this.sourceErrors[name] = err.message;
        this.log.warn('source error (retrying)', { resource: name, error: err });
      },
      recovered: () => {
        if (this.sourceErrors[name] === undefined) return;
        delete this.sourceErrors[name];
        this.log.info('source works again', { resource: name });
      },
    });
    this.stops.push(() => handle.stop());
  }

  private onNode(o: KubeObject): void {
    const n = nodeToMesh(o, this.opts.clusterName, this.opts.clusterConfig.id);
    const k = nodeKey(this.opts.clusterName, o.metadata.name ?? '');
    if (n) this.stores.nodes.upsert(k, encodeNode(n));
    else if (o.metadata.name) this.stores.nodes.remove(k);
  }

  private onIdentity(o: KubeObject): void {
    const r = identityToMesh(o);
    if (!r) return;
    // Only this cluster's identities (cluster ID in bits 16-23, 15-23 with 511 clusters); reserved ones (< 256) every cluster knows.
    const layout = identityLayout(this.opts.clusterConfig.capabilities.maxConnectedClusters);
    if (clusterIdOf(r[0], layout) !== this.opts.clusterConfig.id) return;
    this.stores.identities.upsert(identityKey(r[0]), r[1]);
  }

  private onEndpoint(o: KubeObject): void {
    const entries = endpointToIPCache(o);
    const ips = entries.map((e) => e.ip);
    for (const old of this.cepIPs.get(key(o)) ?? [])
      if (!ips.includes(old)) this.stores.ip.remove(ipcacheKey(old));
    for (const e of entries) this.stores.ip.upsert(ipcacheKey(e.ip), encodeIPCacheEntry(e));
    if (ips.length > 0) this.cepIPs.set(key(o), ips);
    else this.cepIPs.delete(key(o));
  }

  private onEndpointGone(o: KubeObject): void {
    for (const old of this.cepIPs.get(key(o)) ?? []) this.stores.ip.remove(ipcacheKey(old));
    this.cepIPs.delete(key(o));
  }

  private onSlice(o: KubeObject, removed: boolean): void {
    const svc = o.metadata.labels?.[SERVICE_NAME_LABEL];
    if (!svc) return;
    const sk = `${o.metadata.namespace ?? ''}/${svc}`;
    let m = this.slicesBySvc.get(sk);
    if (!m) this.slicesBySvc.set(sk, (m = new Map()));
    if (removed) m.delete(o.metadata.name ?? '');
    else m.set(o.metadata.name ?? '', o);
    if (m.size === 0) this.slicesBySvc.delete(sk);
    this.refreshService(sk);
  }

  private refreshService(sk: string): void {
    const [ns, name] = sk.split('/') as [string, string];
    const k = serviceKey(this.opts.clusterName, ns, name);
    const svc = this.services.get(sk);
    const cs = svc
      ? (this.opts.exportService ?? catalogServiceExporter)({
          service: svc,
          slices: [...(this.slicesBySvc.get(sk)?.values() ?? [])],
          cluster: this.opts.clusterName,
          clusterID: this.opts.clusterConfig.id,
          exported: this.exports.has(sk),
        })
      : undefined;
    if (cs) this.stores.services.upsert(k, encodeClusterService(cs));
    else this.stores.services.remove(k);
    this.refreshExport(sk);
  }

  private refreshExport(sk: string): void {
    const [ns, name] = sk.split('/') as [string, string];
    const k = serviceExportKey(this.opts.clusterName, ns, name);
    const exp = this.exports.get(sk);
    const v = exp
      ? serviceExportToMesh(exp, this.services.get(sk), this.opts.clusterName)
      : undefined;
    if (v) this.stores.serviceexports.upsert(k, encodeServiceExport(v));
    else this.stores.serviceexports.remove(k);
  }

  private servicesPartSynced(_part: string): void {
    if (this.srcSynced.has('services') && this.srcSynced.has('endpointslices')) {
      this.stores.services.markSynced();
      if (this.srcSynced.has('serviceexports')) this.stores.serviceexports.markSynced();
    }
  }
}

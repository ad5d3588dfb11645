/**
 * The agent's service source: watches Services and EndpointSlices and turns
 * them into the datapath's service table (one ServiceEntry per ClusterIP and
 * port) with the service catalog's rules from src/services/. Remote backends
 * of global services are merged in by `setRemote` (the mesh source).
 * The catalog is the incremental one (ServiceCatalog): a change recomputes only
 * the Services it touches, not every Service of the cluster (at 10,000
 * Services a full recomputation costs ~150 ms of agent CPU, one change ~1 ms).
 */
import type { KubernetesObject, V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import type { KubeClient } from '../../k8s/client.js';
import type { Logger } from '../../util/log.js';
import type { LBAlgorithm, ServiceEntry } from '../../datapath/types.js';
import type { CatalogResult } from '../../services/catalog.js';
import { ServiceCatalog } from '../../services/catalog-store.js';
import type { ClusterService } from '../../services/cluster-service.js';
import { KindWatcher } from '../../k8s/kind-watcher.js';
import { Coalescer } from '../coalesce.js';

export interface ServiceSourceOptions {
  /** The client to list and watch with (the caller closes it). */
  client: KubeClient;
  logger: Logger;
  onProblem: (name: string) => (cause: string | undefined) => void;
  cluster: string;
  clusterId: number;
  algorithm?: LBAlgorithm;
}

/** Watches Services + EndpointSlices; calls back with the full table on every change (coalesced). */
export class ServiceSource {
  private readonly services: KindWatcher<V1Service>;
  private readonly slices: KindWatcher<V1EndpointSlice>;
  private readonly exports: KindWatcher<KubernetesObject>;
  private remoteExports: readonly { cluster: string; namespace: string; name: string }[] = [];
  private readonly listeners: Array<(entries: ServiceEntry[]) => void> = [];
  private readonly issueListeners: Array<(issues: CatalogResult['issues']) => void> = [];
  private started = false;
  readonly synced: Promise<void>;

  constructor(private readonly o: ServiceSourceOptions) {
    this.services = new KindWatcher<V1Service>({
      name: 'services',
      client: o.client,
      path: '/api/v1/services',
      logger: o.logger,
      onProblem: o.onProblem('services'),
    });
    this.slices = new KindWatcher<V1EndpointSlice>({
      name: 'endpointslices',
      client: o.client,
      path: '/apis/discovery.k8s.io/v1/endpointslices',
      logger: o.logger,
      onProblem: o.onProblem('endpointslices'),
    });
    this.exports = new KindWatcher<KubernetesObject>({
      name: 'serviceexports',
      client: o.client,
      path: '/apis/multicluster.x-k8s.io/v1alpha1/serviceexports',
      logger: o.logger,
      onProblem: o.onProblem('serviceexports'),
    });
    this.catalog = new ServiceCatalog({
      cluster: o.cluster,
      clusterID: o.clusterId,
      ...(o.algorithm ? { algorithm: o.algorithm } : {}),
    });
    const nsName = (x: KubernetesObject) =>
      [x.metadata?.namespace ?? 'default', x.metadata?.name ?? ''] as const;
    const upsertService = (x: V1Service) => (this.catalog.upsertService(x), this.changed());
    const upsertSlice = (x: V1EndpointSlice) => (
      this.catalog.upsertEndpointSlice(x),
      this.changed()
    );
    this.services
      .on('add', upsertService)
      .on('update', upsertService)
      .on('delete', (x) => (this.catalog.deleteService(...nsName(x)), this.changed()));
    this.slices
      .on('add', upsertSlice)
      .on('update', upsertSlice)
      .on('delete', (x) => (this.catalog.deleteEndpointSlice(...nsName(x)), this.changed()));
    const exportsChanged = () => ((this.exportsDirty = true), this.changed());
    this.exports
      .on('add', exportsChanged)
      .on('update', exportsChanged)
      .on('delete', exportsChanged);
    this.synced = Promise.all([this.services.synced, this.slices.synced, this.exports.synced]).then(
      () => {
        this.started = true;
        this.changed();
      },
    );
  }

  onChange(fn: (entries: ServiceEntry[]) => void): void {
    this.listeners.push(fn);
  }

  /** Called with the catalog's issues whenever they change. */
  onIssues(fn: (issues: CatalogResult['issues']) => void): void {
    this.issueListeners.push(fn);
  }

  private readonly catalog: ServiceCatalog;
  /** The MCS exports (local or remote) changed since the catalog last heard of them. */
  private exportsDirty = true;
  private lastIssues = '';
  private lastServices: CatalogResult['services'] = [];

  /** Sets the remote clusters' services (from the mesh); global services get their backends. */
  setRemote(remote: readonly ClusterService[]): void {
    // unchanged entries (the same objects, as RemoteState keeps them) cost nothing
    this.catalog.setRemoteServices(remote);
    this.changed();
  }

  /** Sets every remote cluster's MCS exports (from the mesh). */
  setRemoteExports(list: readonly { cluster: string; namespace: string; name: string }[]): void {
    this.remoteExports = list;
    this.exportsDirty = true;
    this.changed();
  }

  /** The catalog's current result. */
  result(): CatalogResult {
    if (this.exportsDirty) {
      this.exportsDirty = false;
      const local = this.exports.list().map((e) => ({
        cluster: this.o.cluster,
        namespace: e.metadata?.namespace ?? 'default',
        name: e.metadata?.name ?? '',
      }));
      this.catalog.setExportedServices(local.map((e) => `${e.namespace}/${e.name}`));
      this.catalog.setMcsExports([...local, ...this.remoteExports]);
    }
    return this.catalog.result();
  }

  /** The services of the last table computed (names and ClusterIPs, for flows). */
  catalogServices(): CatalogResult['services'] {
    return this.lastServices;
  }

  /** The current table. */
  entries(): ServiceEntry[] {
    const r = this.result();
    this.lastServices = r.services;
    const issues = JSON.stringify(r.issues);
    if (issues !== this.lastIssues) {
      this.lastIssues = issues;
      for (const i of r.issues) this.o.logger.warn('service issue', { ...i });
      for (const l of this.issueListeners) l(r.issues);
    }
    return r.entries;
  }

  private changed(): void {
    if (!this.started) return;
    // Coalesce bursts of events (a Deployment scale touches many objects) without a
    // fixed delay: what is queued in this turn of the event loop is one recompute; when
    // a recompute is expensive (thousands of services during a mesh bulk sync), the
    // next waits twice as long as it took, so CPU goes to work, not to recomputing.
    this.recomputes.schedule();
  }
  private readonly recomputes = new Coalescer(() => {
    const e = this.entries();
    for (const l of this.listeners) l(e);
  });

  async start(): Promise<void> {
    await Promise.all([this.services.start(), this.slices.start(), this.exports.start()]);
  }

  async stop(): Promise<void> {
    this.recomputes.stop();
    await Promise.all([this.services.stop(), this.slices.stop(), this.exports.stop()]);
  }
}

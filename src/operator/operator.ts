/**
 * The cluster operator (one per cluster, in the control plane):
 * - identities (CRD mode): allocates the security identity of every pod's
 *   label set (its namespace's labels included; a namespace's label change
 *   re-allocates its pods) as a CiliumIdentity object, with the cluster ID in bits 16-23,
 *   and garbage-collects identities no pod uses any more;
 * - IPAM: gives a Node without spec.podCIDR a free /24 of the cluster's pod CIDR;
 * - a status file (operator-status.json) that `tendril status` reads.
 */
import type {
  KubernetesObject,
  V1EndpointSlice,
  V1Namespace,
  V1Node,
  V1Pod,
  V1Service,
} from '@kubernetes/client-node';
import { KubeClient, type KubeClientOptions } from '../k8s/client.js';
import { IdentityAllocator } from '../identity/allocator.js';
import type { Logger } from '../util/log.js';
import { KindWatcher } from '../k8s/kind-watcher.js';
import { endpointIdentityLabels } from '../identity/pod-labels.js';
import { labelsString } from '../identity/labels.js';
import { CrdIdentityBackend } from '../identity/crd-backend.js';
import { MeshServicesController } from './mesh-services.js';
import { cidrContains, formatCIDR, parseCIDR, cidrsOverlap } from '../util/ipv4.js';
import { writeFileAtomicSync } from '../util/atomic-write.js';
import { clusterIdOf } from '../identity/numeric.js';

export interface OperatorConfig {
  apiServerURL: string;
  clusterName: string;
  clusterId: number;
  /** The cluster's pod CIDR, for nodes without one. */
  clusterPodCIDR?: string;
  gcIntervalMs: number;
  /** Unused identities are removed after this long (default: gcIntervalMs). */
  gcGraceMs?: number;
  statusFile?: string;
  /** Request headers for the API server (a kubeconfig's bearer token). */
  apiAuth?: KubeClientOptions;
  /** The clustermesh config directory (enables the mesh service controller, which follows the etcd it names). */
  clusterMeshConfigDir?: string;
  /** Import global services that only remote clusters have (default true). */
  importRemoteOnly?: boolean;
}

export interface OperatorStatus {
  pid: number;
  startedAt: string;
  updatedAt: string;
  clusterName: string;
  clusterId: number;
  synced: boolean;
  identities: number;
  podsWithIdentity: number;
  gcReleased: number;
  /** Remote-only services imported as local Services. */
  importedServices: number;
  /** MCS ServiceImports kept in this cluster. */
  serviceImports: number;
  lastError?: string;
}

/** The operator's control loops. */
export class Operator {
  readonly kube: KubeClient;
  /** The watchers' client (long request timeout: lists can be large). */
  private readonly watchClient: KubeClient;
  readonly allocator: IdentityAllocator;
  private readonly pods: KindWatcher<V1Pod>;
  private readonly namespaces: KindWatcher<V1Namespace>;
  private readonly nodes: KindWatcher<V1Node>;
  private readonly services: KindWatcher<V1Service>;
  private readonly slices: KindWatcher<V1EndpointSlice>;
  private readonly svcExports: KindWatcher<KubernetesObject>;
  private readonly svcImports: KindWatcher<KubernetesObject>;
  private readonly meshServices: MeshServicesController | undefined;
  /** pod "ns/name" -> canonical labels it holds a reference for */
  private readonly held = new Map<string, string>();
  private readonly idOf = new Map<string, number>();
  /** namespace name -> its labels as last seen (canonical JSON), to re-sync pods only on a change */
  private readonly nsLabels = new Map<string, string>();
  private stopGC: (() => void) | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private readonly st: OperatorStatus;
  private readonly log: Logger;
  private queue: Promise<void> = Promise.resolve();

  constructor(
    readonly config: OperatorConfig,
    logger: Logger,
  ) {
    this.log = logger.child({ subsys: 'operator' });
    this.kube = new KubeClient({
      ...config.apiAuth,
      server: config.apiServerURL,
      timeoutMs: 10_000,
    });
    this.allocator = new IdentityAllocator(new CrdIdentityBackend(this.kube), {
      clusterId: config.clusterId,
      gcGracePeriodMs: config.gcGraceMs ?? config.gcIntervalMs,
      logger: this.log,
    });
    this.watchClient = new KubeClient({
      ...config.apiAuth,
      server: config.apiServerURL,
      timeoutMs: 60_000,
    });
    const client = this.watchClient;
    const problem = (cause: string | undefined) => {
      if (cause) this.st.lastError = cause;
    };
    const watch = <T extends KubernetesObject>(name: string, path: string) =>
      new KindWatcher<T>({ name, client, path, logger: this.log, onProblem: problem });
    this.pods = watch<V1Pod>('pods', '/api/v1/pods');
    this.namespaces = watch<V1Namespace>('namespaces', '/api/v1/namespaces');
    this.nodes = watch<V1Node>('nodes', '/api/v1/nodes');
    this.services = watch<V1Service>('services', '/api/v1/services');
    this.slices = watch<V1EndpointSlice>(
      'endpointslices',
      '/apis/discovery.k8s.io/v1/endpointslices',
    );
    this.svcExports = watch(
      'serviceexports',
      '/apis/multicluster.x-k8s.io/v1alpha1/serviceexports',
    );
    this.svcImports = watch(
      'serviceimports',
      '/apis/multicluster.x-k8s.io/v1alpha1/serviceimports',
    );
    if (config.clusterMeshConfigDir) {
      this.meshServices = new MeshServicesController({
        mcs: { exports: this.svcExports, imports: this.svcImports },
        clusterMeshConfigDir: config.clusterMeshConfigDir,
        clusterName: config.clusterName,
        kube: this.kube,
        services: this.services,
        slices: this.slices,
        importRemoteOnly: config.importRemoteOnly ?? true,
        logger: this.log,
      });
    }
    const now = new Date().toISOString();
    this.st = {
      pid: process.pid,
      startedAt: now,
      updatedAt: now,
      clusterName: config.clusterName,
      clusterId: config.clusterId,
      synced: false,
      identities: 0,
      podsWithIdentity: 0,
      gcReleased: 0,
      importedServices: 0,
      serviceImports: 0,
    };
  }

  async start(): Promise<void> {
    const onPod = (p: V1Pod) => this.enqueue(() => this.syncPod(p));
    this.pods
      .on('add', onPod)
      .on('update', onPod)
      .on('delete', (p) => this.enqueue(() => this.dropPod(key(p))));
    const onNode = (n: V1Node) => this.enqueue(() => this.syncNode(n));
    this.nodes.on('add', onNode).on('update', onNode);
    // namespace labels are part of pod identities: the namespace cache is complete before
    // the first pod is handled, and a namespace's label change re-allocates its pods
    const onNamespace = (ns: V1Namespace) => {
      const name = ns.metadata?.name;
      const canon = JSON.stringify(sortedLabels(ns.metadata?.labels));
      if (!name || this.nsLabels.get(name) === canon) return;
      this.nsLabels.set(name, canon);
      for (const p of this.pods.list())
        if (p.metadata?.namespace === name) this.enqueue(() => this.syncPod(p));
    };
    this.namespaces
      .on('add', onNamespace)
      .on('update', onNamespace)
      .on('delete', (ns) => this.nsLabels.delete(ns.metadata?.name ?? ''));
    void this.namespaces.start();
    await this.namespaces.synced;
    void this.pods.start();
    void this.nodes.start();
    void this.services.start();
    void this.slices.start();
    void this.svcExports.start();
    void this.svcImports.start();
    await Promise.all([
      this.pods.synced,
      this.nodes.synced,
      this.services.synced,
      this.slices.synced,
      this.svcExports.synced,
      this.svcImports.synced,
    ]);
    this.st.synced = true;
    this.meshServices?.start();
    this.stopGC = this.allocator.startGC({
      intervalMs: this.config.gcIntervalMs,
      inUse: async () => {
        const before = (await this.allocator.list()).length;
        setTimeout(() => void this.countAfterGC(before), 200);
        return this.idOf.values();
      },
    });
    this.writeStatus();
    this.statusTimer = setInterval(() => void this.refreshStatus(), 5000);
  }

  private async countAfterGC(before: number): Promise<void> {
    try {
      const after = (await this.allocator.list()).length;
      if (after < before) this.st.gcReleased += before - after;
    } catch {
      // counted next time
    }
  }

  private enqueue(fn: () => Promise<void>): void {
    this.queue = this.queue.then(fn).catch((err) => {
      this.st.lastError = (err as Error).message;
      this.log.warn('operator task failed', { error: err });
    });
  }

  /** Allocates (or re-allocates on label change) the identity of one pod. */
  private async syncPod(p: V1Pod): Promise<void> {
    const k = key(p);
    const done =
      p.status?.phase === 'Succeeded' ||
      p.status?.phase === 'Failed' ||
      p.metadata?.deletionTimestamp;
    if (done || p.spec?.hostNetwork) return this.dropPod(k);
    const namespace = p.metadata?.namespace ?? 'default';
    const labels = endpointIdentityLabels(
      {
        namespace,
        labels: p.metadata?.labels ?? {},
        namespaceLabels: this.namespaces.get(namespace)?.metadata?.labels ?? {},
        ...(p.spec?.serviceAccountName ? { serviceAccount: p.spec.serviceAccountName } : {}),
      },
      this.config.clusterName,
    );
    const canon = labelsString(labels);
    if (this.held.get(k) === canon) return;
    if (this.held.has(k)) await this.dropPod(k);
    const a = await this.retry(() => this.allocator.allocate(labels), `allocate identity for ${k}`);
    this.held.set(k, canon);
    this.idOf.set(k, a.id);
    if (a.isNew) this.log.info('identity allocated', { id: a.id, labels: canon, pod: k });
  }

  private async dropPod(k: string): Promise<void> {
    const canon = this.held.get(k);
    if (canon === undefined) return;
    this.held.delete(k);
    this.idOf.delete(k);
    await this.allocator.release(canon);
  }

  private async retry<T>(fn: () => Promise<T>, what: string): Promise<T> {
    let delay = 200;
    for (let i = 0; ; i++) {
      try {
        return await fn();
      } catch (err) {
        if (i >= 6) throw err;
        this.log.warn(`${what} failed, retrying`, { error: err, retryInMs: delay });
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  /** Gives a node without a pod CIDR the first free /24 of the cluster's pod CIDR. */
  private async syncNode(n: V1Node): Promise<void> {
    if (n.spec?.podCIDR || !this.config.clusterPodCIDR || !n.metadata?.name) return;
    const cluster = parseCIDR(this.config.clusterPodCIDR, 'cluster pod CIDR');
    // a fresh list, not the watch cache: another node may have just got a CIDR
    const used = (await this.kube.list('v1', 'Node')).items
      .map((x) => x.spec?.podCIDR as string | undefined)
      .filter((c): c is string => !!c)
      .map((c) => parseCIDR(c));
    for (let i = 0; i < 2 ** Math.max(0, 24 - cluster.bits); i++) {
      const c = { base: (cluster.base + i * 256) >>> 0, bits: 24 };
      if (!cidrContains(cluster, formatCIDR(c).split('/')[0]!)) break;
      if (used.some((u) => cidrsOverlap(u, c))) continue;
      await this.kube.patch('v1', 'Node', n.metadata.name, {
        spec: { podCIDR: formatCIDR(c), podCIDRs: [formatCIDR(c)] },
      });
      this.log.info('assigned pod CIDR', { node: n.metadata.name, podCIDR: formatCIDR(c) });
      return;
    }
    this.st.lastError = `no free /24 left in ${this.config.clusterPodCIDR} for node ${n.metadata.name}`;
  }

  private async refreshStatus(): Promise<void> {
    try {
      const ids = await this.allocator.list();
      delete this.st.lastError; // errors are re-reported while they persist
      this.st.identities = ids.filter((r) => clusterIdOf(r.id) === this.config.clusterId).length;
    } catch (err) {
      this.st.lastError = (err as Error).message;
    }
    this.writeStatus();
  }

  private writeStatus(): void {
    this.st.updatedAt = new Date().toISOString();
    if (this.meshServices) {
      this.st.importedServices = this.meshServices.imported;
      this.st.serviceImports = this.meshServices.mcs?.imports ?? 0;
      if (this.meshServices.lastError)
        this.st.lastError = `mesh services: ${this.meshServices.lastError}`;
    }
    this.st.podsWithIdentity = this.held.size;
    if (!this.config.statusFile) return;
    writeFileAtomicSync(this.config.statusFile, JSON.stringify(this.st, null, 1));
  }

  status(): OperatorStatus {
    return { ...this.st, podsWithIdentity: this.held.size };
  }

  async stop(): Promise<void> {
    this.stopGC?.();
    if (this.statusTimer) clearInterval(this.statusTimer);
    await this.meshServices?.stop();
    await Promise.all(
      [
        this.pods,
        this.namespaces,
        this.nodes,
        this.services,
        this.slices,
        this.svcExports,
        this.svcImports,
      ].map((w) => (w as KindWatcher<KubernetesObject>).stop()),
    );
    this.watchClient.close();
    this.kube.close();
  }
}

/** A label map with sorted keys (so equal maps give equal JSON). */
function sortedLabels(labels: Record<string, string> | undefined): [string, string][] {
  return Object.entries(labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function key(p: V1Pod): string {
  return `${p.metadata?.namespace ?? ''}/${p.metadata?.name ?? ''}`;
}

/**
 * The operator's mesh service controller, from the mesh's remote services
 * (the cluster's clustermesh etcd, through MeshStateSource) and the local
 * Services and EndpointSlices:
 * - remote-only global services: a global service that only remote clusters
 *   have gets a local selector-less Service (labelled
 *   tendril.io/imported-service), so it has a ClusterIP and a DNS name here;
 *   the catalog gives it the remote backends. Imports no remote offers any
 *   more are deleted. Turned off with --set remote-service-import=false.
 * - the seed's global marker EndpointSlices (cilium.io/global-service=true):
 *   filled with the service's mesh-wide endpoints.
 * Writes are coalesced (50 ms) and retried on the next change or tick.
 */
import type { KubernetesObject, V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { MCSController } from './mcs.js';
import type { KubeClient } from '../k8s/client.js';
import { conditionsOf, type KubeObject } from '../k8s/objects.js';
import type { Logger } from '../util/log.js';
import { MeshStateSource } from '../clustermesh/agent-source.js';
import { readClusterMeshConfig } from '../clustermesh/clustermesh-config.js';
import type { ClusterService } from '../services/cluster-service.js';
import {
  importedServiceManifest,
  remoteOnlyServices,
  staleImports,
} from '../services/remote-only.js';
import { desiredGlobalSliceEndpoints, sameEndpoints } from '../services/export.js';
import {
  IMPORTED_LABEL,
  isMeshCreatedService,
  isRemoteOnlyImport,
  meshAnnotationsCondition,
  MESH_ANNOTATIONS_CONDITION,
  nsOf,
} from '../services/annotations.js';
import type { KindWatcher } from '../k8s/kind-watcher.js';
import { isNotFound, isConflict } from '../util/errors.js';

export interface MeshServicesOptions {
  /** The clustermesh config directory (one etcd config per remote cluster). */
  clusterMeshConfigDir: string;
  clusterName: string;
  kube: KubeClient;
  services: KindWatcher<V1Service>;
  slices: KindWatcher<V1EndpointSlice>;
  /** Import remote-only services (default true). */
  importRemoteOnly: boolean;
  /** ServiceExports and ServiceImports of this cluster (enables the MCS controller). */
  mcs?: { exports: KindWatcher<KubernetesObject>; imports: KindWatcher<KubernetesObject> };
  logger: Logger;
}

export class MeshServicesController {
  private readonly mesh: MeshStateSource;
  private timer: NodeJS.Timeout | undefined;
  private tick: NodeJS.Timeout | undefined;
  private running = false;
  private again = false;
  private readonly log: Logger;
  /** Last error, for status. */
  lastError: string | undefined;
  imported = 0;
  readonly mcs: MCSController | undefined;

  constructor(private readonly o: MeshServicesOptions) {
    this.log = o.logger.child({ subsys: 'mesh-services' });
    this.mesh = new MeshStateSource({
      configDir: o.clusterMeshConfigDir,
      localCluster: o.clusterName,
      logger: this.log,
    });
    this.mesh.on(() => this.schedule());
    const on = () => this.schedule();
    o.services.on('add', on).on('update', on).on('delete', on);
    o.slices.on('add', on).on('update', on).on('delete', on);
    if (o.mcs) {
      o.mcs.exports.on('add', on).on('update', on).on('delete', on);
      o.mcs.imports.on('delete', on);
      this.mcs = new MCSController({
        clusterName: o.clusterName,
        kube: o.kube,
        services: o.services,
        exports: o.mcs.exports,
        imports: o.mcs.imports,
        mesh: this.mesh,
        logger: this.log,
      });
    }
  }

  start(): void {
    this.mesh.start();
    // also catches a mesh connection whose initial events came before it was published
    this.tick = setInterval(() => this.schedule(), 2000);
    this.schedule();
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    if (this.tick) clearInterval(this.tick);
    await this.mesh.stop();
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.run();
    }, 50);
  }

  private async run(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      await this.reconcile();
      this.lastError = undefined;
    } catch (err) {
      this.lastError = (err as Error).message;
      this.log.warn('mesh service reconcile failed; retrying', { error: err });
    } finally {
      this.running = false;
      if (this.again) {
        this.again = false;
        this.schedule();
      }
    }
  }

  /**
   * Reports invalid mesh annotations on the Service itself: a False
   * condition tendril.io/MeshAnnotationsValid with the problems, removed
   * once they are fixed. Only writes when something changed.
   */
  private async reportAnnotationConditions(): Promise<void> {
    const slices = this.o.slices.list();
    for (const svc of this.o.services.list()) {
      if (isMeshCreatedService(svc)) continue;
      const want = meshAnnotationsCondition(
        svc,
        slices.filter((sl) => nsOf(sl) === nsOf(svc)),
      );
      const conds = conditionsOf(svc);
      const cur = conds.find((c) => c.type === MESH_ANNOTATIONS_CONDITION);
      if (!want && !cur) continue;
      if (want && cur && cur.status === want.status && cur.message === want.message) continue;
      const rest = conds.filter((c) => c.type !== MESH_ANNOTATIONS_CONDITION);
      const next = want
        ? [...rest, { ...want, lastTransitionTime: new Date().toISOString() }]
        : rest;
      const obj = svc as unknown as KubeObject;
      await this.o.kube
        .updateStatus({ ...obj, status: { ...(obj.status ?? {}), conditions: next } } as KubeObject)
        .catch((err) => {
          if (!(isConflict(err) || isNotFound(err))) throw err;
        });
      if (want)
        this.log.warn('invalid mesh annotation', {
          service: `${nsOf(svc)}/${svc.metadata?.name}`,
          problem: want.message,
        });
    }
  }

  /** The remote services, or undefined when the mesh is enabled but not read yet (keep what exists). */
  private remoteServices(): ClusterService[] | undefined {
    const st = this.mesh.state;
    if (!st) {
      // read the directory itself: the source may not have polled it yet
      try {
        return readClusterMeshConfig(this.o.clusterMeshConfigDir).length > 0 ? undefined : [];
      } catch {
        return undefined; // a broken config: keep what exists
      }
    }
    const out: ClusterService[] = [];
    const wanted = this.mesh.remoteNames;
    for (const c of st.clusters())
      if (!c.local && wanted.has(c.name)) for (const s of c.services.values()) out.push(s);
    return out;
  }

  private async reconcile(): Promise<void> {
    await this.reportAnnotationConditions();
    const remote = this.remoteServices();
    if (remote === undefined) return;
    const local = this.o.services.list();
    const slices = this.o.slices.list();
    // 1. remote-only imports
    const { services: wanted } = this.o.importRemoteOnly
      ? remoteOnlyServices(local, remote, { cluster: this.o.clusterName })
      : { services: [] };
    for (const w of wanted) {
      const cur = local.find((s) => nsOf(s) === w.namespace && s.metadata?.name === w.name);
      const manifest = importedServiceManifest(w) as unknown as KubeObject;
      if (!cur) {
        await this.createImport(manifest);
        this.log.info('imported remote-only service', {
          service: `${w.namespace}/${w.name}`,
          from: w.clusters.join(','),
        });
        continue;
      }
      if (cur.metadata?.labels?.[IMPORTED_LABEL] === undefined) continue; // a user's own Service
      const curPorts = JSON.stringify(
        (cur.spec?.ports ?? []).map((p) => [p.name ?? '', p.protocol ?? 'TCP', p.port]),
      );
      const wantPorts = JSON.stringify(w.ports.map((p) => [p.name, p.protocol, p.port]));
      const curFrom = cur.metadata?.annotations?.['tendril.io/imported-from'];
      if (curPorts !== wantPorts || curFrom !== w.clusters.join(',')) {
        const obj = cur as unknown as KubeObject;
        await this.o.kube.update({
          ...obj,
          metadata: {
            ...obj.metadata,
            annotations: {
              ...(obj.metadata.annotations ?? {}),
              ...(manifest.metadata.annotations ?? {}),
            },
          },
          spec: { ...obj.spec, ports: manifest.spec.ports },
        } as KubeObject);
      }
    }
    for (const s of local) {
      if (s.metadata?.labels?.[IMPORTED_LABEL] === undefined || isRemoteOnlyImport(s)) continue;
      // a user's own manifest applied over an earlier import (apply keeps the label): it is theirs now
      const obj = s as unknown as KubeObject;
      const labels = { ...(obj.metadata.labels ?? {}) };
      const annotations = { ...(obj.metadata.annotations ?? {}) };
      delete labels[IMPORTED_LABEL];
      delete annotations['tendril.io/imported-from'];
      await this.o.kube.update({ ...obj, metadata: { ...obj.metadata, labels, annotations } });
      this.log.info("a local Service replaced an import; it is the user's now", {
        service: `${nsOf(s)}/${s.metadata?.name}`,
      });
    }
    for (const s of staleImports(local, wanted)) {
      await this.o.kube
        .delete('v1', 'Service', s.metadata!.name!, { namespace: nsOf(s) })
        .catch(ignore404);
      this.log.info('removed import no remote offers any more', {
        service: `${nsOf(s)}/${s.metadata?.name}`,
      });
    }
    this.imported = wanted.length;
    // MCS: ServiceImports and derived services
    await this.mcs?.reconcile();
    // 2. the seed's global marker slices
    for (const slice of slices) {
      const eps = desiredGlobalSliceEndpoints(slice, {
        services: local,
        endpointSlices: slices,
        remoteServices: remote,
        cluster: this.o.clusterName,
      });
      if (!eps || sameEndpoints(slice.endpoints, eps)) continue;
      const obj = slice as unknown as KubeObject;
      await this.o.kube
        .update({
          ...obj,
          apiVersion: 'discovery.k8s.io/v1',
          kind: 'EndpointSlice',
          endpoints: eps,
        } as KubeObject)
        .catch((err) => {
          if (isConflict(err))
            this.again = true; // changed meanwhile: redo
          else throw err;
        });
    }
  }

  private async createImport(obj: KubeObject): Promise<void> {
    try {
      await this.o.kube.create(obj);
    } catch (err) {
      if (isConflict(err)) return;
      if (isNotFound(err)) {
        // the namespace does not exist here: create it, as an import needs one
        await this.o.kube
          .create({
            apiVersion: 'v1',
            kind: 'Namespace',
            metadata: { name: obj.metadata.namespace! },
          })
          .catch(() => undefined);
        await this.o.kube.create(obj);
        return;
      }
      throw err;
    }
  }
}

function ignore404(err: unknown): void {
  if (!isNotFound(err)) throw err;
}

/**
 * The operator's MCS controller (KEP-1645): from every cluster's service
 * exports (local ServiceExport objects + the mesh's exports of the other
 * clusters), it keeps in this cluster one ServiceImport and one derived
 * Service (holding the clusterset VIP; the catalog gives it the exporting
 * clusters' backends) per exported namespace/name, removes those no cluster
 * exports any more, and writes Valid and Conflict conditions on the local
 * ServiceExports (the oldest export wins conflicts).
 */
import type { KubernetesObject, V1Service } from '@kubernetes/client-node';
import type { KubeClient } from '../k8s/client.js';
import type { KubeObject } from '../k8s/objects.js';
import type { Logger } from '../util/log.js';
import type { MeshStateSource } from '../clustermesh/agent-source.js';
import {
  MCS_API_VERSION,
  derivedServiceManifest,
  derivedServiceName,
  exportKey,
  resolveServiceImports,
  serviceExportSpec,
  serviceExportValidity,
  serviceImportManifest,
  type MCSCondition,
  type ServiceExportSpec,
} from '../services/mcs.js';
import { MCS_SERVICE_NAME_LABEL, nsOf } from '../services/annotations.js';
import type { KindWatcher } from '../k8s/kind-watcher.js';
import { isNotFound, isConflict } from '../util/errors.js';

export interface MCSControllerOptions {
  clusterName: string;
  kube: KubeClient;
  services: KindWatcher<V1Service>;
  exports: KindWatcher<KubernetesObject>;
  imports: KindWatcher<KubernetesObject>;
  mesh: MeshStateSource | undefined;
  logger: Logger;
}

/** Local export specs: ServiceExports whose Service exists (with their validity). */
export function localExports(
  exportsList: readonly KubernetesObject[],
  services: readonly V1Service[],
  cluster: string,
): { specs: ServiceExportSpec[]; validity: Map<string, MCSCondition> } {
  const specs: ServiceExportSpec[] = [];
  const validity = new Map<string, MCSCondition>();
  for (const e of exportsList) {
    const ns = e.metadata?.namespace ?? 'default';
    const name = e.metadata?.name ?? '';
    const svc = services.find((s) => nsOf(s) === ns && s.metadata?.name === name);
    const v = serviceExportValidity(ns, name, svc);
    validity.set(`${ns}/${name}`, v);
    if (v.status === 'True' && svc) {
      const created = e.metadata?.creationTimestamp as unknown as string | Date | undefined;
      specs.push(serviceExportSpec(svc, { cluster, exportCreated: created }));
    }
  }
  return { specs, validity };
}

export class MCSController {
  private readonly log: Logger;
  lastError: string | undefined;
  imports = 0;

  constructor(private readonly o: MCSControllerOptions) {
    this.log = o.logger.child({ subsys: 'mcs' });
  }

  /** One reconcile pass. `remote` is undefined while the mesh is enabled but not read yet. */
  async reconcile(): Promise<void> {
    const st = this.o.mesh?.state;
    const remote: ServiceExportSpec[] = [];
    for (const c of st?.clusters() ?? []) {
      if (c.local) continue;
      for (const e of c.serviceExports.values())
        remote.push({ ...e, cluster: e.cluster || c.name });
    }
    const services = this.o.services.list();
    const { specs, validity } = localExports(this.o.exports.list(), services, this.o.clusterName);
    const { imports, conflicts } = resolveServiceImports([...specs, ...remote]);
    this.imports = imports.length;
    const wanted = new Set(imports.map((i) => `${i.namespace}/${i.name}`));

    for (const imp of imports) {
      const derivedName = derivedServiceName(imp.namespace, imp.name);
      const manifest = derivedServiceManifest(imp) as unknown as KubeObject;
      let derived = services.find(
        (s) => nsOf(s) === imp.namespace && s.metadata?.name === derivedName,
      ) as unknown as KubeObject | undefined;
      if (!derived) {
        derived = await this.create(manifest);
      } else if (JSON.stringify(portsOf(derived)) !== JSON.stringify(portsOf(manifest))) {
        derived = await this.o.kube.update({
          ...derived,
          spec: { ...derived.spec, ports: manifest.spec.ports },
        } as KubeObject);
      }
      const ips = (
        derived?.spec?.clusterIPs ?? (derived?.spec?.clusterIP ? [derived.spec.clusterIP] : [])
      ).filter((x: string) => x && x !== 'None');
      const want = serviceImportManifest(imp, { ips }) as unknown as KubeObject;
      const cur = this.o.imports
        .list()
        .find((i) => i.metadata?.namespace === imp.namespace && i.metadata?.name === imp.name) as
        KubeObject | undefined;
      if (!cur) {
        await this.create(want);
        this.log.info('service imported from the clusterset', {
          service: `${imp.namespace}/${imp.name}`,
          clusters: imp.clusters.join(','),
          ips: ips.join(','),
        });
      } else if (
        JSON.stringify([cur.spec, cur.status]) !== JSON.stringify([want.spec, want.status])
      ) {
        await this.o.kube.update({
          ...cur,
          metadata: { ...cur.metadata, annotations: want.metadata.annotations },
          spec: want.spec,
          status: want.status,
        } as KubeObject);
      }
    }
    // imports and derived services no cluster exports any more
    for (const i of this.o.imports.list()) {
      const k = `${i.metadata?.namespace}/${i.metadata?.name}`;
      if (!wanted.has(k))
        await this.o.kube
          .delete(MCS_API_VERSION, 'ServiceImport', i.metadata!.name!, {
            namespace: i.metadata!.namespace!,
          })
          .catch(ignore404);
    }
    for (const s of services) {
      const of = s.metadata?.labels?.[MCS_SERVICE_NAME_LABEL];
      if (of !== undefined && !wanted.has(`${nsOf(s)}/${of}`))
        await this.o.kube
          .delete('v1', 'Service', s.metadata!.name!, { namespace: nsOf(s) })
          .catch(ignore404);
    }
    // conditions on the local exports
    for (const e of this.o.exports.list()) {
      const ns = e.metadata?.namespace ?? 'default';
      const name = e.metadata?.name ?? '';
      const valid = validity.get(`${ns}/${name}`)!;
      const conflict = conflicts.get(
        exportKey({ cluster: this.o.clusterName, namespace: ns, name }),
      );
      const conds = [valid, ...(conflict ? [conflict] : [])];
      const obj = e as KubeObject;
      const prev = (obj.status?.conditions ?? []) as Array<
        MCSCondition & { lastTransitionTime?: string }
      >;
      const same =
        conds.length === prev.length &&
        conds.every((c) =>
          prev.some(
            (p) =>
              p.type === c.type &&
              p.status === c.status &&
              p.reason === c.reason &&
              p.message === c.message,
          ),
        );
      if (same) continue;
      const now = new Date().toISOString();
      const withTime = conds.map((c) => {
        const p = prev.find((x) => x.type === c.type);
        return {
          ...c,
          lastTransitionTime: p && p.status === c.status ? (p.lastTransitionTime ?? now) : now,
        };
      });
      await this.o.kube
        .updateStatus({
          ...obj,
          status: { ...(obj.status ?? {}), conditions: withTime },
        } as KubeObject)
        .catch((err) => {
          if (!(isConflict(err) || isNotFound(err))) throw err;
        });
    }
  }

  private async create(obj: KubeObject): Promise<KubeObject> {
    try {
      return await this.o.kube.create(obj);
    } catch (err) {
      if (isConflict(err))
        return this.o.kube.get(obj.apiVersion, obj.kind, obj.metadata.name!, {
          namespace: obj.metadata.namespace!,
        });
      if (isNotFound(err)) {
        await this.o.kube
          .create({
            apiVersion: 'v1',
            kind: 'Namespace',
            metadata: { name: obj.metadata.namespace! },
          })
          .catch(() => undefined);
        return this.o.kube.create(obj);
      }
      throw err;
    }
  }
}

function portsOf(s: KubeObject): unknown {
  return ((s.spec?.ports ?? []) as Array<{ name?: string; protocol?: string; port: number }>).map(
    (p) => [p.name ?? '', (p.protocol ?? 'TCP').toUpperCase(), p.port],
  );
}

function ignore404(err: unknown): void {
  if (!isNotFound(err)) throw err;
}

/**
 * Multi-Cluster Services (KEP-1645, multicluster.x-k8s.io/v1alpha1).
 *
 * A ServiceExport in cluster A exports A's Service of the same name. Every
 * connected cluster then gets a ServiceImport (and a derived Service that
 * holds its VIP and backends): `<svc>.<ns>.svc.clusterset.local` resolves to
 * it. The exports of one namespace/name across clusters are merged: the
 * ports are the union of all clusters' ports; where two clusters define a
 * port, the type or the session affinity differently, the oldest export
 * (creation time, then cluster name) wins and the others get a Conflict
 * condition saying what and why.
 */
import { createHash } from 'node:crypto';
import type { V1Service } from '@kubernetes/client-node';
import { GLOBAL_ANNOTATION, MCS_SERVICE_NAME_LABEL, nsOf, serviceKey } from './annotations.js';
import { isHeadless } from './backends.js';

export const MCS_API_VERSION = 'multicluster.x-k8s.io/v1alpha1';
/** The clusterset DNS zone. */
export const CLUSTERSET_DOMAIN = 'clusterset.local';

export interface MCSPort {
  name?: string;
  protocol: string;
  port: number;
  appProtocol?: string;
}

/** One cluster's export of one service (the shape of the mesh's MeshServiceExport). */
export interface ServiceExportSpec {
  cluster: string;
  namespace: string;
  name: string;
  /** When the ServiceExport was created, ISO-8601: the oldest wins conflicts. */
  exportCreationTimestamp: string;
  type: 'ClusterSetIP' | 'Headless';
  ports: MCSPort[];
  sessionAffinity?: 'None' | 'ClientIP';
}

/** A condition as MCS puts them on ServiceExport status. */
export interface MCSCondition {
  type: 'Valid' | 'Conflict';
  status: 'True' | 'False';
  reason: string;
  message: string;
}

/** The merged import of one namespace/name. */
export interface ResolvedServiceImport {
  namespace: string;
  name: string;
  type: 'ClusterSetIP' | 'Headless';
  ports: MCSPort[];
  sessionAffinity: 'None' | 'ClientIP';
  /** Exporting clusters, sorted. */
  clusters: string[];
  /** The cluster whose export won conflicts (the oldest). */
  oldestCluster: string;
}

export interface MCSResolution {
  imports: ResolvedServiceImport[];
  /** Conflict condition for every export, by "cluster/ns/name". */
  conflicts: Map<string, MCSCondition>;
}

/** "cluster/ns/name" */
export function exportKey(e: { cluster: string; namespace: string; name: string }): string {
  return `${e.cluster}/${e.namespace}/${e.name}`;
}

/**
 * The export spec of a local Service that has a ServiceExport.
 * `exportCreated` is the ServiceExport's metadata.creationTimestamp.
 */
export function serviceExportSpec(
  svc: V1Service,
  options: { cluster: string; exportCreated: string | Date | undefined },
): ServiceExportSpec {
  const created =
    options.exportCreated instanceof Date
      ? options.exportCreated.toISOString()
      : (options.exportCreated ?? new Date(0).toISOString());
  const spec: ServiceExportSpec = {
    cluster: options.cluster,
    namespace: nsOf(svc),
    name: svc.metadata?.name ?? '',
    exportCreationTimestamp: created,
    type: isHeadless(svc) ? 'Headless' : 'ClusterSetIP',
    ports: (svc.spec?.ports ?? []).map((p) => {
      const port: MCSPort = { protocol: (p.protocol ?? 'TCP').toUpperCase(), port: p.port };
      if (p.name) port.name = p.name;
      if (p.appProtocol) port.appProtocol = p.appProtocol;
      return port;
    }),
  };
  spec.sessionAffinity = svc.spec?.sessionAffinity === 'ClientIP' ? 'ClientIP' : 'None';
  return spec;
}

/**
 * The Valid condition of a ServiceExport: its Service must exist in the same
 * namespace and not be an ExternalName service.
 */
export function serviceExportValidity(
  namespace: string,
  name: string,
  svc: V1Service | undefined,
): MCSCondition {
  if (!svc)
    return {
      type: 'Valid',
      status: 'False',
      reason: 'NoService',
      message: `Service ${namespace}/${name} not found; create it or delete the ServiceExport`,
    };
  if (svc.spec?.type === 'ExternalName')
    return {
      type: 'Valid',
      status: 'False',
      reason: 'InvalidServiceType',
      message: `Service ${namespace}/${name} is of type ExternalName, which cannot be exported`,
    };
  return {
    type: 'Valid',
    status: 'True',
    reason: 'Valid',
    message: 'the Service is exported to the clusterset',
  };
}

/**
 * Merges all clusters' exports into one import per namespace/name, the
 * oldest export winning conflicts, and gives every export its Conflict
 * condition. Deterministic.
 */
export function resolveServiceImports(exports: readonly ServiceExportSpec[]): MCSResolution {
  const groups = new Map<string, ServiceExportSpec[]>();
  for (const e of exports)
    groups.set(serviceKey(e.namespace, e.name), [
      ...(groups.get(serviceKey(e.namespace, e.name)) ?? []),
      e,
    ]);
  const imports: ResolvedServiceImport[] = [];
  const conflicts = new Map<string, MCSCondition>();
  for (const k of [...groups.keys()].sort()) {
    const list = [...groups.get(k)!].sort(byAge);
    const oldest = list[0]!;
    const ports: MCSPort[] = [];
    const result: ResolvedServiceImport = {
      namespace: oldest.namespace,
      name: oldest.name,
      type: oldest.type,
      ports,
      sessionAffinity: oldest.sessionAffinity ?? 'None',
      clusters: [...new Set(list.map((e) => e.cluster))].sort(),
      oldestCluster: oldest.cluster,
    };
    for (const e of list) {
      const found: { reason: string; message: string }[] = [];
      if (e.type !== result.type)
        found.push({
          reason: 'TypeConflict',
          message: `type ${e.type} differs from ${result.type} of the oldest export (${oldest.cluster})`,
        });
      if ((e.sessionAffinity ?? 'None') !== result.sessionAffinity) {
        found.push({
          reason: 'SessionAffinityConflict',
          message: `sessionAffinity ${e.sessionAffinity ?? 'None'} differs from ${result.sessionAffinity} of the oldest export (${oldest.cluster})`,
        });
      }
      for (const p of e.ports) {
        const name = p.name ?? '';
        const proto = p.protocol.toUpperCase();
        const sameName = ports.find((q) => (q.name ?? '') === name);
        const sameNumber = ports.find((q) => q.port === p.port && q.protocol === proto);
        if (sameName && (sameName.port !== p.port || sameName.protocol !== proto)) {
          found.push({
            reason: 'PortConflict',
            message: `port "${name}" is ${p.port}/${proto} here but ${sameName.port}/${sameName.protocol} in the oldest export defining it`,
          });
        } else if (sameNumber && (sameNumber.name ?? '') !== name) {
          found.push({
            reason: 'PortConflict',
            message: `port ${p.port}/${proto} is named "${name}" here but "${sameNumber.name ?? ''}" in the oldest export defining it`,
          });
        } else if (!sameName) {
          const q: MCSPort = { protocol: proto, port: p.port };
          if (p.name) q.name = p.name;
          if (p.appProtocol) q.appProtocol = p.appProtocol;
          ports.push(q);
        }
      }
      conflicts.set(
        exportKey(e),
        found.length === 0
          ? {
              type: 'Conflict',
              status: 'False',
              reason: 'NoConflicts',
              message: "no conflicts with other clusters' exports",
            }
          : {
              type: 'Conflict',
              status: 'True',
              reason: found[0]!.reason,
              message: `${found.map((f) => f.message).join('; ')}; the oldest export's definition is used`,
            },
      );
    }
    ports.sort((a, b) => a.port - b.port || cmp(a.protocol, b.protocol));
    imports.push(result);
  }
  return { imports, conflicts };
}

/** The name of the derived Service of an import: "derived-" + 10 hex digits of a hash of ns/name (a valid DNS label). */
export function derivedServiceName(namespace: string, name: string): string {
  return `derived-${createHash('sha256').update(`${namespace}/${name}`).digest('hex').slice(0, 10)}`;
}

/**
 * The derived Service that carries an import's VIP and backends in an
 * importing cluster: no selector (the catalog fills its backends from the
 * exporting clusters), labelled with the imported service's name.
 */
export function derivedServiceManifest(imp: ResolvedServiceImport): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: derivedServiceName(imp.namespace, imp.name),
      namespace: imp.namespace,
      labels: { [MCS_SERVICE_NAME_LABEL]: imp.name },
      annotations: { [GLOBAL_ANNOTATION]: 'true' },
    },
    spec: {
      type: 'ClusterIP',
      ...(imp.type === 'Headless' ? { clusterIP: 'None' } : {}),
      sessionAffinity: imp.sessionAffinity,
      ports: imp.ports.map((p) => ({
        ...(p.name ? { name: p.name } : {}),
        protocol: p.protocol,
        port: p.port,
        ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}),
      })),
    },
  };
}

/** The ServiceImport object for an import, with the derived Service's ClusterIP(s) as `ips`. */
export function serviceImportManifest(
  imp: ResolvedServiceImport,
  options: { ips?: string[] } = {},
): Record<string, unknown> {
  return {
    apiVersion: MCS_API_VERSION,
    kind: 'ServiceImport',
    metadata: {
      name: imp.name,
      namespace: imp.namespace,
      annotations: {
        'multicluster.kubernetes.io/derived-service': derivedServiceName(imp.namespace, imp.name),
      },
    },
    spec: {
      type: imp.type,
      ...(imp.type === 'ClusterSetIP' && options.ips?.length ? { ips: [...options.ips] } : {}),
      ports: imp.ports.map((p) => ({ ...p })),
      sessionAffinity: imp.sessionAffinity,
    },
    status: { clusters: imp.clusters.map((cluster) => ({ cluster })) },
  };
}

function byAge(a: ServiceExportSpec, b: ServiceExportSpec): number {
  const ta = Date.parse(a.exportCreationTimestamp);
  const tb = Date.parse(b.exportCreationTimestamp);
  const na = Number.isNaN(ta) ? Infinity : ta;
  const nb = Number.isNaN(tb) ? Infinity : tb;
  if (na !== nb) return na < nb ? -1 : 1;
  return cmp(a.cluster, b.cluster);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

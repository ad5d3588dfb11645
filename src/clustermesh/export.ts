/**
 * Kubernetes objects -> the values the syncer exports into the mesh's etcd.
 * Pure functions: Node -> MeshNode, CiliumIdentity -> label string,
 * CiliumEndpoint -> IPCacheEntry, ServiceExport + Service -> MeshServiceExport,
 * and Service + EndpointSlices -> ClusterService (through a pluggable export
 * function; the default implements Cilium's global/shared annotations).
 */
import type { KubeObject } from '../k8s/objects.js';
import { labelsKVValue, makeLabel, makeLabels } from '../identity/labels.js';
import type { IPCacheEntry, MeshNode, MeshServiceExport } from './keys.js';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import type { ClusterService } from '../services/cluster-service.js';
import { exportClusterService } from '../services/export.js';

/** The label that ties an EndpointSlice to its Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** A Node -> the mesh's node value. Undefined if it has no usable address. */
export function nodeToMesh(
  node: KubeObject,
  cluster: string,
  clusterID: number,
): MeshNode | undefined {
  const name = node.metadata.name;
  if (!name) return undefined;
  const addrs = (node.status?.addresses ?? []) as { type: string; address: string }[];
  const addresses = addrs
    .filter(
      (a) =>
        a &&
        typeof a.address === 'string' &&
        (a.type === 'InternalIP' || a.type === 'ExternalIP' || a.type === 'Hostname'),
    )
    .map((a) => ({ type: a.type as MeshNode['addresses'][number]['type'], ip: a.address }));
  if (!addresses.some((a) => a.type === 'InternalIP')) return undefined;
  const podCIDRs: string[] = Array.isArray(node.spec?.podCIDRs)
    ? node.spec.podCIDRs
    : node.spec?.podCIDR
      ? [node.spec.podCIDR]
      : [];
  const n: MeshNode = { name, cluster, clusterID, addresses, podCIDRs };
  if (node.metadata.labels && Object.keys(node.metadata.labels).length > 0)
    n.labels = { ...node.metadata.labels };
  return n;
}

/** A CiliumIdentity -> [id, Cilium label string "k8s:a=b;k8s:c=d;"] (labels sorted, as the kvstore holds them). */
export function identityToMesh(obj: KubeObject): [number, string] | undefined {
  const id = Number(obj.metadata.name);
  if (!Number.isInteger(id) || id <= 0) return undefined;
  const sec = (obj['security-labels'] ?? obj.spec?.['security-labels'] ?? {}) as Record<
    string,
    string
  >;
  const labels = Object.entries(sec).map(([k, v]) => {
    const i = k.indexOf(':');
    return i > 0 ? makeLabel(k.slice(0, i), k.slice(i + 1), v ?? '') : makeLabel('k8s', k, v ?? '');
  });
  if (labels.length === 0) return [id, 'unspec:;'];
  return [id, labelsKVValue(makeLabels(labels))];
}

/** A CiliumEndpoint -> its ipcache entries (one per IPv4 address). */
export function endpointToIPCache(cep: KubeObject): IPCacheEntry[] {
  const st = cep.status ?? {};
  const identity = Number(st.identity?.id);
  if (!Number.isInteger(identity) || identity <= 0) return [];
  const hostIP: string = st.networking?.node ?? '';
  const addrs = (st.networking?.addressing ?? []) as { ipv4?: string }[];
  const out: IPCacheEntry[] = [];
  for (const a of addrs) {
    if (!a?.ipv4) continue;
    const e: IPCacheEntry = { ip: a.ipv4, identity, hostIP };
    if (cep.metadata.namespace) e.k8sNamespace = cep.metadata.namespace;
    if (cep.metadata.name) e.k8sPodName = cep.metadata.name;
    const named = st['named-ports'] as
      { name?: string; port: number; protocol?: string }[] | undefined;
    if (Array.isArray(named) && named.length > 0) {
      e.namedPorts = Object.fromEntries(
        named
          .filter((p) => p.name)
          .map((p) => [p.name!, { port: p.port, protocol: p.protocol ?? 'TCP' }]),
      );
    }
    out.push(e);
  }
  return out;
}

/** A ServiceExport of an existing Service -> the MCS export value (undefined if the Service is missing). */
export function serviceExportToMesh(
  exp: KubeObject,
  svc: KubeObject | undefined,
  cluster: string,
): MeshServiceExport | undefined {
  if (!svc || !exp.metadata.name || !exp.metadata.namespace) return undefined;
  const ports = (
    (svc.spec?.ports ?? []) as {
      name?: string;
      protocol?: string;
      port: number;
      appProtocol?: string;
    }[]
  ).map((p) => {
    const o: MeshServiceExport['ports'][number] = { protocol: p.protocol ?? 'TCP', port: p.port };
    if (p.name) o.name = p.name;
    if (p.appProtocol) o.appProtocol = p.appProtocol;
    return o;
  });
  const e: MeshServiceExport = {
    cluster,
    namespace: exp.metadata.namespace,
    name: exp.metadata.name,
    exportCreationTimestamp: exp.metadata.creationTimestamp ?? new Date(0).toISOString(),
    type: svc.spec?.clusterIP === 'None' ? 'Headless' : 'ClusterSetIP',
    ports,
  };
  if (svc.spec?.sessionAffinity === 'ClientIP' || svc.spec?.sessionAffinity === 'None')
    e.sessionAffinity = svc.spec.sessionAffinity;
  return e;
}

/** Inputs of the export decision for one Service. */
export interface ServiceExportInput {
  service: KubeObject;
  /** Every EndpointSlice labelled with the service's name (including a global-marker slice, if any). */
  slices: KubeObject[];
  cluster: string;
  clusterID: number;
  /** An MCS ServiceExport exists for the service (makes it global and shared). */
  exported: boolean;
}

/** Decides whether a Service is exported, and builds its ClusterService. */
export type ServiceExporter = (input: ServiceExportInput) => ClusterService | undefined;

/**
 * The export decision of the service catalog (src/services/export.ts):
 * global (annotation, legacy annotation, the seed's marker slice, or an MCS
 * export) and shared; backends are the ready local endpoints, never the
 * marker slice's mesh-filled ones; services the mesh created are never exported.
 */
export const catalogServiceExporter: ServiceExporter = ({
  service,
  slices,
  cluster,
  clusterID,
  exported,
}) =>
  exportClusterService(service as unknown as V1Service, slices as unknown as V1EndpointSlice[], {
    cluster,
    clusterID,
    exported,
  });

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
import type { ClusterService } from './remote-state.js';

/** The labels/annotations the mesh reads on Services and EndpointSlices. */
export const GLOBAL_ANNOTATION = 'service.cilium.io/global';
export const LEGACY_GLOBAL_ANNOTATION = 'io.cilium/global-service';
export const SHARED_ANNOTATION = 'service.cilium.io/shared';
export const LEGACY_SHARED_ANNOTATION = 'io.cilium/shared-service';
export const AFFINITY_ANNOTATION = 'service.cilium.io/affinity';
/** The seed's form: an EndpointSlice labelled so marks its service global. */
export const GLOBAL_SLICE_LABEL = 'cilium.io/global-service';
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** A Node -> the mesh's node value. Undefined if it has no usable address. */
export function nodeToMesh(node: KubeObject, cluster: string, clusterID: number): MeshNode | undefined {
  const name = node.metadata.name;
  if (!name) return undefined;
  const addrs = (node.status?.addresses ?? []) as { type: string; address: string }[];
  const addresses = addrs
    .filter((a) => a && typeof a.address === 'string' && (a.type === 'InternalIP' || a.type === 'ExternalIP' || a.type === 'Hostname'))
    .map((a) => ({ type: a.type as MeshNode['addresses'][number]['type'], ip: a.address }));
  if (!addresses.some((a) => a.type === 'InternalIP')) return undefined;
  const podCIDRs: string[] = Array.isArray(node.spec?.podCIDRs) ? node.spec.podCIDRs : node.spec?.podCIDR ? [node.spec.podCIDR] : [];
  const n: MeshNode = { name, cluster, clusterID, addresses, podCIDRs };
  if (node.metadata.labels && Object.keys(node.metadata.labels).length > 0) n.labels = { ...node.metadata.labels };
  return n;
}

/** A CiliumIdentity -> [id, Cilium label string "k8s:a=b;k8s:c=d;"] (labels sorted, as the kvstore holds them). */
export function identityToMesh(obj: KubeObject): [number, string] | undefined {
  const id = Number(obj.metadata.name);
  if (!Number.isInteger(id) || id <= 0) return undefined;
  const sec = (obj['security-labels'] ?? obj.spec?.['security-labels'] ?? {}) as Record<string, string>;
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
    const named = st['named-ports'] as { name?: string; port: number; protocol?: string }[] | undefined;
    if (Array.isArray(named) && named.length > 0) {
      e.namedPorts = Object.fromEntries(named.filter((p) => p.name).map((p) => [p.name!, { port: p.port, protocol: p.protocol ?? 'TCP' }]));
    }
    out.push(e);
  }
  return out;
}

/** A ServiceExport of an existing Service -> the MCS export value (undefined if the Service is missing). */
export function serviceExportToMesh(exp: KubeObject, svc: KubeObject | undefined, cluster: string): MeshServiceExport | undefined {
  if (!svc || !exp.metadata.name || !exp.metadata.namespace) return undefined;
  const ports = ((svc.spec?.ports ?? []) as { name?: string; protocol?: string; port: number; appProtocol?: string }[]).map((p) => {
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
  if (svc.spec?.sessionAffinity === 'ClientIP' || svc.spec?.sessionAffinity === 'None') e.sessionAffinity = svc.spec.sessionAffinity;
  return e;
}

/** Inputs of the export decision for one Service. */
export interface ServiceExportInput {
  service: KubeObject;
  /** Every EndpointSlice labelled with the service's name (including a global-marker slice, if any). */
  slices: KubeObject[];
  cluster: string;
  clusterID: number;
}

/** Decides whether a Service is exported, and builds its ClusterService. */
export type ServiceExporter = (input: ServiceExportInput) => ClusterService | undefined;

/** True if the slice is the seed's global marker (filled by the mesh, so never a source of local backends). */
export function isGlobalMarkerSlice(slice: KubeObject): boolean {
  return slice.metadata.labels?.[GLOBAL_SLICE_LABEL] === 'true';
}

/**
 * The default export decision (Cilium's): global (annotation, legacy
 * annotation, or a slice labelled cilium.io/global-service=true) and shared
 * (default true). Backends are the ready endpoints of the service's ordinary
 * slices — never of the marker slice, which holds mesh-wide endpoints.
 */
export const defaultServiceExporter: ServiceExporter = ({ service, slices, cluster, clusterID }) => {
  const ann = service.metadata.annotations ?? {};
  const global = ann[GLOBAL_ANNOTATION] === 'true' || ann[LEGACY_GLOBAL_ANNOTATION] === 'true' || slices.some(isGlobalMarkerSlice);
  const shared = (ann[SHARED_ANNOTATION] ?? ann[LEGACY_SHARED_ANNOTATION] ?? 'true') !== 'false';
  if (!global || !shared) return undefined;
  const frontends: Record<string, Record<string, { protocol: string; port: number }>> = {};
  const ports = (service.spec?.ports ?? []) as { name?: string; protocol?: string; port: number }[];
  const ips: string[] = Array.isArray(service.spec?.clusterIPs) ? service.spec.clusterIPs : service.spec?.clusterIP ? [service.spec.clusterIP] : [];
  for (const ip of ips.filter((x) => x && x !== 'None')) {
    frontends[ip] = Object.fromEntries(ports.map((p) => [p.name ?? '', { protocol: p.protocol ?? 'TCP', port: p.port }]));
  }
  const backends: Record<string, Record<string, { protocol: string; port: number }>> = {};
  for (const slice of slices) {
    if (isGlobalMarkerSlice(slice)) continue;
    const sp = (slice.ports ?? []) as { name?: string; protocol?: string; port?: number }[];
    for (const ep of (slice.endpoints ?? []) as { addresses?: string[]; conditions?: { ready?: boolean } }[]) {
      if (ep.conditions?.ready === false) continue;
      for (const addr of ep.addresses ?? []) {
        backends[addr] = Object.fromEntries(sp.filter((p) => typeof p.port === 'number').map((p) => [p.name ?? '', { protocol: p.protocol ?? 'TCP', port: p.port! }]));
      }
    }
  }
  return {
    cluster,
    namespace: service.metadata.namespace ?? 'default',
    name: service.metadata.name ?? '',
    frontends,
    backends,
    labels: { ...(service.metadata.labels ?? {}) },
    selector: { ...((service.spec?.selector ?? {}) as Record<string, string>) },
    includeExternal: true,
    shared: true,
    clusterID,
  };
};

/**
 * What the local cluster offers the mesh: the ClusterService of each global
 * and shared Service (Cilium's rule), and the endpoints the mesh writes into
 * the seed's global marker EndpointSlice.
 */
import type { V1Endpoint, V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import {
  isGlobalMarkerSlice,
  isMeshCreatedService,
  meshServiceOptions,
  nsOf,
  serviceKey,
  sliceServiceName,
} from './annotations.js';
import { compareIP, localBackends, portKey, serviceClusterIPs, servicePorts } from './backends.js';
import type { ClusterService, PortConfiguration } from './cluster-service.js';

export interface ExportOptions {
  cluster: string;
  clusterID: number;
  /** The Service has an MCS ServiceExport (makes it global and shared). */
  exported?: boolean;
}

/**
 * The ClusterService to write for `svc`, or undefined when it is not
 * exported: not global, shared=false, or created by the mesh itself (an
 * import or an MCS derived service — exporting those would echo remote
 * state back). Backends are the ready local endpoints, keyed by service
 * port name; frontends are the ClusterIPs.
 */
export function exportClusterService(
  svc: V1Service,
  slices: readonly V1EndpointSlice[],
  options: ExportOptions,
): ClusterService | undefined {
  if (isMeshCreatedService(svc) || !svc.metadata?.name) return undefined;
  const opts = meshServiceOptions(svc, slices, options.exported ?? false);
  if (!opts.global || !opts.shared) return undefined;
  const { ports } = servicePorts(svc);
  const frontends: Record<string, PortConfiguration> = {};
  for (const ip of serviceClusterIPs(svc)) {
    frontends[ip] = Object.fromEntries(
      ports.map((p) => [p.name, { Protocol: p.protocol, Port: p.port }]),
    );
  }
  const backends: Record<string, PortConfiguration> = {};
  const local = localBackends(svc, slices, ports);
  for (const p of ports) {
    for (const b of local.get(portKey(p)) ?? []) {
      if (!b.ready) continue;
      (backends[b.ip] ??= {})[p.name] = { Protocol: p.protocol, Port: b.port };
    }
  }
  const selector = { ...(svc.spec?.selector ?? {}) };
  return {
    cluster: options.cluster,
    namespace: nsOf(svc),
    name: svc.metadata.name,
    frontends,
    backends,
    labels: { ...(svc.metadata.labels ?? {}) },
    selector,
    includeExternal: Object.keys(selector).length === 0,
    shared: true,
    clusterID: options.clusterID,
  };
}

/** Input of desiredGlobalSliceEndpoints. */
export interface GlobalSliceInput {
  /** The local Services (the marker's service is looked up by name). */
  services: readonly V1Service[];
  /** The local EndpointSlices (the service's ordinary slices are read; markers are not). */
  endpointSlices: readonly V1EndpointSlice[];
  /** Remote clusters' ClusterServices. */
  remoteServices: readonly ClusterService[];
  /** The local cluster's name (its own entries in remoteServices are ignored). */
  cluster: string;
}

/**
 * The endpoints the mesh writes into a global marker slice (labelled
 * cilium.io/global-service=true and kubernetes.io/service-name=X): X's
 * mesh-wide endpoints — the local ones with their conditions, then every
 * remote cluster's backends of X (ready) — one endpoint per address, sorted
 * by address. The slice's own `ports` are the user's and are left alone.
 * Undefined if `slice` is not a marker.
 */
export function desiredGlobalSliceEndpoints(
  slice: V1EndpointSlice,
  input: GlobalSliceInput,
): V1Endpoint[] | undefined {
  const name = sliceServiceName(slice);
  if (!isGlobalMarkerSlice(slice) || !name) return undefined;
  const ns = nsOf(slice);
  const byIP = new Map<string, V1Endpoint>();
  const svc = input.services.find((s) => nsOf(s) === ns && s.metadata?.name === name);
  if (svc) {
    const local = localBackends(svc, input.endpointSlices);
    for (const list of local.values()) {
      for (const b of list) {
        const prev = byIP.get(b.ip);
        if (prev && prev.conditions?.ready) continue;
        const ep: V1Endpoint = {
          addresses: [b.ip],
          conditions: { ready: b.ready, serving: b.serving, terminating: b.terminating },
        };
        if (b.nodeName) ep.nodeName = b.nodeName;
        byIP.set(b.ip, ep);
      }
    }
  }
  // Local endpoints are listed even with shared=false: the slice lives in this cluster.
  for (const cs of input.remoteServices) {
    if (
      cs.cluster === input.cluster ||
      cs.namespace !== ns ||
      cs.name !== name ||
      cs.shared === false
    )
      continue;
    for (const ip of Object.keys(cs.backends)) {
      if (!byIP.has(ip))
        byIP.set(ip, {
          addresses: [ip],
          conditions: { ready: true, serving: true, terminating: false },
        });
    }
  }
  return [...byIP.values()].sort((a, b) => compareIP(a.addresses[0]!, b.addresses[0]!));
}

/** True if two endpoint lists are the same (addresses, conditions, node), so no write is needed. */
export function sameEndpoints(
  a: readonly V1Endpoint[] | undefined,
  b: readonly V1Endpoint[] | undefined,
): boolean {
  const norm = (l: readonly V1Endpoint[] | undefined) =>
    JSON.stringify(
      (l ?? []).map((e) => [
        [...(e.addresses ?? [])].sort(),
        e.conditions?.ready !== false,
        e.conditions?.serving ?? e.conditions?.ready !== false,
        e.conditions?.terminating === true,
        e.nodeName ?? '',
      ]),
    );
  return norm(a) === norm(b);
}

/** "ns/name" of every Service that has a global marker slice. */
export function servicesWithMarkerSlices(slices: readonly V1EndpointSlice[]): Set<string> {
  const out = new Set<string>();
  for (const s of slices) {
    const n = sliceServiceName(s);
    if (n && isGlobalMarkerSlice(s)) out.add(serviceKey(nsOf(s), n));
  }
  return out;
}

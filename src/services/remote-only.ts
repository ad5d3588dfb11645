/**
 * Remote-only global services: a global service that some remote cluster
 * exports and that has no local Service of the same namespace/name. Cilium
 * makes users create the Service in every cluster; Tendril imports it: the
 * operator creates a selector-less local Service from `importedServiceManifest`
 * (the API server gives it a ClusterIP, or pass one from CIDRAllocator),
 * DNS then answers `<svc>.<ns>.svc.cluster.local` for it and the catalog gives
 * it the remote backends. When no remote exports it any more, the operator
 * deletes the Services labelled tendril.io/imported-service that are not in
 * the list.
 */
import type { V1Service } from '@kubernetes/client-node';
import {
  isRemoteOnlyImport,
  GLOBAL_ANNOTATION,
  IMPORTED_LABEL,
  nsOf,
  serviceKey,
  type ServiceIssue,
} from './annotations.js';
import type { ClusterService } from './cluster-service.js';

/** A service to import. */
export interface RemoteOnlyService {
  namespace: string;
  name: string;
  /** Clusters exporting it, sorted. */
  clusters: string[];
  /** Ports from the exporting clusters' frontends (first cluster by name wins a conflict). */
  ports: { name: string; protocol: 'TCP' | 'UDP'; port: number }[];
}

/**
 * The remote-only services to import, sorted by namespace/name. A local
 * Service of that name (other than an earlier import) means no import.
 * Port definitions that conflict between clusters are reported.
 */
export function remoteOnlyServices(
  localServices: readonly V1Service[],
  remoteServices: readonly ClusterService[],
  options: { cluster: string },
): { services: RemoteOnlyService[]; issues: ServiceIssue[] } {
  const local = new Set(
    localServices
      .filter((s) => !isRemoteOnlyImport(s))
      .map((s) => serviceKey(nsOf(s), s.metadata?.name ?? '')),
  );
  const groups = new Map<string, ClusterService[]>();
  for (const cs of remoteServices) {
    if (cs.cluster === options.cluster || cs.shared === false) continue;
    const k = serviceKey(cs.namespace, cs.name);
    if (local.has(k)) continue;
    groups.set(k, [...(groups.get(k) ?? []), cs]);
  }
  const services: RemoteOnlyService[] = [];
  const issues: ServiceIssue[] = [];
  for (const k of [...groups.keys()].sort()) {
    const list = groups
      .get(k)!
      .sort((a, b) => (a.cluster < b.cluster ? -1 : a.cluster > b.cluster ? 1 : 0));
    const first = list[0]!;
    const ports = new Map<string, RemoteOnlyService['ports'][number]>();
    for (const cs of list) {
      const fe = Object.values(cs.frontends)[0] ?? {};
      for (const [pname, addr] of Object.entries(fe).sort(([a], [b]) =>
        a < b ? -1 : a > b ? 1 : 0,
      )) {
        if (addr.Protocol !== 'TCP' && addr.Protocol !== 'UDP') continue;
        const have = ports.get(pname);
        if (!have) {
          ports.set(pname, { name: pname, protocol: addr.Protocol, port: addr.Port });
        } else if (have.port !== addr.Port || have.protocol !== addr.Protocol) {
          issues.push({
            namespace: first.namespace,
            name: first.name,
            kind: 'ClusterService',
            code: 'SERVICE_PORT_CONFLICT',
            message: `port "${pname}" is ${addr.Port}/${addr.Protocol} in ${cs.cluster} but ${have.port}/${have.protocol} in ${list[0]!.cluster}; using ${list[0]!.cluster}'s`,
          });
        }
      }
    }
    services.push({
      namespace: first.namespace,
      name: first.name,
      clusters: list.map((c) => c.cluster),
      ports: [...ports.values()].sort((a, b) => a.port - b.port || (a.name < b.name ? -1 : 1)),
    });
  }
  return { services, issues };
}

/**
 * The local Service that imports a remote-only service: global, without
 * selector, labelled tendril.io/imported-service (so it is never exported
 * back, and the operator knows it owns it). Pass `clusterIP` when the
 * API server does not assign one.
 */
export function importedServiceManifest(
  r: RemoteOnlyService,
  options: { clusterIP?: string } = {},
): V1Service {
  const svc: V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: r.name,
      namespace: r.namespace,
      labels: { [IMPORTED_LABEL]: 'true' },
      annotations: {
        [GLOBAL_ANNOTATION]: 'true',
        'tendril.io/imported-from': r.clusters.join(','),
      },
    },
    spec: {
      type: 'ClusterIP',
      ports: r.ports.map((p) => ({
        ...(p.name ? { name: p.name } : {}),
        protocol: p.protocol,
        port: p.port,
      })),
    },
  };
  if (options.clusterIP) svc.spec!.clusterIP = options.clusterIP;
  return svc;
}

/** Imported Services (labelled tendril.io/imported-service) that no remote exports any more: delete them. */
export function staleImports(
  localServices: readonly V1Service[],
  wanted: readonly RemoteOnlyService[],
): V1Service[] {
  const want = new Set(wanted.map((r) => serviceKey(r.namespace, r.name)));
  return localServices.filter(
    (s) => isRemoteOnlyImport(s) && !want.has(serviceKey(nsOf(s), s.metadata?.name ?? '')),
  );
}

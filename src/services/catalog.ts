/**
 * The service catalog: local Services and EndpointSlices plus the mesh's
 * remote ClusterServices -> the datapath's ServiceEntry list. Pure and
 * deterministic: the same input gives the same output, sorted.
 *
 * Per Service with a ClusterIP, per port (TCP/UDP), per ClusterIP:
 *   frontend ClusterIP:port -> backends
 *   - local backends: the ready endpoints of the Service's ordinary
 *     EndpointSlices (slice ports matched to the service port by name and
 *     protocol; the port number there is the resolved target port);
 *   - if the Service is global: the backends of every remote cluster's
 *     ClusterService of the same namespace/name (matched by port name);
 *   - affinity local: local ready backends if any, else the remote ones;
 *     remote: the reverse; none: both;
 *   - local endpoints that are not ready but still serving (terminating) are
 *     listed with ready: false, so the datapath can keep their connections.
 *
 * MCS derived services (label multicluster.kubernetes.io/service-name: X)
 * take their backends from X: the local ones if X is exported here, and the
 * remote ones of the clusters that export X. Remote-only imports (label
 * tendril.io/imported-service) have only remote backends.
 */
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import type { Backend, LBAlgorithm, ServiceEntry } from '../datapath/types.js';
import {
  IMPORTED_LABEL,
  MCS_SERVICE_NAME_LABEL,
  meshServiceOptions,
  nsOf,
  serviceKey,
  sliceServiceName,
  type Affinity,
  type ServiceIssue,
} from './annotations.js';
import {
  compareIP,
  localBackends,
  portKey,
  serviceClusterIPs,
  servicePorts,
  type LocalBackend,
  type ServicePortSpec,
} from './backends.js';
import type { ClusterService } from './cluster-service.js';

export interface CatalogInput {
  /** The local cluster's name and ID. */
  cluster: string;
  clusterID: number;
  services: readonly V1Service[];
  endpointSlices: readonly V1EndpointSlice[];
  /** Remote clusters' ClusterServices (entries of the local cluster are ignored). */
  remoteServices?: readonly ClusterService[];
  /** "ns/name" of local Services that have an MCS ServiceExport (they are global and shared). */
  exportedServices?: Iterable<string>;
  /** MCS exports of every cluster: decides which clusters back a derived service. Without it, all do. */
  mcsExports?: readonly { cluster: string; namespace: string; name: string }[];
  /** Backend selection algorithm of every entry (default random). */
  algorithm?: LBAlgorithm;
}

/** What the catalog decided for one Service (for status, debug output and DNS). */
export interface CatalogService {
  namespace: string;
  name: string;
  global: boolean;
  shared: boolean;
  affinity: Affinity;
  kind: 'local' | 'imported' | 'derived';
  clusterIPs: string[];
  /** Ready backends per service port name, before affinity: local and remote counts. */
  backendCounts: { port: string; local: number; remote: number }[];
}

export interface CatalogResult {
  entries: ServiceEntry[];
  services: CatalogService[];
  issues: ServiceIssue[];
}

/** Computes the datapath's desired services. Never throws on bad objects: they become issues. */
export function desiredServiceEntries(input: CatalogInput): CatalogResult {
  const algorithm = input.algorithm ?? 'random';
  const exported = new Set(input.exportedServices ?? []);
  const remoteByName = new Map<string, ClusterService[]>();
  for (const cs of input.remoteServices ?? []) {
    if (cs.cluster === input.cluster) continue;
    const k = serviceKey(cs.namespace, cs.name);
    remoteByName.set(k, [...(remoteByName.get(k) ?? []), cs]);
  }
  for (const list of remoteByName.values())
    list.sort((a, b) => (a.cluster < b.cluster ? -1 : a.cluster > b.cluster ? 1 : 0));
  const mcsClusters = input.mcsExports ? groupClusters(input.mcsExports) : undefined;
  const slicesByService = new Map<string, V1EndpointSlice[]>();
  for (const s of input.endpointSlices) {
    const n = sliceServiceName(s);
    if (!n) continue;
    const k = serviceKey(nsOf(s), n);
    slicesByService.set(k, [...(slicesByService.get(k) ?? []), s]);
  }
  const localByName = new Map(
    input.services.map((s) => [serviceKey(nsOf(s), s.metadata?.name ?? ''), s]),
  );

  const entries: ServiceEntry[] = [];
  const services: CatalogService[] = [];
  const issues: ServiceIssue[] = [];
  const frontendsSeen = new Map<string, string>();
  const sorted = [...input.services].sort((a, b) =>
    cmp(serviceKey(nsOf(a), a.metadata?.name ?? ''), serviceKey(nsOf(b), b.metadata?.name ?? '')),
  );

  for (const svc of sorted) {
    const ns = nsOf(svc);
    const name = svc.metadata?.name ?? '';
    if (!name) continue;
    const key = serviceKey(ns, name);
    const labels = svc.metadata?.labels ?? {};
    const derivedFrom = labels[MCS_SERVICE_NAME_LABEL];
    const imported = labels[IMPORTED_LABEL] !== undefined;
    const kind: CatalogService['kind'] = derivedFrom ? 'derived' : imported ? 'imported' : 'local';
    const opts = meshServiceOptions(svc, slicesByService.get(key) ?? [], exported.has(key));
    issues.push(...opts.issues);
    const { ports, issues: portIssues } = servicePorts(svc);
    issues.push(...portIssues);
    const ips = serviceClusterIPs(svc);

    // Where backends come from.
    let localSource: V1Service | undefined = svc;
    let remotes: ClusterService[] = [];
    let global = opts.global;
    if (kind === 'derived') {
      const srcKey = serviceKey(ns, derivedFrom!);
      localSource = exported.has(srcKey) ? localByName.get(srcKey) : undefined;
      const allowed = mcsClusters?.get(srcKey);
      remotes = (remoteByName.get(srcKey) ?? []).filter(
        (cs) => !allowed || allowed.has(cs.cluster),
      );
      global = true;
    } else if (kind === 'imported') {
      localSource = undefined;
      remotes = remoteByName.get(key) ?? [];
      global = true;
    } else if (opts.global) {
      remotes = remoteByName.get(key) ?? [];
    }
    remotes = remotes.filter((cs) => cs.shared !== false);

    const local: Map<string, LocalBackend[]> = localSource
      ? localBackends(
          localSource,
          slicesByService.get(serviceKey(ns, localSource.metadata?.name ?? '')) ?? [],
          matchPorts(ports, localSource),
        )
      : new Map();
    const counts: CatalogService['backendCounts'] = [];
    for (const sp of ports) {
      const localList: LocalBackend[] = local.get(portKey(sp)) ?? [];
      const localReady: Backend[] = localList
        .filter((b) => b.ready)
        .map((b) => ({ ip: b.ip, port: b.port, clusterId: input.clusterID, ready: true }));
      const localServing: Backend[] = localList
        .filter((b) => !b.ready && b.serving)
        .map((b) => ({ ip: b.ip, port: b.port, clusterId: input.clusterID, ready: false }));
      const remoteReady = remoteBackends(remotes, sp);
      counts.push({ port: sp.name, local: localReady.length, remote: remoteReady.length });
      const chosen = chooseByAffinity(
        global ? opts.affinity : 'none',
        localReady,
        global ? remoteReady : [],
      );
      const backends = dedupe([...chosen, ...localServing]);
      for (const ip of ips) {
        const fk = `${ip}:${sp.port}/${sp.protocol}`;
        const owner = frontendsSeen.get(fk);
        if (owner !== undefined) {
          issues.push({
            namespace: ns,
            name,
            kind: 'Service',
            code: 'SERVICE_DUPLICATE_FRONTEND',
            message: `${fk} is already the frontend of ${owner}; this port is not served`,
          });
          continue;
        }
        frontendsSeen.set(fk, key);
        entries.push({
          frontend: { ip, port: sp.port, protocol: sp.protocol },
          backends,
          algorithm,
        });
      }
    }
    services.push({
      namespace: ns,
      name,
      global,
      shared: opts.shared,
      affinity: opts.affinity,
      kind,
      clusterIPs: ips,
      backendCounts: counts,
    });
  }
  entries.sort(
    (a, b) =>
      compareIP(a.frontend.ip, b.frontend.ip) ||
      a.frontend.port - b.frontend.port ||
      cmp(a.frontend.protocol, b.frontend.protocol),
  );
  return { entries, services, issues };
}

/**
 * Picks backends by affinity: the preferred side's ready backends, or the
 * other side's when none is left there; "none" uses both.
 */
export function chooseByAffinity(
  affinity: Affinity,
  local: Backend[],
  remote: Backend[],
): Backend[] {
  if (affinity === 'local') return local.length > 0 ? local : remote;
  if (affinity === 'remote') return remote.length > 0 ? remote : local;
  return [...local, ...remote];
}

/** The remote backends for one service port (by port name; protocol must match or be ANY), in cluster order then IP. */
export function remoteBackends(
  remotes: readonly ClusterService[],
  sp: Pick<ServicePortSpec, 'name' | 'protocol'>,
): Backend[] {
  const out: Backend[] = [];
  for (const cs of remotes) {
    const ips = Object.keys(cs.backends).sort(compareIP);
    for (const ip of ips) {
      const pc = cs.backends[ip]![sp.name];
      if (!pc || (pc.Protocol !== sp.protocol && pc.Protocol !== 'ANY')) continue;
      out.push({ ip, port: pc.Port, clusterId: cs.clusterID, ready: true });
    }
  }
  return out;
}

/** A derived service's ports are the import's; the source Service's slices are keyed by the source's port names, which are the same. */
function matchPorts(ports: ServicePortSpec[], source: V1Service): ServicePortSpec[] {
  const src = servicePorts(source).ports;
  return ports.map((p) => src.find((s) => s.name === p.name && s.protocol === p.protocol) ?? p);
}

function dedupe(bs: Backend[]): Backend[] {
  const seen = new Set<string>();
  return bs.filter((b) => {
    const k = `${b.ip}:${b.port}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function groupClusters(
  exports: readonly { cluster: string; namespace: string; name: string }[],
): Map<string, Set<string>> {
  const m = new Map<string, Set<string>>();
  for (const e of exports) {
    const k = serviceKey(e.namespace, e.name);
    m.set(k, (m.get(k) ?? new Set()).add(e.cluster));
  }
  return m;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

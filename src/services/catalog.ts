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
  isRemoteOnlyImport,
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
  ipv4Num,
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

/**
 * What computing one Service needs to know about the rest, as lookups (so
 * the batch function and the incremental ServiceCatalog share the logic).
 */
export interface CatalogContext {
  cluster: string;
  clusterID: number;
  algorithm: LBAlgorithm;
  /** The Service's ordinary and marker EndpointSlices, by "ns/name" of the Service. */
  slicesOf(key: string): readonly V1EndpointSlice[];
  /** Remote clusters' ClusterServices of "ns/name", sorted by cluster, the local cluster's excluded. */
  remotesOf(key: string): readonly ClusterService[];
  /** The local Service "ns/name". */
  localService(key: string): V1Service | undefined;
  /** Has the local Service "ns/name" an MCS ServiceExport? */
  isExported(key: string): boolean;
  /** Clusters exporting "ns/name" by MCS; undefined: not tracked (all remotes count). */
  mcsClustersOf(key: string): ReadonlySet<string> | undefined;
}

/** The result for one Service, before frontends of different Services are checked for clashes. */
export interface ServiceComputation {
  key: string;
  entries: ServiceEntry[];
  service: CatalogService;
  issues: ServiceIssue[];
  /** For MCS derived services: the "ns/name" whose backends they take. */
  sourceKey?: string;
}

/** Computes the datapath's desired services. Never throws on bad objects: they become issues. */
export function desiredServiceEntries(input: CatalogInput): CatalogResult {
  const exported = new Set(input.exportedServices ?? []);
  const remoteByName = new Map<string, ClusterService[]>();
  for (const cs of input.remoteServices ?? []) {
    if (cs.cluster === input.cluster) continue;
    const k = serviceKey(cs.namespace, cs.name);
    const l = remoteByName.get(k);
    if (l) l.push(cs);
    else remoteByName.set(k, [cs]);
  }
  for (const list of remoteByName.values()) list.sort((a, b) => cmp(a.cluster, b.cluster));
  const mcsClusters = input.mcsExports ? groupClusters(input.mcsExports) : undefined;
  const slicesByService = new Map<string, V1EndpointSlice[]>();
  for (const s of input.endpointSlices) {
    const n = sliceServiceName(s);
    if (!n) continue;
    const k = serviceKey(nsOf(s), n);
    const l = slicesByService.get(k);
    if (l) l.push(s);
    else slicesByService.set(k, [s]);
  }
  const localByName = new Map(
    input.services.map((s) => [serviceKey(nsOf(s), s.metadata?.name ?? ''), s]),
  );
  const ctx: CatalogContext = {
    cluster: input.cluster,
    clusterID: input.clusterID,
    algorithm: input.algorithm ?? 'random',
    slicesOf: (k) => slicesByService.get(k) ?? [],
    remotesOf: (k) => remoteByName.get(k) ?? [],
    localService: (k) => localByName.get(k),
    isExported: (k) => exported.has(k),
    mcsClustersOf: (k) => (mcsClusters ? (mcsClusters.get(k) ?? new Set()) : undefined),
  };
  const results: ServiceComputation[] = [];
  for (const svc of input.services) {
    const r = computeService(svc, ctx);
    if (r) results.push(r);
  }
  return assembleCatalog(results);
}

/** Computes one Service (undefined for a Service without a name). */
export function computeService(
  svc: V1Service,
  ctx: CatalogContext,
): ServiceComputation | undefined {
  const ns = nsOf(svc);
  const name = svc.metadata?.name ?? '';
  if (!name) return undefined;
  const key = serviceKey(ns, name);
  const labels = svc.metadata?.labels ?? {};
  const derivedFrom = labels[MCS_SERVICE_NAME_LABEL];
  const imported = isRemoteOnlyImport(svc);
  const kind: CatalogService['kind'] = derivedFrom ? 'derived' : imported ? 'imported' : 'local';
  const issues: ServiceIssue[] = [];
  const opts = meshServiceOptions(svc, ctx.slicesOf(key), ctx.isExported(key));
  issues.push(...opts.issues);
  const { ports, issues: portIssues } = servicePorts(svc);
  issues.push(...portIssues);
  const ips = serviceClusterIPs(svc);

  // Where backends come from.
  let localSource: V1Service | undefined = svc;
  let localKey = key;
  let remotes: readonly ClusterService[] = [];
  let global = opts.global;
  let sourceKey: string | undefined;
  if (kind === 'derived') {
    sourceKey = serviceKey(ns, derivedFrom!);
    localKey = sourceKey;
    localSource = ctx.isExported(sourceKey) ? ctx.localService(sourceKey) : undefined;
    const allowed = ctx.mcsClustersOf(sourceKey);
    remotes = ctx.remotesOf(sourceKey).filter((cs) => !allowed || allowed.has(cs.cluster));
    global = true;
  } else if (kind === 'imported') {
    localSource = undefined;
    remotes = ctx.remotesOf(key);
    global = true;
  } else if (opts.global) {
    remotes = ctx.remotesOf(key);
  }
  remotes = remotes.filter((cs) => cs.shared !== false && cs.cluster !== ctx.cluster);

  const local: Map<string, LocalBackend[]> = localSource
    ? localBackends(localSource, ctx.slicesOf(localKey), matchPorts(ports, localSource))
    : new Map();
  const counts: CatalogService['backendCounts'] = [];
  const entries: ServiceEntry[] = [];
  for (const sp of ports) {
    const localList: LocalBackend[] = local.get(portKey(sp)) ?? [];
    const localReady: Backend[] = [];
    const localServing: Backend[] = [];
    for (const b of localList) {
      if (b.ready)
        localReady.push({ ip: b.ip, port: b.port, clusterId: ctx.clusterID, ready: true });
      else if (b.serving)
        localServing.push({ ip: b.ip, port: b.port, clusterId: ctx.clusterID, ready: false });
    }
    const remoteReady = global ? remoteBackends(remotes, sp) : [];
    counts.push({ port: sp.name, local: localReady.length, remote: remoteReady.length });
    const chosen = chooseByAffinity(global ? opts.affinity : 'none', localReady, remoteReady);
    const backends = dedupe(localServing.length ? [...chosen, ...localServing] : chosen);
    for (const ip of ips) {
      entries.push({
        frontend: { ip, port: sp.port, protocol: sp.protocol },
        backends,
        algorithm: ctx.algorithm,
      });
    }
  }
  const service: CatalogService = {
    namespace: ns,
    name,
    global,
    shared: opts.shared,
    affinity: opts.affinity,
    kind,
    clusterIPs: ips,
    backendCounts: counts,
  };
  return sourceKey
    ? { key, entries, service, issues, sourceKey }
    : { key, entries, service, issues };
}

/**
 * Puts per-Service results together: in "ns/name" order, a frontend claimed
 * by two Services goes to the first (the other gets SERVICE_DUPLICATE_FRONTEND);
 * entries sorted by frontend address, port, protocol.
 */
export function assembleCatalog(results: readonly ServiceComputation[]): CatalogResult {
  const sorted = [...results].sort((a, b) => cmp(a.key, b.key));
  const entries: { e: ServiceEntry; n: number }[] = [];
  const services: CatalogService[] = [];
  const issues: ServiceIssue[] = [];
  const frontendsSeen = new Map<string, string>();
  for (const r of sorted) {
    issues.push(...r.issues);
    services.push(r.service);
    for (const e of r.entries) {
      const fk = `${e.frontend.ip}:${e.frontend.port}/${e.frontend.protocol}`;
      const owner = frontendsSeen.get(fk);
      if (owner !== undefined) {
        issues.push({
          namespace: r.service.namespace,
          name: r.service.name,
          kind: 'Service',
          code: 'SERVICE_DUPLICATE_FRONTEND',
          message: `${fk} is already the frontend of ${owner}; this port is not served`,
        });
        continue;
      }
      frontendsSeen.set(fk, r.key);
      entries.push({ e, n: ipv4Num(e.frontend.ip) ?? 0 });
    }
  }
  entries.sort(
    (a, b) =>
      a.n - b.n ||
      a.e.frontend.port - b.e.frontend.port ||
      cmp(a.e.frontend.protocol, b.e.frontend.protocol),
  );
  return { entries: entries.map((x) => x.e), services, issues };
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

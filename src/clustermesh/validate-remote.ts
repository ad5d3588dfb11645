/**
 * Remote cluster data is untrusted input. Every record read from a remote
 * cluster (by kvstoremesh before it is cached, and by the agents' RemoteState
 * before it reaches routes, the ipcache or service backends) is checked here:
 *
 *   nodes           named as in the key; cluster name and ID are the remote's;
 *                   every address parses; every pod CIDR parses, is not a
 *                   default route (prefix length 0) and does not overlap the
 *                   local cluster's pod CIDRs (a remote that announced
 *                   `podCIDRs: ["default"]` used to become `ip route replace
 *                   default ...` on every local node); with declared CIDRs
 *                   (what the remote declared when it was connected), every
 *                   IPv4 pod CIDR lies inside its declared pod CIDRs and every
 *                   IPv4 InternalIP inside its declared node CIDRs
 *   identities      the numeric ID carries the remote's cluster ID in bits 16-23
 *   ip (ipcache)    the IP or CIDR parses, is not a default route and not inside
 *                   the local pod CIDRs (and, declared, inside the remote's
 *                   declared pod or node CIDRs); the identity is the remote's
 *                   (or a reserved one other than host); hostIP parses
 *   services        cluster, namespace and name are those of the key
 *   serviceexports  the same
 *
 * A record that fails gets a reason; callers drop it and count it.
 */
import { isIP } from 'node:net';
import {
  currentIdentityLayout,
  identityLayout,
  isClusterIdentity,
  isReservedIdentity,
  ReservedIdentity,
} from '../identity/numeric.js';
import { cidrsOverlap, parseCIDR, parseIPv4, type CIDR4 } from '../util/ipv4.js';
import { decodeClusterService, type ClusterService } from '../services/cluster-service.js';
import {
  decodeIdentityLabels,
  decodeIPCacheEntry,
  decodeNode,
  decodeServiceExport,
  type IPCacheEntry,
  type MeshNode,
  type MeshServiceExport,
  type StateKind,
} from './keys.js';

/** What a remote's records are checked against. */
export interface RemoteCheckContext {
  /** The remote cluster's name (from the key). */
  cluster: string;
  /** The remote's cluster ID from its cluster config, once known. */
  clusterId: number | undefined;
  /** The remote's max-connected-clusters from its cluster config (default: this process's layout). */
  maxConnectedClusters?: number | undefined;
  /** The local cluster's pod CIDRs (IPv4); remote CIDRs and IPs must stay outside them. */
  localPodCIDRs: readonly string[];
  /**
   * The pod CIDRs the remote declared when it was connected (its remote
   * record); when given, its nodes' IPv4 pod CIDRs and its ipcache IPs must
   * lie inside them.
   */
  declaredPodCIDRs?: readonly string[];
  /** The node (underlay) CIDRs the remote declared; when given, its nodes' IPv4 InternalIPs must lie inside them. */
  declaredNodeCIDRs?: readonly string[];
}

/**
 * Parsed CIDR lists by their text: every record of a remote is checked against
 * the same few lists (250,000 ipcache entries in a full sync), so each list is
 * parsed once, not once per record. Bounded: cleared beyond 64 lists.
 */
const parsedLists = new Map<string, CIDR4[]>();

function parseCached(list: readonly string[]): CIDR4[] {
  const key = list.length === 1 ? list[0]! : list.join(',');
  let out = parsedLists.get(key);
  if (!out) {
    out = parseList(list);
    if (parsedLists.size >= 64) parsedLists.clear();
    parsedLists.set(key, out);
  }
  return out;
}

function parseAll(list: readonly string[] | undefined): CIDR4[] | undefined {
  if (!list || list.length === 0) return undefined;
  return parseCached(list);
}

function parseList(list: readonly string[]): CIDR4[] {
  const out: CIDR4[] = [];
  for (const t of list) {
    try {
      out.push(parseCIDR(t));
    } catch {
      // not IPv4: nothing to contain IPv4 values
    }
  }
  return out;
}

/** True when `inner` lies entirely inside `outer`. */
function cidrInside(inner: CIDR4, outer: CIDR4): boolean {
  return inner.bits >= outer.bits && cidrsOverlap(inner, outer);
}

/** The reason an IPv4 CIDR text is outside every declared CIDR, or undefined. */
function outsideDeclared(
  text: string,
  declared: CIDR4[] | undefined,
  declaredText: readonly string[] | undefined,
  what: string,
  cluster: string,
): string | undefined {
  if (!declared) return undefined;
  let c: CIDR4;
  try {
    c = parseCIDR(text.includes('/') ? text : `${text}/32`);
  } catch {
    return undefined; // IPv6 or unparsable: judged elsewhere
  }
  if (declared.some((d) => cidrInside(c, d))) return undefined;
  return `"${text}" is outside the ${what} ${cluster} declared when it was connected (${declaredText!.join(', ')})`;
}

/** One rejected record, as `clustermesh status` shows it. */
export interface RejectedRecord {
  key: string;
  reason: string;
  at: string;
}

/** A CIDR ("a.b.c.d/n" or IPv6 "x::/n"), or the reason it is not acceptable as a route. */
function checkCIDR(text: unknown, local: CIDR4[]): string | undefined {
  if (typeof text !== 'string') return `${JSON.stringify(text)} is not a CIDR`;
  const slash = text.indexOf('/');
  if (slash < 0 || isIP(text.slice(0, slash)) === 0 || !/^\d{1,3}$/.test(text.slice(slash + 1)))
    return `"${text}" is not a CIDR`;
  const bits = Number(text.slice(slash + 1));
  if (bits === 0) return `"${text}" is a default route`;
  if (isIP(text.slice(0, slash)) === 6) return bits > 128 ? `"${text}" is not a CIDR` : undefined;
  let c: CIDR4;
  try {
    c = parseCIDR(text);
  } catch (err) {
    return (err as Error).message;
  }
  for (const l of local)
    if (cidrsOverlap(c, l)) return `"${text}" overlaps the local cluster's pod CIDR`;
  return undefined;
}

/** The local pod CIDRs that are IPv4 (others get no overlap check). */
function parseLocal(ctx: RemoteCheckContext): CIDR4[] {
  return ctx.localPodCIDRs.length === 0 ? [] : parseCached(ctx.localPodCIDRs);
}

function checkIdentity(
  id: number,
  ctx: RemoteCheckContext,
  allowReserved: boolean,
): string | undefined {
  if (allowReserved && isReservedIdentity(id)) {
    return id === ReservedIdentity.host
      ? `identity ${id} is the reserved host identity, which a remote may not claim`
      : undefined;
  }
  const layout =
    ctx.maxConnectedClusters === undefined
      ? currentIdentityLayout()
      : identityLayout(ctx.maxConnectedClusters);
  if (ctx.clusterId === undefined)
    return isClusterIdentity(id, undefined, layout)
      ? undefined
      : `identity ${id} is not a cluster identity`;
  return isClusterIdentity(id, ctx.clusterId, layout)
    ? undefined
    : `identity ${id} does not carry cluster ID ${ctx.clusterId} in bits ${layout.clusterIdShift}-23`;
}

/**
 * Checks one decoded record of a remote cluster.
 * @param suffix the key after the kind's cluster prefix ("<node>", "<ns>/<name>", "<id>", "<ip>").
 * @returns why the record is refused, or undefined when it may be used.
 */
export function checkRemoteRecord(
  kind: StateKind,
  suffix: string,
  value: unknown,
  ctx: RemoteCheckContext,
): string | undefined {
  const local = parseLocal(ctx);
  const declaredPods = parseAll(ctx.declaredPodCIDRs);
  const declaredNodes = parseAll(ctx.declaredNodeCIDRs);
  switch (kind) {
    case 'nodes': {
      const n = value as MeshNode;
      if (n.name !== suffix) return `node name "${n.name}" is not the key's "${suffix}"`;
      if (n.cluster !== ctx.cluster)
        return `node names cluster "${n.cluster}", not "${ctx.cluster}"`;
      if (ctx.clusterId !== undefined && n.clusterID !== ctx.clusterId)
        return `node carries cluster ID ${n.clusterID}, the cluster's is ${ctx.clusterId}`;
      for (const a of n.addresses) {
        if (a.type === 'Hostname') continue;
        if (isIP(a.ip) === 0) return `address "${a.ip}" is not an IP address`;
        if (a.type === 'InternalIP' && isIP(a.ip) === 4) {
          const ip = parseIPv4(a.ip);
          for (const l of local)
            if (cidrsOverlap({ base: ip, bits: 32 }, l))
              return `address ${a.ip} is inside the local cluster's pod CIDR`;
          const out = outsideDeclared(
            a.ip,
            declaredNodes,
            ctx.declaredNodeCIDRs,
            'node CIDRs',
            ctx.cluster,
          );
          if (out) return `address ${out}`;
        }
      }
      for (const c of n.podCIDRs) {
        const why =
          checkCIDR(c, local) ??
          outsideDeclared(c, declaredPods, ctx.declaredPodCIDRs, 'pod CIDRs', ctx.cluster);
        if (why) return `pod CIDR ${why}`;
      }
      return undefined;
    }
    case 'identities': {
      const id = Number(suffix);
      return checkIdentity(id, ctx, false);
    }
    case 'ip': {
      const e = value as IPCacheEntry;
      const prefix = e.ip.includes('/') ? e.ip : `${e.ip}/${isIP(e.ip) === 6 ? 128 : 32}`;
      if (e.ip !== suffix) return `ipcache entry for "${e.ip}" is under the key of "${suffix}"`;
      const why = checkCIDR(prefix, local);
      if (why) return `ip ${why}`;
      if (
        declaredPods &&
        outsideDeclared(e.ip, declaredPods, ctx.declaredPodCIDRs, '', ctx.cluster) &&
        (!declaredNodes ||
          outsideDeclared(e.ip, declaredNodes, ctx.declaredNodeCIDRs, '', ctx.cluster))
      )
        return `ip "${e.ip}" is outside the pod and node CIDRs ${ctx.cluster} declared when it was connected (${[...(ctx.declaredPodCIDRs ?? []), ...(ctx.declaredNodeCIDRs ?? [])].join(', ')})`;
      if (e.hostIP && isIP(e.hostIP) === 0) return `hostIP "${e.hostIP}" is not an IP address`;
      return checkIdentity(e.identity, ctx, true);
    }
    case 'services': {
      const s = value as ClusterService;
      if (s.cluster !== ctx.cluster)
        return `service names cluster "${s.cluster}", not "${ctx.cluster}"`;
      if (`${s.namespace}/${s.name}` !== suffix)
        return `service ${s.namespace}/${s.name} is under the key of "${suffix}"`;
      if (
        ctx.clusterId !== undefined &&
        s.clusterID !== undefined &&
        s.clusterID !== 0 &&
        s.clusterID !== ctx.clusterId
      )
        return `service carries cluster ID ${s.clusterID}, the cluster's is ${ctx.clusterId}`;
      return undefined;
    }
    case 'serviceexports': {
      const e = value as MeshServiceExport;
      if (e.cluster !== ctx.cluster)
        return `service export names cluster "${e.cluster}", not "${ctx.cluster}"`;
      if (`${e.namespace}/${e.name}` !== suffix)
        return `service export ${e.namespace}/${e.name} is under the key of "${suffix}"`;
      return undefined;
    }
  }
}

/** Decodes one record of a kind. @throws MeshValueError / ClusterServiceError when it does not decode. */
export function decodeRemoteRecord(kind: StateKind, value: string): unknown {
  switch (kind) {
    case 'nodes':
      return decodeNode(value);
    case 'services':
      return decodeClusterService(value);
    case 'identities':
      return decodeIdentityLabels(value);
    case 'ip':
      return decodeIPCacheEntry(value);
    case 'serviceexports':
      return decodeServiceExport(value);
  }
}

/**
 * Decodes and checks one remote record.
 * @returns why it is refused, or undefined when it may be used.
 */
export function refuseRemoteRecord(
  kind: StateKind,
  suffix: string,
  value: string,
  ctx: RemoteCheckContext,
): string | undefined {
  let decoded: unknown;
  try {
    decoded = decodeRemoteRecord(kind, value);
  } catch (err) {
    return `does not decode: ${(err as Error).message}`;
  }
  return checkRemoteRecord(kind, suffix, decoded, ctx);
}

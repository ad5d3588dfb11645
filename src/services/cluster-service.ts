/**
 * ClusterService: a service as one cluster exports it to the mesh, in
 * Cilium's JSON shape (the value of cilium/state/services/v1/<cluster>/<ns>/<name>).
 * STABLE: other clusters (and Cilium-shaped tools) parse it.
 *
 *   {"cluster":"cluster1","namespace":"default","name":"echo",
 *    "frontends":{"10.96.12.34":{"http":{"Protocol":"TCP","Port":80}}},
 *    "backends":{"10.244.1.10":{"http":{"Protocol":"TCP","Port":8080}}},
 *    "labels":{"app":"echo"},"selector":{"app":"echo"},
 *    "includeExternal":false,"shared":true,"clusterID":1}
 *
 * Ports are keyed by the Service's port name ("" for an unnamed port); a
 * backend's port is the resolved target port.
 */
import { isIP } from 'node:net';
import { TendrilError } from '../util/errors.js';

export type ClusterServiceProtocol = 'TCP' | 'UDP' | 'SCTP' | 'ANY';

/** Cilium's L4Addr (JSON fields are capitalized, as Go marshals them). */
export interface L4Addr {
  Protocol: ClusterServiceProtocol;
  Port: number;
}

/** Port name -> L4 address. */
export type PortConfiguration = Record<string, L4Addr>;

export interface ClusterService {
  /** Cluster that exports it. */
  cluster: string;
  namespace: string;
  name: string;
  /** Frontend IP -> ports. */
  frontends: Record<string, PortConfiguration>;
  /** Backend IP -> ports. */
  backends: Record<string, PortConfiguration>;
  labels: Record<string, string>;
  selector: Record<string, string>;
  /** Cilium: the service also has external (non-pod) backends. */
  includeExternal: boolean;
  /** Local backends are offered to other clusters (always true for exported services). */
  shared: boolean;
  clusterID: number;
}

/** A ClusterService value that fails validation; code SERVICE_INVALID_CLUSTER_SERVICE. */
export class ClusterServiceError extends TendrilError {
  constructor(message: string) {
    super('SERVICE_INVALID_CLUSTER_SERVICE', message, {
      hint: 'the exporting cluster wrote a malformed service; check its Tendril version and `tendril clustermesh status`',
    });
    this.name = 'ClusterServiceError';
  }
}

/** Encodes as JSON with Cilium's field order. */
export function encodeClusterService(cs: ClusterService): string {
  const ports = (m: Record<string, PortConfiguration>) =>
    Object.fromEntries(
      Object.keys(m)
        .sort()
        .map((ip) => [
          ip,
          Object.fromEntries(
            Object.keys(m[ip]!)
              .sort()
              .map((n) => [n, { Protocol: m[ip]![n]!.Protocol, Port: m[ip]![n]!.Port }]),
          ),
        ]),
    );
  return JSON.stringify({
    cluster: cs.cluster,
    namespace: cs.namespace,
    name: cs.name,
    frontends: ports(cs.frontends),
    backends: ports(cs.backends),
    labels: cs.labels,
    selector: cs.selector,
    includeExternal: cs.includeExternal,
    shared: cs.shared,
    clusterID: cs.clusterID,
  });
}

/**
 * Parses and validates a ClusterService. Accepts lower-case `protocol`/`port`
 * too (normalized). With `expect`, the cluster/namespace/name must match
 * (e.g. those in the etcd key).
 * @throws ClusterServiceError naming the field that is wrong.
 */
export function decodeClusterService(
  json: string,
  expect: { cluster?: string; namespace?: string; name?: string } = {},
): ClusterService {
  let o: unknown;
  try {
    o = JSON.parse(json);
  } catch (err) {
    throw new ClusterServiceError(`ClusterService is not JSON: ${(err as Error).message}`);
  }
  return validateClusterService(o, expect);
}

/** Validates an already-parsed value (see decodeClusterService). @throws ClusterServiceError */
export function validateClusterService(
  o: unknown,
  expect: { cluster?: string; namespace?: string; name?: string } = {},
): ClusterService {
  if (!isObj(o)) throw new ClusterServiceError('ClusterService is not a JSON object');
  const where = `ClusterService ${String(o.cluster)}/${String(o.namespace)}/${String(o.name)}`;
  const bad = (msg: string) => new ClusterServiceError(`${where}: ${msg}`);
  for (const f of ['cluster', 'namespace', 'name'] as const) {
    if (typeof o[f] !== 'string' || o[f] === '') throw bad(`"${f}" must be a non-empty string`);
    if (expect[f] !== undefined && o[f] !== expect[f])
      throw bad(`"${f}" is "${o[f]}" but the key says "${expect[f]}"`);
  }
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(o.cluster as string))
    throw bad(`cluster name "${o.cluster}" is not valid`);
  const clusterID = o.clusterID ?? 0;
  // 0..511: up to 511 with max-connected-clusters=511 (the cluster config says which)
  if (!Number.isInteger(clusterID) || (clusterID as number) < 0 || (clusterID as number) > 511)
    throw bad(`"clusterID" ${JSON.stringify(clusterID)} is not 0..511`);
  const ports = (field: 'frontends' | 'backends'): Record<string, PortConfiguration> => {
    const m = o[field] ?? {};
    if (!isObj(m)) throw bad(`"${field}" must be an object of IP -> ports`);
    const out: Record<string, PortConfiguration> = {};
    for (const [ip, pc] of Object.entries(m)) {
      if (isIP(ip) === 0) throw bad(`${field}: "${ip}" is not an IP address`);
      if (!isObj(pc))
        throw bad(`${field}[${ip}] must be an object of port name -> {Protocol, Port}`);
      const conf: PortConfiguration = {};
      for (const [pname, addr] of Object.entries(pc)) {
        if (!isObj(addr))
          throw bad(`${field}[${ip}][${JSON.stringify(pname)}] must be {Protocol, Port}`);
        const port = addr.Port ?? addr.port;
        const proto = String(addr.Protocol ?? addr.protocol ?? 'TCP').toUpperCase();
        if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535)
          throw bad(
            `${field}[${ip}][${JSON.stringify(pname)}]: port ${JSON.stringify(port)} is not 1..65535`,
          );
        if (!['TCP', 'UDP', 'SCTP', 'ANY'].includes(proto))
          throw bad(
            `${field}[${ip}][${JSON.stringify(pname)}]: protocol "${proto}" is not TCP, UDP, SCTP or ANY`,
          );
        conf[pname] = { Protocol: proto as ClusterServiceProtocol, Port: port as number };
      }
      out[ip] = conf;
    }
    return out;
  };
  const strMap = (field: 'labels' | 'selector'): Record<string, string> => {
    const m = o[field] ?? {};
    if (!isObj(m) || Object.values(m).some((v) => typeof v !== 'string'))
      throw bad(`"${field}" must be an object of strings`);
    return { ...(m as Record<string, string>) };
  };
  const bool = (field: 'includeExternal' | 'shared', dflt: boolean): boolean => {
    const v = o[field];
    if (v === undefined) return dflt;
    if (typeof v !== 'boolean') throw bad(`"${field}" must be true or false`);
    return v;
  };
  return {
    cluster: o.cluster as string,
    namespace: o.namespace as string,
    name: o.name as string,
    frontends: ports('frontends'),
    backends: ports('backends'),
    labels: strMap('labels'),
    selector: strMap('selector'),
    includeExternal: bool('includeExternal', false),
    shared: bool('shared', true),
    clusterID: clusterID as number,
  };
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

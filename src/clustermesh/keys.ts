/**
 * The mesh's etcd key layout and value codecs, written once. STABLE: every
 * clustermesh-apiserver, kvstoremesh and agent of every cluster in a mesh
 * reads these keys; changing a prefix or a value shape breaks meshes made of
 * mixed versions. The layout is Cilium's:
 *
 *   cilium/cluster-config/<cluster>                       ClusterConfig
 *   cilium/state/nodes/v1/<cluster>/<node>                MeshNode
 *   cilium/state/services/v1/<cluster>/<ns>/<name>        ClusterService (src/services/cluster-service.ts)
 *   cilium/state/identities/v1/id/<id>                    label string ("k8s:app=x;k8s:...;")
 *   cilium/state/ip/v1/default/<ip>                       IPCacheEntry
 *   cilium/state/serviceexports/v1/<cluster>/<ns>/<name>  MeshServiceExport
 *   cilium/synced/<cluster>/<prefix>                      synced canary (ISO time) for e.g. cilium/state/nodes/v1
 *   cilium/.heartbeat                                     ISO time, refreshed every few seconds
 *   cilium/cache/<kind>/v1/<cluster>/...                  kvstoremesh copies of remote clusters' state:
 *     cilium/cache/nodes/v1/<cluster>/<node>
 *     cilium/cache/services/v1/<cluster>/<ns>/<name>
 *     cilium/cache/identities/v1/<cluster>/id/<id>
 *     cilium/cache/ip/v1/<cluster>/<ip>
 *     cilium/cache/serviceexports/v1/<cluster>/<ns>/<name>
 *   cilium/kvstoremesh/v1/status/<cluster>                KVStoreMeshRemoteState (Tendril's addition: lets
 *                                                         local agents see that a remote is stale)
 *
 * Identities and ipcache entries carry no cluster segment in cilium/state/:
 * an etcd holds only its own cluster's state there (remote clusters' state is
 * under cilium/cache/), and identities carry the cluster ID in bits 16-23.
 *
 * Values are JSON (camelCase fields) except identities (Cilium's label
 * string) and canaries/heartbeat (an ISO-8601 time).
 */
import { TendrilError } from '../util/errors.js';

/** Prefix of every key of the mesh. */
export const ROOT_PREFIX = 'cilium/';
/** Prefix of the cluster configs. */
export const CLUSTER_CONFIG_PREFIX = 'cilium/cluster-config/';
/** Prefix of every cluster's own exported state. */
export const STATE_PREFIX = 'cilium/state/';
/** Prefix of the synced canaries. */
export const SYNCED_PREFIX = 'cilium/synced/';
/** The heartbeat key. */
export const HEARTBEAT_KEY = 'cilium/.heartbeat';
/** Prefix of kvstoremesh's copies of the remote clusters' state. */
export const CACHE_PREFIX = 'cilium/cache/';
/** Prefix of kvstoremesh's per-remote state records (Tendril's addition to Cilium's layout). */
export const KVSTOREMESH_STATUS_PREFIX = 'cilium/kvstoremesh/v1/status/';

/** `cilium/kvstoremesh/v1/status/<cluster>` */
export function kvstoremeshStatusKey(cluster: string): string {
  return `${KVSTOREMESH_STATUS_PREFIX}${cluster}`;
}

/** What kvstoremesh publishes in the local etcd about one remote cluster (JSON). */
export interface KVStoreMeshRemoteState {
  cluster: string;
  clusterID?: number;
  connected: boolean;
  /** The cached state is the last known one: the remote is unreachable, or a resync is not complete yet. */
  stale: boolean;
  /** Every kind's initial list is complete in this connection. */
  synced: boolean;
  /** ISO time of the last change of `connected`. */
  since: string;
  lastError?: string;
  /** Records of this remote refused now (not cached; see `clustermesh status`). */
  rejected?: number;
}

/** The kinds of exported state. */
export type StateKind = 'nodes' | 'services' | 'identities' | 'ip' | 'serviceexports';

/** Every kind, in the order the syncer writes them (identities before the ipcache that uses them). */
export const STATE_KINDS: readonly StateKind[] = [
  'nodes',
  'services',
  'identities',
  'ip',
  'serviceexports',
];

/**
 * The directory (without trailing slash) under which a cluster's own state of
 * this kind lives in its etcd. It doubles as the name of its synced canary.
 */
export function stateDir(kind: StateKind, cluster: string): string {
  switch (kind) {
    case 'nodes':
      return `cilium/state/nodes/v1/${cluster}`;
    case 'services':
      return `cilium/state/services/v1/${cluster}`;
    case 'identities':
      return 'cilium/state/identities/v1/id';
    case 'ip':
      return 'cilium/state/ip/v1/default';
    case 'serviceexports':
      return `cilium/state/serviceexports/v1/${cluster}`;
  }
}

/** The directory (without trailing slash) of kvstoremesh's copy of a remote cluster's state of this kind. */
export function cacheDir(kind: StateKind, cluster: string): string {
  switch (kind) {
    case 'identities':
      return `cilium/cache/identities/v1/${cluster}/id`;
    default:
      return `cilium/cache/${kind}/v1/${cluster}`;
  }
}

/** The canary name of a kind: the kind's state prefix without the cluster (as Cilium names it). */
export function canaryPrefix(kind: StateKind, where: 'state' | 'cache'): string {
  const base = kind === 'identities' ? 'identities/v1' : kind === 'ip' ? 'ip/v1' : `${kind}/v1`;
  return `cilium/${where}/${base}`;
}

/** `cilium/synced/<cluster>/cilium/state/nodes/v1`: written once the initial list of that kind is complete. */
export function syncedCanaryKey(
  cluster: string,
  kind: StateKind,
  where: 'state' | 'cache' = 'state',
): string {
  return `${SYNCED_PREFIX}${cluster}/${canaryPrefix(kind, where)}`;
}

/** `cilium/synced/<cluster>/` */
export function syncedClusterPrefix(cluster: string): string {
  return `${SYNCED_PREFIX}${cluster}/`;
}

/** `cilium/cluster-config/<cluster>` */
export function clusterConfigKey(cluster: string): string {
  return `${CLUSTER_CONFIG_PREFIX}${cluster}`;
}

/** `cilium/state/nodes/v1/<cluster>/<node>` */
export function nodeKey(cluster: string, node: string): string {
  return `${stateDir('nodes', cluster)}/${node}`;
}

/** `cilium/state/services/v1/<cluster>/<ns>/<name>` */
export function serviceKey(cluster: string, namespace: string, name: string): string {
  return `${stateDir('services', cluster)}/${namespace}/${name}`;
}

/** `cilium/state/identities/v1/id/<id>` */
export function identityKey(id: number): string {
  return `${stateDir('identities', '')}/${id}`;
}

/** `cilium/state/ip/v1/default/<ip>` */
export function ipcacheKey(ip: string): string {
  return `${stateDir('ip', '')}/${ip}`;
}

/** `cilium/state/serviceexports/v1/<cluster>/<ns>/<name>` */
export function serviceExportKey(cluster: string, namespace: string, name: string): string {
  return `${stateDir('serviceexports', cluster)}/${namespace}/${name}`;
}

/** Every key prefix under which kvstoremesh keeps a remote cluster's copied state (with trailing slash). */
export function cacheClusterPrefixes(cluster: string): string[] {
  return STATE_KINDS.map((k) => `cilium/cache/${k}/v1/${cluster}/`);
}

/** The cache key of a remote entry: `cacheDir(kind, cluster)/<suffix>`, where suffix is the part after the state dir. */
export function cacheKey(kind: StateKind, cluster: string, suffix: string): string {
  return `${cacheDir(kind, cluster)}/${suffix}`;
}

/** Maps a remote's state key to its cache key in the local etcd; undefined if the key is not of that kind/cluster. */
export function stateToCacheKey(kind: StateKind, cluster: string, key: string): string | undefined {
  const dir = stateDir(kind, cluster) + '/';
  if (!key.startsWith(dir) || key.length === dir.length) return undefined;
  return cacheKey(kind, cluster, key.slice(dir.length));
}

/** Parses a key under cilium/cache/: which kind, which cluster, and the suffix after the kind's dir. */
export function parseCacheKey(
  key: string,
): { kind: StateKind; cluster: string; suffix: string } | undefined {
  const m =
    /^cilium\/cache\/(nodes|services|identities|ip|serviceexports)\/v1\/([^/]+)\/(.+)$/.exec(key);
  if (!m) return undefined;
  const kind = m[1] as StateKind;
  let suffix = m[3]!;
  if (kind === 'identities') {
    if (!suffix.startsWith('id/')) return undefined;
    suffix = suffix.slice(3);
  }
  return { kind, cluster: m[2]!, suffix };
}

/** Parses a key of a cluster's own state (cilium/state/...); cluster is undefined for identities and ipcache. */
export function parseStateKey(
  key: string,
): { kind: StateKind; cluster: string | undefined; suffix: string } | undefined {
  let m = /^cilium\/state\/(nodes|services|serviceexports)\/v1\/([^/]+)\/(.+)$/.exec(key);
  if (m) return { kind: m[1] as StateKind, cluster: m[2]!, suffix: m[3]! };
  m = /^cilium\/state\/identities\/v1\/id\/(.+)$/.exec(key);
  if (m) return { kind: 'identities', cluster: undefined, suffix: m[1]! };
  m = /^cilium\/state\/ip\/v1\/default\/(.+)$/.exec(key);
  if (m) return { kind: 'ip', cluster: undefined, suffix: m[1]! };
  return undefined;
}

// ---------------------------------------------------------------------------
// Values

/** Raised for a value that does not decode, or a config that does not validate. */
export class MeshValueError extends TendrilError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('CLUSTERMESH_BAD_VALUE', message, options);
    this.name = 'MeshValueError';
  }
}

/** What a cluster can do, as advertised in its cluster config. */
export interface ClusterCapabilities {
  /** The cluster writes synced canaries (always true for Tendril). */
  syncedCanaries: boolean;
  /** 255 (cluster IDs 1..255) or 511 (1..511). Every cluster of a mesh must agree. */
  maxConnectedClusters: number;
  /** The state is served from kvstoremesh's cache (cilium/cache/...) rather than cilium/state/. */
  cached: boolean;
}

/** `cilium/cluster-config/<cluster>`. */
export interface ClusterConfig {
  id: number;
  capabilities: ClusterCapabilities;
}

/** A node of a cluster as exported to the mesh. */
export interface MeshNode {
  name: string;
  cluster: string;
  clusterID: number;
  /** Node addresses: InternalIP is the underlay address other clusters route pod CIDRs to. */
  addresses: { type: 'InternalIP' | 'ExternalIP' | 'Hostname'; ip: string }[];
  /** The node's pod CIDRs (e.g. ["10.244.1.0/24"]). */
  podCIDRs: string[];
  labels?: Record<string, string>;
}

/** `cilium/state/ip/v1/default/<ip>`: which identity an IP has and which node hosts it. */
export interface IPCacheEntry {
  /** The address (no prefix length) or a CIDR. */
  ip: string;
  /** Numeric security identity. */
  identity: number;
  /** Underlay address of the node hosting the IP (the tunnel/route destination). */
  hostIP: string;
  /** Encryption key index (0: none). */
  key?: number;
  k8sNamespace?: string;
  k8sPodName?: string;
  /** Named ports of the pod: name -> {port, protocol}. */
  namedPorts?: Record<string, { port: number; protocol: string }>;
}

/** `cilium/state/serviceexports/v1/<cluster>/<ns>/<name>`: an MCS export (KEP-1645). */
export interface MeshServiceExport {
  cluster: string;
  namespace: string;
  name: string;
  /** When the ServiceExport was created (oldest wins conflicts). ISO-8601. */
  exportCreationTimestamp: string;
  type: 'ClusterSetIP' | 'Headless';
  ports: { name?: string; protocol: string; port: number; appProtocol?: string }[];
  sessionAffinity?: 'None' | 'ClientIP';
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export const DEFAULT_MAX_CONNECTED_CLUSTERS = 255;

/** Valid cluster names: as Cilium, at most 32 characters of [a-z0-9-], starting and ending with [a-z0-9]. */
export const CLUSTER_NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const CLUSTER_NAME_MAX = 32;

/** Checks a cluster name. Throws MeshValueError naming the rule broken. */
export function validateClusterName(name: string): void {
  if (typeof name !== 'string' || name.length === 0) {
    throw new MeshValueError('cluster name is empty', {
      hint: 'set it with `tendril install --cluster-name NAME`',
    });
  }
  if (name.length > CLUSTER_NAME_MAX) {
    throw new MeshValueError(
      `cluster name "${name}" is ${name.length} characters long; at most ${CLUSTER_NAME_MAX} are allowed`,
      {
        hint: 'choose a shorter name with `tendril install --cluster-name NAME`',
      },
    );
  }
  if (!CLUSTER_NAME_RE.test(name)) {
    throw new MeshValueError(
      `cluster name "${name}" is invalid: use lower-case letters, digits and '-', starting and ending with a letter or digit`,
      { hint: 'choose another name with `tendril install --cluster-name NAME`' },
    );
  }
}

/** Checks maxConnectedClusters (255 or 511). */
export function validateMaxConnectedClusters(n: number): void {
  if (n !== 255 && n !== 511) {
    throw new MeshValueError(`maxConnectedClusters ${n} is invalid: it must be 255 or 511`);
  }
}

/** Checks a cluster ID against maxConnectedClusters (1..255, or 1..511). */
export function validateClusterID(
  id: number,
  maxConnectedClusters = DEFAULT_MAX_CONNECTED_CLUSTERS,
): void {
  validateMaxConnectedClusters(maxConnectedClusters);
  if (!Number.isInteger(id) || id < 1 || id > maxConnectedClusters) {
    throw new MeshValueError(
      `cluster ID ${id} is invalid: it must be an integer from 1 to ${maxConnectedClusters}`,
      {
        hint: 'set a unique ID with `tendril install --cluster-id N`',
      },
    );
  }
}

/** Checks a whole cluster config (ID range, capabilities). */
export function validateClusterConfig(cfg: ClusterConfig): void {
  if (typeof cfg !== 'object' || cfg === null)
    throw new MeshValueError('cluster config is not an object');
  if (typeof cfg.capabilities !== 'object' || cfg.capabilities === null) {
    throw new MeshValueError('cluster config has no capabilities');
  }
  validateClusterID(cfg.id, cfg.capabilities.maxConnectedClusters);
  if (
    typeof cfg.capabilities.syncedCanaries !== 'boolean' ||
    typeof cfg.capabilities.cached !== 'boolean'
  ) {
    throw new MeshValueError(
      'cluster config capabilities.syncedCanaries and .cached must be booleans',
    );
  }
}

/** A cluster config with Tendril's defaults. */
export function makeClusterConfig(
  id: number,
  options: { maxConnectedClusters?: number; cached?: boolean } = {},
): ClusterConfig {
  const cfg: ClusterConfig = {
    id,
    capabilities: {
      syncedCanaries: true,
      maxConnectedClusters: options.maxConnectedClusters ?? DEFAULT_MAX_CONNECTED_CLUSTERS,
      cached: options.cached ?? false,
    },
  };
  validateClusterConfig(cfg);
  return cfg;
}

function parseJSON(value: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(value);
  } catch (err) {
    throw new MeshValueError(`${what}: not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new MeshValueError(`${what}: not a JSON object`);
  return v as Record<string, unknown>;
}

function needString(o: Record<string, unknown>, field: string, what: string): string {
  const v = o[field];
  if (typeof v !== 'string' || v === '')
    throw new MeshValueError(`${what}: field "${field}" must be a non-empty string`);
  return v;
}

function needInt(o: Record<string, unknown>, field: string, what: string): number {
  const v = o[field];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new MeshValueError(`${what}: field "${field}" must be a non-negative integer`);
  }
  return v;
}

/** Encodes a cluster config (validated). */
export function encodeClusterConfig(cfg: ClusterConfig): string {
  validateClusterConfig(cfg);
  return JSON.stringify({ id: cfg.id, capabilities: { ...cfg.capabilities } });
}

/**
 * Decodes and validates a cluster config. Missing capabilities take Cilium's
 * defaults for old clusters (no canaries, 255, not cached).
 */
export function decodeClusterConfig(value: string): ClusterConfig {
  const o = parseJSON(value, 'cluster config');
  const caps = (
    typeof o.capabilities === 'object' && o.capabilities !== null ? o.capabilities : {}
  ) as Record<string, unknown>;
  const cfg: ClusterConfig = {
    id: o.id as number,
    capabilities: {
      syncedCanaries: caps.syncedCanaries === true,
      maxConnectedClusters:
        typeof caps.maxConnectedClusters === 'number'
          ? caps.maxConnectedClusters
          : DEFAULT_MAX_CONNECTED_CLUSTERS,
      cached: caps.cached === true,
    },
  };
  validateClusterConfig(cfg);
  return cfg;
}

/** Encodes a node. */
export function encodeNode(n: MeshNode): string {
  return JSON.stringify(n);
}

/** Decodes a node; throws MeshValueError on a malformed value. */
export function decodeNode(value: string): MeshNode {
  const what = 'node';
  const o = parseJSON(value, what);
  const name = needString(o, 'name', what);
  const cluster = needString(o, 'cluster', what);
  const clusterID = needInt(o, 'clusterID', what);
  if (!Array.isArray(o.addresses))
    throw new MeshValueError(`${what} ${name}: field "addresses" must be an array`);
  const addresses = o.addresses.map((a: unknown, i) => {
    const ao = a as Record<string, unknown>;
    if (typeof ao?.ip !== 'string' || typeof ao?.type !== 'string') {
      throw new MeshValueError(`${what} ${name}: addresses[${i}] needs "type" and "ip"`);
    }
    return { type: ao.type as MeshNode['addresses'][number]['type'], ip: ao.ip };
  });
  const podCIDRs = Array.isArray(o.podCIDRs)
    ? o.podCIDRs.filter((c): c is string => typeof c === 'string')
    : [];
  const n: MeshNode = { name, cluster, clusterID, addresses, podCIDRs };
  if (o.labels && typeof o.labels === 'object') n.labels = o.labels as Record<string, string>;
  return n;
}

/** The node's InternalIP, if any. */
export function nodeInternalIP(n: MeshNode): string | undefined {
  return n.addresses.find((a) => a.type === 'InternalIP')?.ip;
}

/** Encodes an ipcache entry. */
export function encodeIPCacheEntry(e: IPCacheEntry): string {
  return JSON.stringify(e);
}

/** Decodes an ipcache entry; throws MeshValueError on a malformed value. */
export function decodeIPCacheEntry(value: string): IPCacheEntry {
  const what = 'ipcache entry';
  const o = parseJSON(value, what);
  const e: IPCacheEntry = {
    ip: needString(o, 'ip', what),
    identity: needInt(o, 'identity', what),
    hostIP: typeof o.hostIP === 'string' ? o.hostIP : '',
  };
  if (typeof o.key === 'number') e.key = o.key;
  if (typeof o.k8sNamespace === 'string') e.k8sNamespace = o.k8sNamespace;
  if (typeof o.k8sPodName === 'string') e.k8sPodName = o.k8sPodName;
  if (o.namedPorts && typeof o.namedPorts === 'object')
    e.namedPorts = o.namedPorts as IPCacheEntry['namedPorts'];
  return e;
}

/** Encodes a service export. */
export function encodeServiceExport(e: MeshServiceExport): string {
  return JSON.stringify(e);
}

/** Decodes a service export; throws MeshValueError on a malformed value. */
export function decodeServiceExport(value: string): MeshServiceExport {
  const what = 'service export';
  const o = parseJSON(value, what);
  const e: MeshServiceExport = {
    cluster: needString(o, 'cluster', what),
    namespace: needString(o, 'namespace', what),
    name: needString(o, 'name', what),
    exportCreationTimestamp: needString(o, 'exportCreationTimestamp', what),
    type: o.type === 'Headless' ? 'Headless' : 'ClusterSetIP',
    ports: Array.isArray(o.ports) ? (o.ports as MeshServiceExport['ports']) : [],
  };
  if (o.sessionAffinity === 'ClientIP' || o.sessionAffinity === 'None')
    e.sessionAffinity = o.sessionAffinity;
  if (o.labels && typeof o.labels === 'object') e.labels = o.labels as Record<string, string>;
  if (o.annotations && typeof o.annotations === 'object')
    e.annotations = o.annotations as Record<string, string>;
  return e;
}

/** Identity values are Cilium label strings; decoding only checks it is not empty. */
export function decodeIdentityLabels(value: string): string {
  if (value.length === 0) throw new MeshValueError('identity: empty label string');
  return value;
}

/** Parses the numeric identity from the key suffix. */
export function parseIdentityID(suffix: string): number {
  const id = Number(suffix);
  if (!Number.isInteger(id) || id <= 0 || id > 0xffffffff)
    throw new MeshValueError(`identity key suffix "${suffix}" is not a numeric identity`);
  return id;
}

/** Canary and heartbeat values: an ISO-8601 time. */
export function encodeTimestamp(d: Date = new Date()): string {
  return d.toISOString();
}

/** Parses a canary/heartbeat value; undefined if it is not a time. */
export function decodeTimestamp(value: string): Date | undefined {
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : new Date(t);
}

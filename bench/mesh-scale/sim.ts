/**
 * The mesh-scale benchmark's simulated mesh: N remote clusters, each with its
 * nodes, endpoints (ipcache entries with identities), identities and global
 * services, as a clustermesh-apiserver would export them (cilium/state/...,
 * src/clustermesh/keys.ts), plus the local cluster's matching global
 * Services. Pure functions of the sizes, so the orchestrator (which writes
 * and checks) and the agent process (which holds the local Services) agree.
 *
 * Addresses: cluster i (ID i, 1..254) has node j's pod CIDR 10.i.j.0/24 and
 * node IP 172.16.i.(j+1); endpoint k sits on node k % nodes at
 * 10.i.j.(2 + floor(k / nodes)). The local cluster is ID 255, pod CIDR
 * 10.255.0.0/24, node IP 172.31.255.254. Global service s (default/svc-<s>)
 * is exported by clusters (s % N) + 1 and ((s + 1) % N) + 1, two backends
 * each; its local ClusterIP is 10.97.(s >> 8).(s & 255), port 80.
 */
import type { V1Service } from '@kubernetes/client-node';
import { clusterIdentity, identityLayout } from '../../src/identity/numeric.js';
import {
  clusterConfigKey,
  encodeClusterConfig,
  encodeIPCacheEntry,
  encodeNode,
  encodeTimestamp,
  HEARTBEAT_KEY,
  identityKey,
  ipcacheKey,
  makeClusterConfig,
  nodeKey,
  serviceKey,
  STATE_KINDS,
  syncedCanaryKey,
} from '../../src/clustermesh/keys.js';
import { encodeClusterService } from '../../src/services/cluster-service.js';

/** The sizes of a run (MESH_SCALE_* environment variables). */
export interface ScaleSizes {
  clusters: number;
  /** Total endpoints over all remote clusters. */
  endpoints: number;
  /** Total identities over all remote clusters. */
  identities: number;
  /** Global services. */
  services: number;
  nodesPerCluster: number;
  churnPerS: number;
}

export const LOCAL_CLUSTER = { name: 'local', id: 255 } as const;
export const LOCAL_POD_CIDR = '10.255.0.0/24';
export const LOCAL_NODE_IP = '172.31.255.254';
export const MAX_CONNECTED_CLUSTERS = 255;
const LAYOUT = identityLayout(MAX_CONNECTED_CLUSTERS);

/** Reads the sizes from the environment (defaults: the target). @throws Error naming the variable */
export function sizesFromEnv(env: NodeJS.ProcessEnv = process.env): ScaleSizes {
  const num = (name: string, def: number, min: number, max: number): number => {
    const raw = env[name];
    const v = raw === undefined || raw === '' ? def : Number(raw);
    if (!Number.isInteger(v) || v < min || v > max)
      throw new Error(`${name}=${raw}: must be an integer in ${min}..${max}`);
    return v;
  };
  const s: ScaleSizes = {
    clusters: num('MESH_SCALE_CLUSTERS', 250, 1, 254),
    endpoints: num('MESH_SCALE_ENDPOINTS', 250_000, 1, 10_000_000),
    identities: num('MESH_SCALE_IDENTITIES', 25_000, 1, 10_000_000),
    services: num('MESH_SCALE_SERVICES', 2500, 0, 65_536),
    nodesPerCluster: num('MESH_SCALE_NODES_PER_CLUSTER', 100, 1, 254),
    churnPerS: num('MESH_SCALE_CHURN_PER_S', 500, 0, 100_000),
  };
  const perCluster = Math.ceil(s.endpoints / s.clusters);
  if (perCluster > 253 * s.nodesPerCluster)
    throw new Error(
      `MESH_SCALE_ENDPOINTS=${s.endpoints} over ${s.clusters} clusters is ${perCluster} per cluster, more than ${s.nodesPerCluster} nodes x 253 addresses: raise MESH_SCALE_NODES_PER_CLUSTER`,
    );
  if (s.identities < s.clusters)
    throw new Error(
      `MESH_SCALE_IDENTITIES=${s.identities} is fewer than MESH_SCALE_CLUSTERS=${s.clusters}: every cluster needs one`,
    );
  if (Math.ceil(s.identities / s.clusters) > LAYOUT.maxLocalIndex - 256)
    throw new Error(`MESH_SCALE_IDENTITIES=${s.identities}: too many per cluster`);
  return s;
}

/** Share i (0-based) of `total` split over `n` parts. */
function share(total: number, n: number, i: number): number {
  return Math.floor(total / n) + (i < total % n ? 1 : 0);
}

/** One simulated remote cluster. */
export interface SimCluster {
  name: string;
  id: number;
  endpoints: number;
  identities: number;
  nodes: number;
}

/** The simulated remote clusters. */
export function simClusters(s: ScaleSizes): SimCluster[] {
  return Array.from({ length: s.clusters }, (_, i) => ({
    name: `c${String(i + 1).padStart(3, '0')}`,
    id: i + 1,
    endpoints: share(s.endpoints, s.clusters, i),
    identities: share(s.identities, s.clusters, i),
    nodes: s.nodesPerCluster,
  }));
}

/** The key namespace of a simulated cluster in the shared remote etcd. */
export function simPrefix(name: string): string {
  return `sim/${name}/`;
}

export function nodeIP(c: SimCluster, j: number): string {
  return `172.16.${c.id}.${j + 1}`;
}

export function nodePodCIDR(c: SimCluster, j: number): string {
  return `10.${c.id}.${j}.0/24`;
}

/** Endpoint k's address and its node. */
export function endpointIP(c: SimCluster, k: number): { ip: string; node: number } {
  const node = k % c.nodes;
  return { ip: `10.${c.id}.${node}.${2 + Math.floor(k / c.nodes)}`, node };
}

/** The identity with local index `n` (0-based) of cluster c. */
export function identityOf(c: SimCluster, n: number): number {
  return clusterIdentity(c.id, 256 + (n % c.identities), LAYOUT);
}

/** Endpoint k's identity in generation `gen` (churn bumps the generation). */
export function endpointIdentity(c: SimCluster, k: number, gen = 0): number {
  return identityOf(c, k + gen);
}

export function ipcacheValue(c: SimCluster, k: number, gen = 0): string {
  const { ip, node } = endpointIP(c, k);
  return encodeIPCacheEntry({
    ip,
    identity: endpointIdentity(c, k, gen),
    hostIP: nodeIP(c, node),
    k8sNamespace: 'default',
    k8sPodName: `pod-${k}`,
  });
}

/** Which clusters export global service s, with their backend endpoint indexes. */
export function serviceExporters(
  clusters: SimCluster[],
  s: number,
): Array<{ cluster: SimCluster; backends: number[] }> {
  const n = clusters.length;
  const idx = n === 1 ? [s % n] : [s % n, (s + 1) % n];
  return idx.map((i) => {
    const c = clusters[i]!;
    const b = new Set([(2 * s) % c.endpoints, (2 * s + 1) % c.endpoints]);
    return { cluster: c, backends: [...b] };
  });
}

/** The backend IPs the local agent should load-balance global service s to. */
export function expectedBackends(clusters: SimCluster[], s: number): Set<string> {
  const out = new Set<string>();
  for (const e of serviceExporters(clusters, s))
    for (const k of e.backends) out.add(endpointIP(e.cluster, k).ip);
  return out;
}

export function serviceVIP(s: number): string {
  return `10.97.${s >> 8}.${s & 255}`;
}

/** Every key a simulated cluster's clustermesh-apiserver exports, canaries last (in `canaries`). */
export function clusterRecords(
  s: ScaleSizes,
  clusters: SimCluster[],
  c: SimCluster,
): { entries: [string, string][]; canaries: [string, string][] } {
  const entries: [string, string][] = [];
  entries.push([
    clusterConfigKey(c.name),
    encodeClusterConfig(makeClusterConfig(c.id, { maxConnectedClusters: MAX_CONNECTED_CLUSTERS })),
  ]);
  entries.push([HEARTBEAT_KEY, encodeTimestamp()]);
  for (let j = 0; j < c.nodes; j++) {
    entries.push([
      nodeKey(c.name, `node-${j}`),
      encodeNode({
        name: `node-${j}`,
        cluster: c.name,
        clusterID: c.id,
        addresses: [{ type: 'InternalIP', ip: nodeIP(c, j) }],
        podCIDRs: [nodePodCIDR(c, j)],
      }),
    ]);
  }
  for (let n = 0; n < c.identities; n++)
    entries.push([
      identityKey(identityOf(c, n)),
      `k8s:app=app-${n};k8s:io.cilium.k8s.policy.cluster=${c.name};k8s:io.kubernetes.pod.namespace=default;`,
    ]);
  for (let k = 0; k < c.endpoints; k++)
    entries.push([ipcacheKey(endpointIP(c, k).ip), ipcacheValue(c, k)]);
  for (let sv = 0; sv < s.services; sv++) {
    const mine = serviceExporters(clusters, sv).find((e) => e.cluster === c);
    if (!mine) continue;
    const port = { http: { Protocol: 'TCP' as const, Port: 8080 } };
    entries.push([
      serviceKey(c.name, 'default', `svc-${sv}`),
      encodeClusterService({
        cluster: c.name,
        namespace: 'default',
        name: `svc-${sv}`,
        frontends: { [`10.96.${sv >> 8}.${sv & 255}`]: { http: { Protocol: 'TCP', Port: 80 } } },
        backends: Object.fromEntries(mine.backends.map((k) => [endpointIP(c, k).ip, port])),
        labels: {},
        selector: { app: `svc-${sv}` },
        includeExternal: false,
        shared: true,
        clusterID: c.id,
      }),
    ]);
  }
  const canaries = STATE_KINDS.map(
    (k) => [syncedCanaryKey(c.name, k), encodeTimestamp()] as [string, string],
  );
  return { entries, canaries };
}

/** The local cluster's global Services (what its API server would list), one per global service. */
export function localGlobalServices(s: ScaleSizes): V1Service[] {
  return Array.from({ length: s.services }, (_, sv) => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: `svc-${sv}`,
      namespace: 'default',
      uid: `svc-${sv}`,
      annotations: { 'service.cilium.io/global': 'true' },
    },
    spec: {
      type: 'ClusterIP',
      clusterIP: serviceVIP(sv),
      clusterIPs: [serviceVIP(sv)],
      ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
      selector: { app: `svc-${sv}` },
    },
  }));
}

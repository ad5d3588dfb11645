/**
 * Where the control plane meets the datapath. The agent computes desired
 * state in these terms (service frontends and backends, IP -> identity,
 * routes to other nodes' pod CIDRs, endpoints) and hands it to a Datapath.
 * `datapath/linux` implements it with eBPF maps and kernel routes;
 * `datapath/fake` records it, so the control plane is tested without root.
 * Implementations own retries of kernel errors; calls are idempotent upserts.
 */

export type L4Protocol = 'TCP' | 'UDP';

/** A service address clients connect to: a ClusterIP (or imported VIP) and port. */
export interface Frontend {
  ip: string;
  port: number;
  protocol: L4Protocol;
}

/** One backend of a service. */
export interface Backend {
  ip: string;
  port: number;
  /** Cluster the backend lives in (0 or the local ID for local backends). */
  clusterId: number;
  /** Ready backends get new connections; terminating/unready ones do not. */
  ready: boolean;
}

export type LBAlgorithm = 'random' | 'maglev';

/** A service as the datapath needs it: frontend -> the backends selected for it. */
export interface ServiceEntry {
  frontend: Frontend;
  /** Backends new connections may go to, already filtered by affinity and health. */
  backends: Backend[];
  algorithm: LBAlgorithm;
}

/** IP (or prefix) -> security identity, for policy and observability. */
export interface IPCacheEntry {
  /** An address or CIDR, e.g. "10.244.1.10/32". */
  prefix: string;
  identity: number;
  /** Underlay address of the node hosting it (for tunnel mode), if remote. */
  hostIP?: string;
}

/** Route to another node's pods: native routing via its underlay address, or the tunnel. */
export interface NodeRoute {
  podCIDR: string;
  nodeIP: string;
  clusterId: number;
}

/** A local pod's network endpoint, as the CNI plugin created it. */
export interface Endpoint {
  id: number;
  podNamespace: string;
  podName: string;
  containerId: string;
  ip: string;
  /** Host-side veth name in the node's namespace. */
  hostIfName: string;
  identity: number;
}

export type RoutingMode = 'native' | 'tunnel';

/** The operations the agent drives. Every call is an idempotent upsert or delete. */
export interface Datapath {
  upsertService(svc: ServiceEntry): Promise<void>;
  deleteService(frontend: Frontend): Promise<void>;
  upsertIPCache(entry: IPCacheEntry): Promise<void>;
  deleteIPCache(prefix: string): Promise<void>;
  upsertNodeRoute(route: NodeRoute): Promise<void>;
  deleteNodeRoute(podCIDR: string): Promise<void>;
  upsertEndpoint(ep: Endpoint): Promise<void>;
  deleteEndpoint(id: number): Promise<void>;
}

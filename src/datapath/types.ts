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

/** ipcache changes applied together (Datapath.applyIPCache). */
export interface IPCacheChanges {
  upserts: IPCacheEntry[];
  /** Prefixes to remove. */
  deletes: string[];
}

/** Node route changes applied together (Datapath.applyNodeRoutes). */
export interface NodeRouteChanges {
  upserts: NodeRoute[];
  /** Routes to remove, as last applied (tunnel mode also removes their neighbour and FDB entry). */
  deletes: NodeRoute[];
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

/** One policy map entry: peer identity (0 = any), protocol (0 = any) and port prefix -> allow or deny. */
export interface PolicyMapEntry {
  identity: number;
  /** IP protocol number; 0 = every protocol (port and bits are 0). */
  protocol: number;
  port: number;
  /** Leading bits of `port` that must match (16 = exactly `port`, 0 = any port). */
  bits: number;
  deny: boolean;
  /** The rule that produced it ("CiliumNetworkPolicy ns/name spec.ingress[0]", "allow-localhost", ...). */
  rule: string;
}

/** The computed policy of a local endpoint (see src/policy), as the datapath enforces it. */
export interface EndpointPolicySpec {
  endpointId: number;
  ingress: { enforced: boolean; entries: PolicyMapEntry[] };
  egress: { enforced: boolean; entries: PolicyMapEntry[] };
}

/** The operations the agent drives. Every call is an idempotent upsert or delete. */
export interface Datapath {
  upsertService(svc: ServiceEntry): Promise<void>;
  deleteService(frontend: Frontend): Promise<void>;
  upsertIPCache(entry: IPCacheEntry): Promise<void>;
  deleteIPCache(prefix: string): Promise<void>;
  /**
   * Optional: many ipcache changes at once (a datapath that can write them with
   * few syscalls, e.g. BPF batch updates). Resolves with the changes that
   * failed, by prefix; the others are applied. The agent uses it when present.
   */
  applyIPCache?(changes: IPCacheChanges): Promise<Map<string, Error>>;
  upsertNodeRoute(route: NodeRoute): Promise<void>;
  deleteNodeRoute(podCIDR: string): Promise<void>;
  /**
   * Optional: many route changes at once (a datapath whose route writes cost a
   * process or a syscall round trip each). Resolves with the changes that
   * failed, by pod CIDR; the others are applied. The agent uses it when present.
   */
  applyNodeRoutes?(changes: NodeRouteChanges): Promise<Map<string, Error>>;
  upsertEndpoint(ep: Endpoint): Promise<void>;
  deleteEndpoint(id: number): Promise<void>;
  /** Writes an endpoint's policy (and, once its veth is known, attaches the policy programs). */
  upsertEndpointPolicy(policy: EndpointPolicySpec): Promise<void>;
  /** Removes an endpoint's policy map and programs. */
  deleteEndpointPolicy(id: number): Promise<void>;
}

/**
 * The node agent's API, served over HTTP on a Unix socket
 * ($TENDRIL_HOME/clusters/<c>/nodes/<node>/agent.sock). Used by the CNI
 * plugin (IPAM and endpoint registration), `tendril status` and
 * `tendril debug`. STABLE: field names are part of the API.
 *
 *   GET    /healthz                      200 "ok" while the agent runs
 *   GET    /v1/status                    AgentStatus
 *   POST   /v1/ipam                      IpamRequest -> IpamResponse (idempotent per containerId+ifName)
 *   PUT    /v1/endpoints/<containerId>   EndpointRegistration -> EndpointInfo
 *   DELETE /v1/endpoints/<containerId>?ifName=eth0   removes the endpoint and releases its address
 *   GET    /v1/endpoints                 EndpointInfo[]
 *   GET    /v1/endpoints/<containerId>   EndpointInfo (404 when unknown)
 *   GET    /v1/services                  ServiceEntry[] (desired state the agent reconciles)
 *   GET    /v1/ipcache                   IPCacheEntry[] (desired)
 *   GET    /v1/routes                    NodeRoute[] (desired)
 */
import type { IPCacheEntry, NodeRoute, RoutingMode, ServiceEntry } from '../../datapath/types.js';

export type { IPCacheEntry, NodeRoute, ServiceEntry };

export interface IpamRequest {
  containerId: string;
  ifName: string;
  podNamespace?: string;
  podName?: string;
}

export interface IpamResponse {
  ip: string;
  /** Always 32: pods hold a /32 and route everything via the gateway. */
  prefixLength: number;
  gateway: string;
  mtu: number;
  /** The host-side interface name the plugin should create. */
  hostIfName: string;
  /** The node's pod CIDR the address came from. */
  podCIDR: string;
}

export interface EndpointRegistration {
  containerId: string;
  ifName: string;
  podNamespace: string;
  podName: string;
  podUid?: string;
  ip: string;
  hostIfName: string;
  hostMac?: string;
  podMac?: string;
  netns?: string;
}

export type EndpointState = 'waiting-for-identity' | 'ready' | 'disconnecting';

export interface EndpointInfo extends EndpointRegistration {
  id: number;
  /** 0 until the identity is known. */
  identity: number;
  labels: Record<string, string>;
  state: EndpointState;
  createdAt: string;
}

/** Something wrong, for `tendril status`: what, why, and what to do. */
export interface Problem {
  component: string;
  cause: string;
  hint?: string;
}

export interface ReconcilerStatus {
  name: string;
  desired: number;
  applied: number;
  pending: number;
  lastError?: string;
}

export interface AgentStatus {
  node: string;
  clusterName: string;
  clusterId: number;
  nodeIP: string;
  podCIDR: string;
  routingMode: RoutingMode;
  /** "linux" (eBPF + kernel routes) or "fake" (recorded only). */
  datapath: string;
  /** Whether the socket load-balancing programs are attached to the node's cgroup. */
  socketLB: { attached: boolean; cgroup: string; detail?: string };
  k8s: { url: string; synced: boolean; lastError?: string };
  counts: {
    endpoints: number;
    services: number;
    identities: number;
    ipcache: number;
    nodes: number;
    remoteNodes: number;
  };
  ipam: { cidr: string; used: number; capacity: number };
  reconcilers: ReconcilerStatus[];
  /** Network policy: enforcement mode and endpoints with policy (see AgentPolicy.summary). */
  policy?: { enforcement: string; endpoints: number; enforced: number; held?: string[] };
  problems: Problem[];
  startedAt: string;
  pid: number;
  /** "OK", "Warning" (degraded but serving) or "Error". */
  health: 'OK' | 'Warning' | 'Error';
}

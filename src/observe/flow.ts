/**
 * Flows in Hubble's model. A flow is one observed event of the datapath
 * (a policy verdict, a drop, a forwarded packet of a connection, a socket
 * load-balancer translation) enriched by the agent with who the peers are.
 *
 * Field names follow Hubble's `flow.proto` in the camelCase that protobuf's
 * JSON mapping (and @grpc/proto-loader) uses, and enum values keep Hubble's
 * names and numbers, so a Flow here serialises to Hubble's wire format
 * field for field (see src/observe/proto/). Only the fields Tendril fills are
 * declared; absent optional fields are simply not set.
 */

/** Hubble's Verdict (flow.proto). */
export const Verdict = {
  VERDICT_UNKNOWN: 0,
  FORWARDED: 1,
  DROPPED: 2,
  ERROR: 3,
  AUDIT: 4,
  REDIRECTED: 5,
  TRACED: 6,
  TRANSLATED: 7,
} as const;
export type VerdictName = keyof typeof Verdict;

/** Hubble's TrafficDirection. */
export const TrafficDirection = {
  TRAFFIC_DIRECTION_UNKNOWN: 0,
  INGRESS: 1,
  EGRESS: 2,
} as const;
export type TrafficDirectionName = keyof typeof TrafficDirection;

/** Hubble's FlowType. */
export const FlowType = { UNKNOWN_TYPE: 0, L3_L4: 1, L7: 2, SOCK: 3 } as const;
export type FlowTypeName = keyof typeof FlowType;

/** Hubble's TraceObservationPoint (the ones Tendril's datapath has). */
export const TraceObservationPoint = {
  UNKNOWN_POINT: 0,
  TO_PROXY: 1,
  TO_HOST: 2,
  TO_STACK: 3,
  TO_OVERLAY: 4,
  TO_ENDPOINT: 101,
  FROM_ENDPOINT: 5,
  FROM_PROXY: 6,
  FROM_HOST: 7,
  FROM_STACK: 8,
  FROM_OVERLAY: 9,
  FROM_NETWORK: 10,
  TO_NETWORK: 11,
} as const;
export type TraceObservationPointName = keyof typeof TraceObservationPoint;

/** Hubble's SocketTranslationPoint. */
export const SocketTranslationPoint = {
  SOCK_XLATE_POINT_UNKNOWN: 0,
  SOCK_XLATE_POINT_PRE_DIRECTION_FWD: 1,
  SOCK_XLATE_POINT_POST_DIRECTION_FWD: 2,
  SOCK_XLATE_POINT_PRE_DIRECTION_REV: 3,
  SOCK_XLATE_POINT_POST_DIRECTION_REV: 4,
} as const;
export type SocketTranslationPointName = keyof typeof SocketTranslationPoint;

/**
 * Hubble's DropReason values Tendril's datapath produces (numbers shared with
 * Cilium's bpf/lib/common.h). Extend from flow.proto as the datapath grows;
 * never renumber.
 */
export const DropReason = {
  DROP_REASON_UNKNOWN: 0,
  INVALID_SOURCE_IP: 132,
  POLICY_DENIED: 133,
  INVALID_PACKET_DROPPED: 134,
  CT_TRUNCATED_OR_INVALID_HEADER: 135,
  CT_UNKNOWN_L4_PROTOCOL: 137,
  CT_CANNOT_CREATE_ENTRY_FROM_PACKET: 138,
  UNSUPPORTED_L3_PROTOCOL: 139,
  UNKNOWN_L4_PROTOCOL: 142,
  STALE_OR_UNROUTABLE_IP: 151,
  CT_MAP_INSERTION_FAILED: 155,
  SERVICE_BACKEND_NOT_FOUND: 158,
  NO_CONFIGURATION_AVAILABLE_TO_PERFORM_POLICY_DECISION: 165,
  INVALID_IDENTITY: 171,
  POLICY_DENY: 181,
  INVALID_CLUSTER_ID: 192,
} as const;
export type DropReasonName = keyof typeof DropReason;

/** Hubble's Workload. */
export interface Workload {
  name: string;
  kind: string;
}

/** Hubble's Endpoint: one side of a flow. */
export interface FlowEndpoint {
  /** Local endpoint ID (0 for peers that are not local endpoints). */
  ID: number;
  identity: number;
  clusterName: string;
  namespace: string;
  /** Labels in `source:key=value` form, sorted (Hubble's format, e.g. `k8s:app=echo`). */
  labels: string[];
  podName: string;
  workloads: Workload[];
}

/** Hubble's Service. */
export interface FlowService {
  name: string;
  namespace: string;
}

/** Hubble's Policy (the policies that allowed or denied a flow). */
export interface FlowPolicy {
  name: string;
  namespace: string;
  labels: string[];
  revision: number;
  /** `CiliumNetworkPolicy`, `CiliumClusterwideNetworkPolicy`, `NetworkPolicy`. */
  kind: string;
}

/** Hubble's TCPFlags. */
export interface TCPFlags {
  FIN?: boolean;
  SYN?: boolean;
  RST?: boolean;
  PSH?: boolean;
  ACK?: boolean;
  URG?: boolean;
  ECE?: boolean;
  CWR?: boolean;
  NS?: boolean;
}

/** Hubble's Layer4 (a oneof: exactly one member set). */
export interface Layer4 {
  TCP?: { sourcePort: number; destinationPort: number; flags?: TCPFlags };
  UDP?: { sourcePort: number; destinationPort: number };
  ICMPv4?: { type: number; code: number };
  ICMPv6?: { type: number; code: number };
}

/** A flow (Hubble's `flow.Flow`). Times are Unix nanoseconds as a bigint-free pair. */
export interface Flow {
  /** When the datapath saw it. */
  time: { seconds: number; nanos: number };
  uuid: string;
  verdict: VerdictName;
  /** Only for DROPPED. */
  dropReasonDesc?: DropReasonName;
  IP?: { source: string; destination: string; ipVersion: 'IPv4' | 'IPv6' };
  l4?: Layer4;
  source?: FlowEndpoint;
  destination?: FlowEndpoint;
  Type: FlowTypeName;
  nodeName: string;
  /** DNS names the agent has seen resolve to the source/destination IP. */
  sourceNames: string[];
  destinationNames: string[];
  /** Cilium's monitor message type and subtype (drop 1, trace 4, policy verdict 9, trace sock 12). */
  eventType: { type: number; subType: number };
  sourceService?: FlowService;
  destinationService?: FlowService;
  trafficDirection: TrafficDirectionName;
  traceObservationPoint?: TraceObservationPointName;
  /** Absent when unknown (Hubble's BoolValue). */
  isReply?: boolean;
  sockXlatePoint?: SocketTranslationPointName;
  socketCookie?: number;
  cgroupId?: number;
  /** Policies that allowed or denied it (policy-verdict and drop flows). */
  egressAllowedBy?: FlowPolicy[];
  ingressAllowedBy?: FlowPolicy[];
  egressDeniedBy?: FlowPolicy[];
  ingressDeniedBy?: FlowPolicy[];
  /** Hubble's one-line summary (`TCP Flags: SYN`, `UDP`, ...). */
  Summary?: string;
}

/** Cilium monitor message types used in Flow.eventType.type. */
export const MonitorMessageType = {
  DROP: 1,
  DEBUG: 2,
  CAPTURE: 3,
  TRACE: 4,
  POLICY_VERDICT: 9,
  TRACE_SOCK: 12,
} as const;

/**
 * Where flows are kept and read: the agent's bounded ring (oldest flows
 * overwritten), read by the observer API, metrics and tests.
 */
export interface FlowSource {
  /** Flows currently in the ring, oldest first. */
  snapshot(): Flow[];
  /**
   * Calls `onFlow` for every flow added from now on, until the returned
   * function is called. A subscriber that cannot keep up loses flows and is
   * told how many through `onLost`; it never makes the ring grow.
   */
  subscribe(onFlow: (f: Flow) => void, onLost?: (count: number) => void): () => void;
  /** Counters since start. */
  stats(): { seen: number; capacity: number; lost: number };
}

/**
 * Loads Tendril's Hubble-compatible `.proto` files (src/observe/proto/) with
 * @grpc/proto-loader and converts between the wire objects and the Flow type
 * of flow.ts. The .proto files are found beside this module through
 * import.meta.url, so they ship with the source (tsx runs from src/).
 */
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Flow, FlowEndpoint } from './flow.js';
import type { FlowFilter } from './filter.js';

/** Directory of the .proto files (flow/, observer/, relay/). */
export const PROTO_DIR = fileURLToPath(new URL('./proto/', import.meta.url));

/** proto-loader options: camelCase fields, enum names, uint64 as numbers, repeated fields always present. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: false,
  arrays: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

let pkg: grpc.GrpcObject | undefined;

/** The loaded `observer` package (service `observer.Observer`). */
export function observerPackage(): grpc.GrpcObject {
  if (!pkg) {
    const def = protoLoader.loadSync('observer/observer.proto', LOADER_OPTIONS);
    pkg = grpc.loadPackageDefinition(def);
  }
  return pkg;
}

/** `observer.Observer`'s service definition and client constructor. */
export function observerService(): grpc.ServiceClientConstructor {
  return (observerPackage()['observer'] as grpc.GrpcObject)[
    'Observer'
  ] as grpc.ServiceClientConstructor;
}

/** Hubble's relay.NodeState names. */
export type NodeState =
  'UNKNOWN_NODE_STATE' | 'NODE_CONNECTED' | 'NODE_UNAVAILABLE' | 'NODE_GONE' | 'NODE_ERROR';

/** Timestamp on the wire. */
export interface WireTimestamp {
  seconds: number;
  nanos: number;
}

/** GetFlowsRequest as proto-loader decodes it. */
export interface GetFlowsRequest {
  number?: number;
  first?: boolean;
  follow?: boolean;
  whitelist?: FlowFilter[];
  blacklist?: FlowFilter[];
  since?: WireTimestamp;
  until?: WireTimestamp;
}

/** relay.NodeStatusEvent. */
export interface NodeStatusEvent {
  stateChange: NodeState;
  nodeNames: string[];
  message?: string;
}

/** flow.LostEvent. */
export interface LostEvent {
  source:
    | 'UNKNOWN_LOST_EVENT_SOURCE'
    | 'PERF_EVENT_RING_BUFFER'
    | 'OBSERVER_EVENTS_QUEUE'
    | 'HUBBLE_RING_BUFFER';
  numEventsLost: number;
}

/** One GetFlowsResponse, decoded (exactly one of flow, nodeStatus, lostEvents). */
export interface GetFlowsResponse {
  flow?: Flow;
  nodeStatus?: NodeStatusEvent;
  lostEvents?: LostEvent;
  nodeName: string;
  time?: WireTimestamp;
}

/** ServerStatusResponse. */
export interface ServerStatus {
  numFlows: number;
  maxFlows: number;
  seenFlows: number;
  uptimeNs: number;
  numConnectedNodes?: number;
  numUnavailableNodes?: number;
  unavailableNodes: string[];
  version: string;
  flowsRate: number;
  /** Tendril extension (field 1000): events lost in the datapath plus flows dropped for slow followers. */
  lostEvents: number;
}

/** observer.Node. */
export interface ObserverNode {
  name: string;
  version: string;
  address: string;
  state: NodeState;
  tls?: { enabled: boolean; serverName?: string };
  uptimeNs: number;
  numFlows: number;
  maxFlows: number;
  seenFlows: number;
}

/** A ServerStatus as the wire object (UInt32Value wrappers). */
export function statusToWire(s: ServerStatus): Record<string, unknown> {
  const { numConnectedNodes, numUnavailableNodes, ...rest } = s;
  return {
    ...rest,
    ...(numConnectedNodes !== undefined ? { numConnectedNodes: { value: numConnectedNodes } } : {}),
    ...(numUnavailableNodes !== undefined
      ? { numUnavailableNodes: { value: numUnavailableNodes } }
      : {}),
  };
}

/** A Flow as the wire object (BoolValue wrapper for is_reply). */
export function flowToWire(f: Flow): Record<string, unknown> {
  const { isReply, ...rest } = f;
  return isReply === undefined ? rest : { ...rest, isReply: { value: isReply } };
}

function endpointFromWire(e: Record<string, unknown> | undefined): FlowEndpoint | undefined {
  if (!e) return undefined;
  return {
    ID: Number(e['ID'] ?? 0),
    identity: Number(e['identity'] ?? 0),
    clusterName: String(e['clusterName'] ?? ''),
    namespace: String(e['namespace'] ?? ''),
    labels: (e['labels'] as string[] | undefined) ?? [],
    podName: String(e['podName'] ?? ''),
    workloads: (e['workloads'] as FlowEndpoint['workloads'] | undefined) ?? [],
  };
}

/** A decoded wire flow as a Flow (defaults filled, oneof markers dropped). */
export function flowFromWire(w: Record<string, unknown>): Flow {
  const out: Record<string, unknown> = { ...w };
  const l4 = w['l4'] as Record<string, unknown> | undefined;
  if (l4) {
    const { protocol: _p, ...l4rest } = l4;
    out['l4'] = l4rest;
  }
  const ir = w['isReply'] as { value?: boolean } | undefined;
  if (ir) out['isReply'] = ir.value ?? false;
  else delete out['isReply'];
  const src = endpointFromWire(w['source'] as Record<string, unknown> | undefined);
  const dst = endpointFromWire(w['destination'] as Record<string, unknown> | undefined);
  if (src) out['source'] = src;
  if (dst) out['destination'] = dst;
  const t = w['time'] as Partial<WireTimestamp> | undefined;
  out['time'] = { seconds: Number(t?.seconds ?? 0), nanos: Number(t?.nanos ?? 0) };
  out['uuid'] = w['uuid'] ?? '';
  out['verdict'] = w['verdict'] ?? 'VERDICT_UNKNOWN';
  out['Type'] = w['Type'] ?? 'UNKNOWN_TYPE';
  out['nodeName'] = w['nodeName'] ?? '';
  out['trafficDirection'] = w['trafficDirection'] ?? 'TRAFFIC_DIRECTION_UNKNOWN';
  const et = w['eventType'] as { type?: number; subType?: number } | undefined;
  out['eventType'] = { type: et?.type ?? 0, subType: et?.subType ?? 0 };
  for (const k of ['egressAllowedBy', 'ingressAllowedBy', 'egressDeniedBy', 'ingressDeniedBy'])
    if (Array.isArray(w[k]) && (w[k] as unknown[]).length === 0) delete out[k];
  out['sourceNames'] = w['sourceNames'] ?? [];
  out['destinationNames'] = w['destinationNames'] ?? [];
  return out as unknown as Flow;
}

/** A decoded GetFlowsResponse (flow converted, oneof marker dropped). */
export function responseFromWire(w: Record<string, unknown>): GetFlowsResponse {
  const out: GetFlowsResponse = { nodeName: String(w['nodeName'] ?? '') };
  if (w['time']) {
    const t = w['time'] as Partial<WireTimestamp>;
    out.time = { seconds: Number(t.seconds ?? 0), nanos: Number(t.nanos ?? 0) };
  }
  if (w['flow']) out.flow = flowFromWire(w['flow'] as Record<string, unknown>);
  if (w['nodeStatus']) {
    const n = w['nodeStatus'] as Partial<NodeStatusEvent>;
    out.nodeStatus = {
      stateChange: n.stateChange ?? 'UNKNOWN_NODE_STATE',
      nodeNames: n.nodeNames ?? [],
      ...(n.message ? { message: n.message } : {}),
    };
  }
  if (w['lostEvents']) {
    const l = w['lostEvents'] as Partial<LostEvent>;
    out.lostEvents = {
      source: l.source ?? 'UNKNOWN_LOST_EVENT_SOURCE',
      numEventsLost: Number(l.numEventsLost ?? 0),
    };
  }
  return out;
}

/** A response as the wire object. */
export function responseToWire(r: GetFlowsResponse): Record<string, unknown> {
  const { flow, ...rest } = r;
  return flow ? { ...rest, flow: flowToWire(flow) } : rest;
}

/** Milliseconds since the epoch of a wire timestamp. */
export function timestampMs(t: WireTimestamp): number {
  return t.seconds * 1000 + Math.floor(t.nanos / 1e6);
}

/** A wire timestamp from milliseconds since the epoch. */
export function timestampFromMs(ms: number): WireTimestamp {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

/** Orders flows by time (seconds, then nanos). */
export function compareTime(a: WireTimestamp, b: WireTimestamp): number {
  return a.seconds - b.seconds || a.nanos - b.nanos;
}

/**
 * Small builders of Services, EndpointSlices, Pods and ClusterServices, for
 * this package's table tests and for other packages' tests.
 */
import type { V1Endpoint, V1EndpointSlice, V1Pod, V1Service } from '@kubernetes/client-node';
import type { ClusterService } from './cluster-service.js';

export interface SvcOptions {
  ns?: string;
  ip?: string;
  ports?: { name?: string; port: number; targetPort?: number | string; protocol?: string }[];
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  selector?: Record<string, string>;
  type?: string;
}

/** A Service (default: ClusterIP 10.96.0.100, port 80 -> 8080/TCP, selector app=<name>). */
export function svc(name: string, o: SvcOptions = {}): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name,
      namespace: o.ns ?? 'default',
      annotations: o.annotations ?? {},
      labels: o.labels ?? {},
    },
    spec: {
      type: o.type ?? 'ClusterIP',
      clusterIP: o.ip ?? '10.96.0.100',
      selector: o.selector ?? { app: name },
      ports: (o.ports ?? [{ port: 80, targetPort: 8080 }]).map((p) => ({
        ...(p.name !== undefined ? { name: p.name } : {}),
        port: p.port,
        protocol: p.protocol ?? 'TCP',
        ...(p.targetPort !== undefined ? { targetPort: p.targetPort as never } : {}),
      })),
    },
  };
}

export type EP =
  string | { ip: string; ready?: boolean; serving?: boolean; terminating?: boolean; node?: string };

/** An EndpointSlice of service `service` (default port: unnamed 8080/TCP). */
export function slice(
  service: string,
  eps: EP[],
  o: {
    ns?: string;
    name?: string;
    ports?: { name?: string; port?: number; protocol?: string }[];
    marker?: boolean;
    addressType?: string;
  } = {},
): V1EndpointSlice {
  const labels: Record<string, string> = { 'kubernetes.io/service-name': service };
  if (o.marker) labels['cilium.io/global-service'] = 'true';
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: o.name ?? `${service}-${o.marker ? 'mesh' : 'abcde'}`,
      namespace: o.ns ?? 'default',
      labels,
    },
    addressType: o.addressType ?? 'IPv4',
    ports: (o.ports ?? [{ port: 8080 }]).map((p) => ({
      ...(p.name !== undefined ? { name: p.name } : {}),
      ...(p.port !== undefined ? { port: p.port } : {}),
      protocol: p.protocol ?? 'TCP',
    })),
    endpoints: eps.map((e): V1Endpoint => {
      if (typeof e === 'string') return { addresses: [e], conditions: { ready: true } };
      const ep: V1Endpoint = { addresses: [e.ip], conditions: {} };
      if (e.ready !== undefined) ep.conditions!.ready = e.ready;
      if (e.serving !== undefined) ep.conditions!.serving = e.serving;
      if (e.terminating !== undefined) ep.conditions!.terminating = e.terminating;
      if (e.node) ep.nodeName = e.node;
      return ep;
    }),
  };
}

/** A remote ClusterService with backends on `port` (name "", TCP) unless ports are given. */
export function cs(
  cluster: string,
  clusterID: number,
  name: string,
  backends: string[],
  o: {
    ns?: string;
    frontend?: string;
    ports?: Record<string, { Protocol: 'TCP' | 'UDP' | 'SCTP' | 'ANY'; Port: number }>;
    fePorts?: Record<string, { Protocol: 'TCP' | 'UDP' | 'SCTP' | 'ANY'; Port: number }>;
    shared?: boolean;
  } = {},
): ClusterService {
  const ports = o.ports ?? { '': { Protocol: 'TCP', Port: 8080 } };
  return {
    cluster,
    namespace: o.ns ?? 'default',
    name,
    frontends: {
      [o.frontend ?? '10.96.0.200']: o.fePorts ?? { '': { Protocol: 'TCP', Port: 80 } },
    },
    backends: Object.fromEntries(backends.map((ip) => [ip, { ...ports }])),
    labels: {},
    selector: {},
    includeExternal: false,
    shared: o.shared ?? true,
    clusterID,
  };
}

/** A running pod with IP and labels; containers' named ports optional. */
export function pod(
  name: string,
  ip: string | undefined,
  o: {
    ns?: string;
    labels?: Record<string, string>;
    ports?: { name?: string; containerPort: number; protocol?: string }[];
    ready?: boolean;
    deleting?: boolean;
    node?: string;
  } = {},
): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: o.ns ?? 'default',
      labels: o.labels ?? {},
      uid: `uid-${name}`,
      ...(o.deleting ? { deletionTimestamp: new Date(0) } : {}),
    },
    spec: {
      nodeName: o.node ?? 'node1',
      containers: [{ name: 'c', ports: (o.ports ?? []).map((p) => ({ ...p })) }],
    },
    status: {
      phase: 'Running',
      ...(ip ? { podIP: ip } : {}),
      conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }],
    },
  };
}

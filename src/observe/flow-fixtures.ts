/**
 * Flows shaped like the seed's walkthrough, for tests of the metrics and the
 * service map: cluster2's `client` pod calling `echo-service-c1` (a global
 * service whose backend runs in cluster1), forwarded, and a client whose
 * connection a policy denies.
 */
import { MonitorMessageType, type Flow, type FlowEndpoint } from './flow.js';

let seq = 0;

/** A flow endpoint with Hubble's fields. */
export function endpoint(
  cluster: string,
  namespace: string,
  pod: string,
  workload: string | undefined,
  identity: number,
  labels: string[] = [],
): FlowEndpoint {
  return {
    ID: 0,
    identity,
    clusterName: cluster,
    namespace,
    labels: [...labels, `k8s:io.kubernetes.pod.namespace=${namespace}`].sort(),
    podName: pod,
    workloads: workload ? [{ name: workload, kind: 'Deployment' }] : [],
  };
}

/** cluster2's client pod (`default/client`). */
export const CLIENT_C2 = endpoint('cluster2', 'default', 'client', undefined, 30001, [
  'k8s:app=client',
]);
/** echo-service-c1's backend pod in cluster1. */
export const ECHO_C1 = endpoint('cluster1', 'default', 'echo-c1-7d9f8-abcde', 'echo-c1', 20001, [
  'k8s:app=echo-service-c1',
]);

/** A forwarded TCP flow from cluster2's client to echo-service-c1 in cluster1. */
export function forwardedToEcho(srcPort = 40000 + (seq % 20000), nowMs = Date.now()): Flow {
  seq++;
  return {
    time: { seconds: Math.floor(nowMs / 1000), nanos: (nowMs % 1000) * 1e6 },
    uuid: `fwd-${seq}`,
    verdict: 'FORWARDED',
    IP: { source: '10.245.0.10', destination: '10.244.1.10', ipVersion: 'IPv4' },
    l4: { TCP: { sourcePort: srcPort, destinationPort: 80, flags: { SYN: true } } },
    source: CLIENT_C2,
    destination: ECHO_C1,
    Type: 'L3_L4',
    nodeName: 'cluster2/cluster2-worker',
    sourceNames: [],
    destinationNames: ['echo-service-c1.default.svc.cluster.local'],
    eventType: { type: MonitorMessageType.TRACE, subType: 0 },
    destinationService: { name: 'echo-service-c1', namespace: 'default' },
    trafficDirection: 'EGRESS',
    traceObservationPoint: 'TO_STACK',
    isReply: false,
    Summary: 'TCP Flags: SYN',
  };
}

/** A connection from cluster2's `default/intruder` to echo-c1's pod dropped by policy at cluster1's ingress. */
export function deniedToEcho(nowMs = Date.now(), pod = 'intruder'): Flow {
  seq++;
  return {
    time: { seconds: Math.floor(nowMs / 1000), nanos: (nowMs % 1000) * 1e6 },
    uuid: `drop-${seq}`,
    verdict: 'DROPPED',
    dropReasonDesc: 'POLICY_DENIED',
    IP: { source: '10.245.0.11', destination: '10.244.1.10', ipVersion: 'IPv4' },
    l4: { TCP: { sourcePort: 41000, destinationPort: 80, flags: { SYN: true } } },
    source: endpoint('cluster2', 'default', pod, undefined, 30002, [`k8s:app=${pod}`]),
    destination: ECHO_C1,
    Type: 'L3_L4',
    nodeName: 'cluster1/cluster1-worker',
    sourceNames: [],
    destinationNames: [],
    eventType: { type: MonitorMessageType.DROP, subType: 133 },
    trafficDirection: 'INGRESS',
    isReply: false,
    ingressDeniedBy: [
      {
        name: 'echo-allow-client',
        namespace: 'default',
        labels: [],
        revision: 1,
        kind: 'CiliumNetworkPolicy',
      },
    ],
    Summary: 'TCP Flags: SYN',
  };
}

/** A policy-verdict flow (allowed new connection at ingress). */
export function policyAllowed(nowMs = Date.now()): Flow {
  const f = forwardedToEcho(40001, nowMs);
  return {
    ...f,
    uuid: `pv-${seq}`,
    eventType: { type: MonitorMessageType.POLICY_VERDICT, subType: 0 },
    trafficDirection: 'INGRESS',
    ingressAllowedBy: [
      {
        name: 'echo-allow-client',
        namespace: 'default',
        labels: [],
        revision: 1,
        kind: 'CiliumNetworkPolicy',
      },
    ],
  };
}

/**
 * Flows for tests (unit tests of filter, server, relay, CLI output): a
 * realistic TCP flow between two pods with overrides.
 */
import type { Flow, FlowEndpoint } from './flow.js';

/** An endpoint of a test flow. */
export function testEndpoint(o: Partial<FlowEndpoint> = {}): FlowEndpoint {
  return {
    ID: 0,
    identity: 0,
    clusterName: 'cluster1',
    namespace: 'default',
    labels: [],
    podName: '',
    workloads: [],
    ...o,
  };
}

/** A TCP flow client -> echo:8080 at second `sec`, with overrides. */
export function testFlow(sec: number, o: Partial<Flow> = {}): Flow {
  return {
    time: { seconds: sec, nanos: 123_000_000 },
    uuid: `uuid-${sec}`,
    verdict: 'FORWARDED',
    IP: { source: '10.244.1.5', destination: '10.244.2.7', ipVersion: 'IPv4' },
    l4: { TCP: { sourcePort: 43210, destinationPort: 8080, flags: { SYN: true } } },
    source: testEndpoint({
      ID: 101,
      identity: 12345,
      podName: 'client-abc',
      labels: ['k8s:app=client', 'k8s:io.kubernetes.pod.namespace=default'],
      workloads: [{ name: 'client', kind: 'Deployment' }],
    }),
    destination: testEndpoint({
      ID: 202,
      identity: 23456,
      podName: 'echo-xyz',
      labels: ['k8s:app=echo', 'k8s:io.kubernetes.pod.namespace=default'],
    }),
    Type: 'L3_L4',
    nodeName: 'cluster1-worker',
    sourceNames: [],
    destinationNames: [],
    eventType: { type: 4, subType: 0 },
    trafficDirection: 'EGRESS',
    traceObservationPoint: 'TO_ENDPOINT',
    isReply: false,
    Summary: 'TCP Flags: SYN',
    ...o,
  };
}

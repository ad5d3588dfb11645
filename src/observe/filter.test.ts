import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileFlowFilters, FlowFilterError, type FlowFilter } from './filter.js';
import { testEndpoint, testFlow } from './testing.js';

const f = testFlow(1);
const dropped = testFlow(2, {
  verdict: 'DROPPED',
  dropReasonDesc: 'POLICY_DENIED',
  isReply: true,
  trafficDirection: 'INGRESS',
  eventType: { type: 1, subType: 133 },
  source: testEndpoint({
    clusterName: 'cluster2',
    namespace: 'other',
    podName: 'x-1',
    identity: 777,
    labels: ['k8s:app=x'],
  }),
  l4: { UDP: { sourcePort: 5000, destinationPort: 53 } },
  IP: { source: '10.245.0.9', destination: '10.244.2.7', ipVersion: 'IPv4' },
});
const m = (wl: FlowFilter[], bl: FlowFilter[] = []) => {
  const p = compileFlowFilters(wl, bl);
  return [f, dropped].filter(p).map((x) => x.uuid);
};

test('an empty whitelist passes everything; a blacklist excludes', () => {
  assert.deepEqual(m([]), ['uuid-1', 'uuid-2']);
  assert.deepEqual(m([], [{ verdict: ['DROPPED'] }]), ['uuid-1']);
  assert.deepEqual(m([{ verdict: ['FORWARDED', 'DROPPED'] }], [{ sourcePod: ['default/'] }]), [
    'uuid-2',
  ]);
});

test('filters in a list OR, fields in one filter AND', () => {
  assert.deepEqual(m([{ verdict: ['DROPPED'] }, { destinationPort: ['8080'] }]), [
    'uuid-1',
    'uuid-2',
  ]);
  assert.deepEqual(m([{ verdict: ['DROPPED'], destinationPort: ['8080'] }]), []);
  assert.deepEqual(m([{ verdict: ['DROPPED'], destinationPort: ['53'] }]), ['uuid-2']);
});

test('pods with namespace prefixes, namespaces, services', () => {
  assert.deepEqual(m([{ sourcePod: ['default/client-'] }]), ['uuid-1']);
  assert.deepEqual(m([{ sourcePod: ['default/echo'] }]), []);
  assert.deepEqual(m([{ destinationPod: ['default/echo'] }]), ['uuid-1', 'uuid-2']);
  assert.deepEqual(m([{ sourcePod: ['other/'] }]), ['uuid-2']);
  assert.deepEqual(
    m([{ sourcePod: ['client-abc'] }]),
    [],
    'no namespace means the empty namespace (Hubble)',
  );
});

test('label selectors with and without the k8s: source', () => {
  assert.deepEqual(m([{ sourceLabel: ['app=client'] }]), ['uuid-1']);
  assert.deepEqual(m([{ sourceLabel: ['k8s:app=client'] }]), ['uuid-1']);
  assert.deepEqual(m([{ sourceLabel: ['app in (client,x)'] }]), ['uuid-1', 'uuid-2']);
  assert.deepEqual(m([{ sourceLabel: ['app!=client'] }]), ['uuid-2']);
  assert.deepEqual(m([{ destinationLabel: ['reserved:app=echo'] }]), []);
  assert.throws(
    () => compileFlowFilters([{ sourceLabel: ['app in ('] }]),
    /source_label: invalid label selector/,
  );
});

test('identity, cluster names, node names, verdict, drop reason, direction, event type', () => {
  assert.deepEqual(m([{ sourceIdentity: [777] }]), ['uuid-2']);
  assert.deepEqual(m([{ destinationIdentity: [23456] }]), ['uuid-1', 'uuid-2']);
  assert.deepEqual(m([{ sourceClusterName: ['cluster2'] }]), ['uuid-2']);
  assert.deepEqual(m([{ destinationClusterName: ['cluster*'] }]), ['uuid-1', 'uuid-2']);
  assert.deepEqual(m([{ nodeName: ['cluster1-w*'] }]), ['uuid-1', 'uuid-2']);
  assert.deepEqual(m([{ nodeName: ['other'] }]), []);
  assert.deepEqual(m([{ dropReasonDesc: ['POLICY_DENIED'] }]), ['uuid-2']);
  assert.deepEqual(m([{ dropReasonDesc: [133] }]), ['uuid-2']);
  assert.deepEqual(m([{ trafficDirection: ['INGRESS'] }]), ['uuid-2']);
  assert.deepEqual(m([{ eventType: [{ type: 4 }] }]), ['uuid-1']);
  assert.deepEqual(m([{ eventType: [{ type: 1, matchSubType: true, subType: 134 }] }]), []);
  assert.deepEqual(m([{ reply: [false] }]), ['uuid-1']);
  assert.deepEqual(m([{ tcpFlags: [{ SYN: true }] }]), ['uuid-1']);
});

test('protocol, ports and IP/CIDR', () => {
  assert.deepEqual(m([{ protocol: ['udp'] }]), ['uuid-2']);
  assert.deepEqual(m([{ protocol: ['TCP'] }]), ['uuid-1']);
  assert.deepEqual(m([{ sourcePort: ['43210'] }]), ['uuid-1']);
  assert.deepEqual(m([{ sourceIp: ['10.245.0.0/16'] }]), ['uuid-2']);
  assert.deepEqual(m([{ sourceIp: ['10.244.1.5'] }]), ['uuid-1']);
  assert.deepEqual(m([{ destinationIp: ['10.244.2.0/24'] }]), ['uuid-1', 'uuid-2']);
});

test('bad values are rejected naming the field', () => {
  const bad: Array<[FlowFilter, RegExp]> = [
    [{ destinationPort: ['70000'] }, /destination_port: invalid port "70000"/],
    [{ verdict: ['MAYBE' as never] }, /verdict: unknown value "MAYBE"/],
    [{ sourceIp: ['10.0.0.0/40'] }, /source_ip/],
    [{ sourceIp: ['not-an-ip'] }, /source_ip: "not-an-ip" is neither/],
    [{ protocol: ['carrier-pigeon'] }, /protocol: unknown protocol/],
    [{ sourcePod: ['/'] }, /source_pod: empty/],
  ];
  for (const [ff, re] of bad) {
    assert.throws(
      () => compileFlowFilters([ff]),
      (e: unknown) => e instanceof FlowFilterError && re.test(e.message),
    );
  }
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ServiceMap, matchesUiFilter, endpointNode } from './service-map.js';
import { CLIENT_C2, deniedToEcho, forwardedToEcho } from './flow-fixtures.js';
import type { Flow } from './flow.js';

test('flows aggregate into workload/pod and service nodes per cluster, edges per verdict', () => {
  let now = 1_000_000;
  const m = new ServiceMap({ windowMs: 10_000, now: () => now });
  m.add(forwardedToEcho(40000, now));
  m.add(forwardedToEcho(40001, now));
  m.add(deniedToEcho(now));
  const s = m.snapshot();
  assert.deepEqual(s.clusters, ['cluster1', 'cluster2']);
  assert.deepEqual(
    s.nodes.map((n) => n.id),
    [
      'cluster1/default/service/echo-service-c1',
      'cluster1/default/workload/echo-c1',
      'cluster2/default/pod/client',
      'cluster2/default/pod/intruder',
    ],
  );
  const fwd = s.edges.find((e) => e.verdict === 'FORWARDED')!;
  assert.equal(fwd.source, 'cluster2/default/pod/client');
  assert.equal(fwd.target, 'cluster1/default/service/echo-service-c1');
  assert.equal(fwd.total, 2);
  assert.equal(fwd.rate, 0.2); // 2 flows / 10 s
  assert.deepEqual(fwd.ports, ['TCP/80']);
  const drop = s.edges.find((e) => e.verdict === 'DROPPED')!;
  assert.equal(drop.source, 'cluster2/default/pod/intruder');
  assert.equal(drop.target, 'cluster1/default/workload/echo-c1');
  // the window slides: rates fall to 0, totals stay
  now += 10_001;
  const later = m.snapshot();
  assert.equal(later.edges.find((e) => e.verdict === 'FORWARDED')!.rate, 0);
  assert.equal(later.edges.find((e) => e.verdict === 'FORWARDED')!.total, 2);
});

test('forwarded and dropped traffic between the same pair are separate edges', () => {
  const m = new ServiceMap();
  const f = forwardedToEcho();
  const d: Flow = { ...f, uuid: 'x', verdict: 'DROPPED', dropReasonDesc: 'POLICY_DENIED' };
  m.add(f);
  m.add(d);
  const s = m.snapshot();
  assert.equal(s.edges.length, 2);
  assert.deepEqual(s.edges.map((e) => e.verdict).sort(), ['DROPPED', 'FORWARDED']);
});

test('peers without pods are drawn by IP; flows without sides are ignored', () => {
  const m = new ServiceMap();
  const f: Flow = { ...forwardedToEcho(), destination: undefined, destinationService: undefined };
  assert.equal(m.add(f), true);
  assert.equal(m.snapshot().nodes.find((n) => n.kind === 'world')?.name, '10.244.1.10');
  const none: Flow = { ...f, source: undefined, IP: undefined };
  assert.equal(m.add(none), false);
  assert.equal(endpointNode(CLIENT_C2, undefined)?.id, 'cluster2/default/pod/client');
  assert.throws(() => new ServiceMap({ windowMs: 0 }), /window must be > 0/);
});

test('UI filters: namespace, verdict and [ns/]pod on either side', () => {
  const f = forwardedToEcho();
  const d = deniedToEcho();
  assert.equal(matchesUiFilter(f, {}), true);
  assert.equal(matchesUiFilter(f, { verdict: 'DROPPED' }), false);
  assert.equal(matchesUiFilter(d, { verdict: 'DROPPED' }), true);
  assert.equal(matchesUiFilter(f, { namespace: 'kube-system' }), false);
  assert.equal(matchesUiFilter(f, { namespace: 'default' }), true);
  assert.equal(matchesUiFilter(f, { pod: 'default/client' }), true);
  assert.equal(matchesUiFilter(f, { pod: 'other/client' }), false);
  assert.equal(matchesUiFilter(f, { pod: 'echo-c1' }), true);
  assert.equal(matchesUiFilter(d, { pod: 'client' }), false);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Flow } from './flow.js';
import { FlowRing } from './ring.js';

const flow = (n: number): Flow => ({
  time: { seconds: n, nanos: 0 },
  uuid: `f${n}`,
  verdict: 'FORWARDED',
  Type: 'L3_L4',
  nodeName: 'n',
  sourceNames: [],
  destinationNames: [],
  eventType: { type: 4, subType: 0 },
  trafficDirection: 'EGRESS',
});

test('FlowRing keeps the newest flows, oldest first, and counts what it saw', () => {
  const r = new FlowRing(3);
  assert.deepEqual(r.snapshot(), []);
  for (let i = 1; i <= 5; i++) r.push(flow(i));
  assert.deepEqual(
    r.snapshot().map((f) => f.uuid),
    ['f3', 'f4', 'f5'],
  );
  assert.deepEqual(r.stats(), { seen: 5, capacity: 3, lost: 0 });
});

test('FlowRing hands new flows to subscribers until they unsubscribe', () => {
  const r = new FlowRing(2);
  const got: string[] = [];
  const stop = r.subscribe((f) => got.push(f.uuid));
  r.push(flow(1));
  stop();
  r.push(flow(2));
  assert.deepEqual(got, ['f1']);
});

test('FlowRing refuses a capacity that is not a positive integer', () => {
  assert.throws(() => new FlowRing(0), /positive integer/);
});

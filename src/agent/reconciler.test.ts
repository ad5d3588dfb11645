import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Reconciler } from './reconciler.js';
import { FakeDatapath } from '../datapath/fake.js';
import type { NodeRoute } from '../datapath/types.js';

function routes(dp: FakeDatapath) {
  return new Reconciler<NodeRoute>({
    name: 'routes',
    keyOf: (r) => r.podCIDR,
    ops: { upsert: (r) => dp.upsertNodeRoute(r), delete: (k) => dp.deleteNodeRoute(k) },
    minBackoffMs: 5,
  });
}

test('applies, updates and removes; skips no-op upserts', async () => {
  const dp = new FakeDatapath();
  const r = routes(dp);
  r.set({ podCIDR: '10.244.2.0/24', nodeIP: '172.30.1.12', clusterId: 1 });
  r.set({ podCIDR: '10.244.3.0/24', nodeIP: '172.30.1.13', clusterId: 1 });
  await r.whenIdle();
  assert.equal(dp.routes.size, 2);
  r.set({ podCIDR: '10.244.2.0/24', nodeIP: '172.30.1.12', clusterId: 1 });
  await r.whenIdle();
  assert.equal(dp.log.filter((l) => l.startsWith('upsertNodeRoute 10.244.2.0/24')).length, 1);
  r.replaceAll([{ podCIDR: '10.244.3.0/24', nodeIP: '172.30.1.99', clusterId: 1 }]);
  await r.whenIdle();
  assert.deepEqual([...dp.routes.keys()], ['10.244.3.0/24']);
  assert.equal(dp.routes.get('10.244.3.0/24')?.nodeIP, '172.30.1.99');
  r.stop();
});

test('retries failures with backoff until they succeed', async () => {
  const dp = new FakeDatapath();
  const r = routes(dp);
  dp.failNext('upsertNodeRoute', 3);
  r.set({ podCIDR: '10.244.2.0/24', nodeIP: '172.30.1.12', clusterId: 1 });
  await new Promise((res) => setTimeout(res, 20));
  assert.match(r.status().lastError ?? '', /injected failure/);
  await r.whenIdle();
  assert.equal(dp.routes.size, 1);
  assert.equal(r.status().lastError, undefined);
  assert.equal(dp.log.filter((l) => l.endsWith('FAILED')).length, 3);
  r.stop();
});

test('adopted entries survive until synced, then stale ones go', async () => {
  const dp = new FakeDatapath();
  const r = routes(dp);
  const a = { podCIDR: '10.244.2.0/24', nodeIP: '172.30.1.12', clusterId: 1 };
  const b = { podCIDR: '10.244.9.0/24', nodeIP: '172.30.1.19', clusterId: 1 };
  dp.routes.set(a.podCIDR, a);
  dp.routes.set(b.podCIDR, b);
  r.adopt([a, b]);
  r.set(a);
  await r.whenIdle();
  assert.equal(dp.routes.size, 2, 'nothing removed before sync');
  assert.equal(dp.log.length, 0, 'an adopted equal entry is not rewritten');
  r.synced();
  await r.whenIdle();
  assert.deepEqual([...dp.routes.keys()], ['10.244.2.0/24']);
  r.stop();
});

test('with hold, adopted remote entries wait for remoteSynced; merged remote parts too', async () => {
  const dp = new FakeDatapath();
  const r = new Reconciler<NodeRoute>({
    name: 'routes',
    keyOf: (x) => x.podCIDR,
    ops: { upsert: (x) => dp.upsertNodeRoute(x), delete: (k) => dp.deleteNodeRoute(k) },
    hold: { isRemote: (x) => x.clusterId !== 1 },
    minBackoffMs: 5,
  });
  const local = { podCIDR: '10.244.9.0/24', nodeIP: '172.30.1.19', clusterId: 1 };
  const remote = { podCIDR: '10.245.1.0/24', nodeIP: '172.30.2.11', clusterId: 2 };
  dp.routes.set(local.podCIDR, local);
  dp.routes.set(remote.podCIDR, remote);
  r.adopt([local, remote]);
  r.synced();
  await r.whenIdle();
  assert.deepEqual([...dp.routes.keys()], [remote.podCIDR], 'the stale local route goes');
  r.remoteSynced();
  await r.whenIdle();
  assert.equal(dp.routes.size, 0, 'the remote one goes once the mesh synced');
  r.stop();
});

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

/** A reconciler whose applyMany records its calls into `calls`, failing keys in `failing` (count down). */
function batched(maxBatch = 4096, minBackoffMs = 5) {
  const kernel = new Map<string, NodeRoute>();
  const calls: Array<{ ups: string[]; dels: string[] }> = [];
  const failing = new Map<string, number>();
  const r = new Reconciler<NodeRoute>({
    name: 'routes',
    keyOf: (x) => x.podCIDR,
    ops: {
      upsert: () => Promise.reject(new Error('per-key op used')),
      delete: () => Promise.reject(new Error('per-key op used')),
    },
    applyMany: async (ups, dels) => {
      calls.push({ ups: ups.map((u) => u.podCIDR), dels: dels.map((d) => d.last.podCIDR) });
      const errors = new Map<string, unknown>();
      for (const u of ups) {
        const n = failing.get(u.podCIDR) ?? 0;
        if (n > 0) {
          failing.set(u.podCIDR, n - 1);
          errors.set(u.podCIDR, new Error(`refused ${u.podCIDR}`));
        } else kernel.set(u.podCIDR, u);
      }
      for (const d of dels) kernel.delete(d.key);
      return errors;
    },
    maxBatch,
    minBackoffMs,
  });
  return { r, kernel, calls, failing };
}
const rt = (i: number): NodeRoute => ({
  podCIDR: `10.244.${i}.0/24`,
  nodeIP: `172.30.1.${i}`,
  clusterId: 1,
});

test('applyMany: a burst goes in one call, a lone change right after without a timer', async () => {
  const { r, kernel, calls } = batched();
  for (let i = 0; i < 10; i++) r.set(rt(i));
  await r.whenIdle();
  assert.equal(calls.length, 1);
  assert.equal(calls[0]!.ups.length, 10);
  assert.equal(kernel.size, 10);
  // a lone change: applied before the next macrotask (microtask kick, no delay)
  r.set({ ...rt(3), nodeIP: '172.30.9.9' });
  await new Promise((res) => setImmediate(res));
  assert.equal(kernel.get(rt(3).podCIDR)?.nodeIP, '172.30.9.9');
  assert.deepEqual(calls[1], { ups: [rt(3).podCIDR], dels: [] });
  // deletes carry the value last applied; a no-op set makes no call
  r.remove(rt(4).podCIDR);
  r.set(rt(5));
  await r.whenIdle();
  assert.deepEqual(calls[2], { ups: [], dels: [rt(4).podCIDR] });
  assert.equal(calls.length, 3);
  assert.equal(r.status().applied, 9);
  r.stop();
});

test('applyMany: a failing key is retried alone; the rest, past maxBatch, go on at once', async () => {
  const { r, kernel, calls, failing } = batched(3, 300);
  failing.set(rt(0).podCIDR, 2);
  for (let i = 0; i < 10; i++) r.set(rt(i));
  await new Promise((res) => setTimeout(res, 50)); // well under the 300 ms backoff
  assert.equal(kernel.size, 9, 'every key but the failing one applied in the first run');
  assert.deepEqual(
    calls.map((c) => c.ups.length),
    [3, 3, 3, 1],
    'batches of at most 3, the failing key not resent in the same run',
  );
  assert.match(r.status().lastError ?? '', /refused 10\.244\.0\.0\/24/);
  assert.equal(r.status().pending, 1);
  await r.whenIdle();
  assert.equal(kernel.size, 10);
  assert.equal(r.status().lastError, undefined);
  assert.deepEqual(calls.slice(4), [
    { ups: [rt(0).podCIDR], dels: [] },
    { ups: [rt(0).podCIDR], dels: [] },
  ]);
  r.stop();
});

test('applyMany: a call that throws fails its keys and they are retried', async () => {
  let throwing = true;
  const seen: string[][] = [];
  const r = new Reconciler<NodeRoute>({
    name: 'routes',
    keyOf: (x) => x.podCIDR,
    ops: { upsert: async () => {}, delete: async () => {} },
    applyMany: async (ups) => {
      seen.push(ups.map((u) => u.podCIDR));
      if (throwing) {
        throwing = false;
        throw new Error('ip: cannot enter the namespace');
      }
      return new Map();
    },
    minBackoffMs: 5,
  });
  r.set(rt(1));
  r.set(rt(2));
  await r.whenIdle();
  assert.equal(seen.length, 2);
  assert.deepEqual(seen[1], [rt(1).podCIDR, rt(2).podCIDR]);
  assert.equal(r.status().applied, 2);
  r.stop();
});

test('applyMany: 20,000 changes go in ceil(20,000 / maxBatch) calls, each key visited once', async () => {
  const { r, kernel, calls } = batched(4096);
  for (let i = 0; i < 20_000; i++) r.set(rt(i));
  await r.whenIdle();
  assert.deepEqual(
    calls.map((c) => c.ups.length),
    [4096, 4096, 4096, 4096, 3616],
  );
  assert.equal(new Set(calls.flatMap((c) => c.ups)).size, 20_000);
  assert.equal(kernel.size, 20_000);
  r.stop();
});

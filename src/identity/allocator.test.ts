import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryKVStore } from '../kvstore/memory.js';
import { IdentityAllocator } from './allocator.js';
import type { AllocateResult, IdentityBackend } from './backend.js';
import { KVStoreIdentityBackend } from './kvstore-backend.js';
import { clusterIdOf, localIndexOf } from './numeric.js';

const ECHO = 'k8s:app=echo;k8s:io.kubernetes.pod.namespace=default';
const OTHER = 'k8s:app=other;k8s:io.kubernetes.pod.namespace=default';

function setup(
  opts: { clusterId?: number; grace?: number; minIndex?: number; maxIndex?: number } = {},
) {
  const store = new MemoryKVStore();
  const backend = new KVStoreIdentityBackend(store);
  let now = 1_000_000;
  const alloc = new IdentityAllocator(backend, {
    clusterId: opts.clusterId ?? 1,
    gcGracePeriodMs: opts.grace ?? 60_000,
    ...(opts.minIndex !== undefined ? { minIndex: opts.minIndex } : {}),
    ...(opts.maxIndex !== undefined ? { maxIndex: opts.maxIndex } : {}),
    now: () => now,
  });
  return { store, backend, alloc, tick: (ms: number) => (now += ms) };
}

test('allocate: cluster-local IDs from index 256, same labels same ID, refcounted', async () => {
  const { alloc, store } = setup({ clusterId: 3 });
  const a = await alloc.allocate(ECHO);
  assert.equal(a.id, (3 << 16) | 256);
  assert.equal(a.isNew, true);
  assert.equal(clusterIdOf(a.id), 3);
  const again = await alloc.allocate('k8s:io.kubernetes.pod.namespace=default;k8s:app=echo');
  assert.deepEqual(again, { id: a.id, labels: ECHO, isNew: false });
  assert.equal(alloc.refCount(a.id), 2);
  const b = await alloc.allocate(OTHER);
  assert.equal(localIndexOf(b.id), 257);
  assert.equal(await alloc.lookup(ECHO), a.id);
  assert.equal((await alloc.lookupById(b.id))?.map((l) => l.value).join(','), 'other,default');
  assert.equal((await alloc.list()).length, 2);
  await store.close();
});

test('reserved label sets get reserved identities, nothing stored', async () => {
  const { alloc, store } = setup();
  assert.deepEqual(await alloc.allocate('reserved:host'), {
    id: 1,
    labels: 'reserved:host',
    isNew: false,
  });
  assert.equal((await alloc.allocate('reserved:init')).id, 5);
  assert.equal(await alloc.lookup('reserved:world'), 2);
  assert.equal((await alloc.list()).length, 0);
  await assert.rejects(alloc.allocate(''), /label set is empty/);
  await store.close();
});

test('concurrent allocations in one allocator: one ID per label set, all distinct', async () => {
  const { alloc, store } = setup();
  const sets = Array.from({ length: 20 }, (_, i) => `k8s:app=a${i}`);
  const results = await Promise.all([...sets, ...sets].map((l) => alloc.allocate(l)));
  const byLabels = new Map<string, Set<number>>();
  for (const r of results) byLabels.set(r.labels, (byLabels.get(r.labels) ?? new Set()).add(r.id));
  for (const ids of byLabels.values()) assert.equal(ids.size, 1);
  assert.equal(new Set(results.map((r) => r.id)).size, 20);
  assert.equal(results.filter((r) => r.isNew).length, 20);
  for (const r of results) assert.equal(alloc.refCount(r.id), 2);
  await store.close();
});

test('two allocators on one store agree on every label set', async () => {
  const store = new MemoryKVStore();
  const a1 = new IdentityAllocator(new KVStoreIdentityBackend(store), { clusterId: 1 });
  const a2 = new IdentityAllocator(new KVStoreIdentityBackend(store), { clusterId: 1 });
  const sets = Array.from({ length: 30 }, (_, i) => `k8s:app=s${i}`);
  const r1 = Promise.all(sets.map((l) => a1.allocate(l)));
  const r2 = Promise.all([...sets].reverse().map((l) => a2.allocate(l)));
  const [x, y] = await Promise.all([r1, r2]);
  const m1 = new Map(x.map((r) => [r.labels, r.id]));
  for (const r of y) assert.equal(m1.get(r.labels), r.id, r.labels);
  assert.equal(new Set(x.map((r) => r.id)).size, 30);
  assert.equal((await a1.list()).length, 30);
  await store.close();
});

test('gc: deletes unused identities only after the grace period; references and inUse protect', async () => {
  const { alloc, store, tick } = setup({ grace: 60_000 });
  const echo = await alloc.allocate(ECHO);
  const other = await alloc.allocate(OTHER);
  const third = await alloc.allocate('k8s:app=third');
  await alloc.release(ECHO);
  await alloc.release('k8s:app=third');
  assert.deepEqual(await alloc.release(OTHER), { id: other.id, refs: 0 });
  await alloc.allocate(OTHER); // back in use
  assert.equal(await alloc.release('k8s:app=never'), undefined);

  tick(30_000);
  let r = await alloc.gc({ inUse: [third.id] });
  assert.deepEqual(r.released, []);
  assert.equal(r.pending, 1, 'echo is unused but within grace');

  tick(31_000);
  r = await alloc.gc({ inUse: [third.id] });
  assert.deepEqual(
    r.released.map((x) => x.id),
    [echo.id],
  );
  assert.equal(await alloc.lookup(ECHO), undefined);
  assert.equal(await store.get(`cilium/state/identities/v1/id/${echo.id}`), undefined);

  // third: in use by someone else until now; first unused sighting starts its grace.
  r = await alloc.gc();
  assert.deepEqual(r.released, []);
  tick(60_000);
  r = await alloc.gc();
  assert.deepEqual(
    r.released.map((x) => x.id),
    [third.id],
  );
  assert.equal(await alloc.lookup(OTHER), other.id, 'referenced identity kept');
  await store.close();
});

test('gc: a label set re-allocated within the grace period keeps its ID', async () => {
  const { alloc, store, tick } = setup({ grace: 60_000 });
  const first = await alloc.allocate(ECHO);
  await alloc.release(ECHO);
  tick(59_000);
  await alloc.gc();
  const again = await alloc.allocate(ECHO);
  assert.equal(again.id, first.id);
  assert.equal(again.isNew, false);
  tick(120_000);
  assert.deepEqual((await alloc.gc()).released, []);
  await store.close();
});

test("gc never touches other clusters' identities", async () => {
  const store = new MemoryKVStore();
  const backend = new KVStoreIdentityBackend(store);
  let now = 0;
  const c1 = new IdentityAllocator(backend, { clusterId: 1, gcGracePeriodMs: 10, now: () => now });
  const c2 = new IdentityAllocator(backend, { clusterId: 2, gcGracePeriodMs: 10, now: () => now });
  const x = await c2.allocate('k8s:app=x');
  assert.equal(clusterIdOf(x.id), 2);
  await c1.gc();
  now += 100;
  assert.deepEqual((await c1.gc()).released, []);
  assert.equal(
    await c1.lookup('k8s:app=x'),
    x.id,
    "the label set already has cluster 2's identity in this shared store",
  );
  await store.close();
});

test('exhaustion: a clear error, and freed IDs are reused', async () => {
  const { alloc, store, tick } = setup({ minIndex: 256, maxIndex: 258, grace: 1 });
  const ids = [];
  for (const l of ['k8s:a=1', 'k8s:a=2', 'k8s:a=3']) ids.push((await alloc.allocate(l)).id);
  await assert.rejects(
    alloc.allocate('k8s:a=4'),
    (e: Error & { code?: string }) =>
      e.code === 'IDENTITY_EXHAUSTED' && /all 3 identities of cluster 1/.test(e.message),
  );
  await alloc.release('k8s:a=2');
  tick(10);
  await alloc.gc();
  const four = await alloc.allocate('k8s:a=4');
  assert.equal(four.id, ids[1]);
  await store.close();
});

test("an ID taken behind the allocator's back is skipped", async () => {
  const { alloc, store } = setup();
  await alloc.list(); // nothing yet
  await alloc.allocate('k8s:a=warm'); // loads the taken set: 256 used
  // Another process takes 257 directly.
  await new KVStoreIdentityBackend(store).allocate((1 << 16) | 257, 'k8s:a=foreign');
  const r = await alloc.allocate('k8s:a=mine');
  assert.equal(localIndexOf(r.id), 258);
  await store.close();
});

test('backend errors propagate to the caller', async () => {
  const failing: IdentityBackend = {
    lookup: async () => undefined,
    get: async () => undefined,
    allocate: async (): Promise<AllocateResult> => {
      throw new Error('etcd down');
    },
    release: async () => {},
    list: async () => [],
  };
  const alloc = new IdentityAllocator(failing, { clusterId: 1 });
  await assert.rejects(alloc.allocate(ECHO), /etcd down/);
  // The lock is released after a failure: the next call runs.
  await assert.rejects(alloc.allocate(ECHO), /etcd down/);
  assert.throws(() => new IdentityAllocator(failing, { clusterId: 0 }), /cluster ID 0/);
});

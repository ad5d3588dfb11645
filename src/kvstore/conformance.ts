/**
 * The KVStore conformance suite: one set of tests every backend must pass
 * (memory.test.ts and etcd.test.ts run it). Also usable for any other
 * KVStore implementation (e.g. a prefixing wrapper):
 *
 *   kvstoreConformance('mine', async () => ({ store, compact, teardown }));
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { deleteAll, putAll } from './batch.js';
import { isKVStoreError } from './errors.js';
import type { KVStore, WatchEvent } from './types.js';

export interface ConformanceTarget {
  store: KVStore;
  /** Compacts the store's history up to `revision`. */
  compact(revision: number): Promise<void>;
  /** Opens a second, independent client on the same data (to test closing one). */
  reopen?(): Promise<KVStore>;
  teardown(): Promise<void>;
}

/** Registers the suite under `describe(name)`. Each test uses its own key prefix. */
export function kvstoreConformance(name: string, setup: () => Promise<ConformanceTarget>): void {
  describe(`KVStore conformance: ${name}`, () => {
    let t: ConformanceTarget;
    let s: KVStore;
    let n = 0;
    const fresh = () => `conf/${process.pid}/${++n}/`;
    before(async () => {
      t = await setup();
      s = t.store;
    });
    after(async () => {
      await t?.teardown();
    });

    test('put/get: revisions as etcd counts them', async () => {
      const p = fresh();
      assert.equal(await s.get(p + 'missing'), undefined);
      const r1 = await s.put(p + 'a', 'one');
      const kv1 = await s.get(p + 'a');
      assert.deepEqual(kv1, { key: p + 'a', value: 'one', createRevision: r1, modRevision: r1 });
      const r2 = await s.put(p + 'a', 'two');
      assert.equal(r2, r1 + 1, 'one write bumps the revision by one');
      const kv2 = await s.get(p + 'a');
      assert.equal(kv2?.value, 'two');
      assert.equal(kv2?.createRevision, r1);
      assert.equal(kv2?.modRevision, r2);
    });

    test('create writes only when absent', async () => {
      const p = fresh();
      assert.equal(await s.create(p + 'k', 'first'), true);
      assert.equal(await s.create(p + 'k', 'second'), false);
      assert.equal((await s.get(p + 'k'))?.value, 'first');
      await s.delete(p + 'k');
      assert.equal(await s.create(p + 'k', 'third'), true);
      assert.equal((await s.get(p + 'k'))?.value, 'third');
    });

    test('create is atomic: of concurrent creates exactly one wins', async () => {
      const p = fresh();
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => s.create(p + 'x', `v${i}`)),
      );
      assert.equal(results.filter(Boolean).length, 1);
      const winner = results.indexOf(true);
      assert.equal((await s.get(p + 'x'))?.value, `v${winner}`);
    });

    test('list returns the prefix sorted, with the read revision', async () => {
      const p = fresh();
      await s.put(p + 'b', '2');
      await s.put(p + 'a', '1');
      await s.put(p + 'c/d', '3');
      const last = await s.put(p.slice(0, -1) + 'x', 'outside'); // shares the text but not the prefix
      const { kvs, revision } = await s.list(p);
      assert.deepEqual(
        kvs.map((kv) => [kv.key.slice(p.length), kv.value]),
        [
          ['a', '1'],
          ['b', '2'],
          ['c/d', '3'],
        ],
      );
      assert.ok(revision >= last, `list revision ${revision} >= last write ${last}`);
      assert.deepEqual((await s.list(p + 'nothing/')).kvs, []);
    });

    test('delete: deleting a missing key writes nothing', async () => {
      const p = fresh();
      const r1 = await s.put(p + 'a', '1');
      await s.delete(p + 'missing');
      const r2 = await s.put(p + 'b', '2');
      assert.equal(r2, r1 + 1);
      await s.delete(p + 'a');
      assert.equal(await s.get(p + 'a'), undefined);
      const r3 = await s.put(p + 'c', '3');
      assert.equal(r3, r2 + 2, 'the real delete took one revision');
    });

    test('deletePrefix removes exactly the prefix in one revision', async () => {
      const p = fresh();
      await s.put(p + 'del/1', 'a');
      await s.put(p + 'del/2', 'b');
      await s.put(p + 'keep', 'c');
      const events: WatchEvent[] = [];
      const w = await s.watchPrefix(p, (ev) => events.push(ev));
      try {
        const before = await s.put(p + 'marker', 'm');
        await s.deletePrefix(p + 'del/');
        const afterRev = await s.put(p + 'marker', 'n');
        assert.equal(afterRev, before + 2, 'deletePrefix is a single revision');
        assert.deepEqual(
          (await s.list(p)).kvs.map((kv) => kv.key.slice(p.length)),
          ['keep', 'marker'],
        );
        await waitFor(() => events.length >= 4);
        const dels = events.filter((e) => e.type === 'delete');
        assert.deepEqual(
          dels.map((e) => (e.type === 'delete' ? e.key.slice(p.length) : '')).sort(),
          ['del/1', 'del/2'],
        );
        assert.equal(new Set(dels.map((e) => (e.type === 'delete' ? e.modRevision : 0))).size, 1);
        assert.equal(dels[0]!.type === 'delete' && dels[0]!.modRevision, before + 1);
      } finally {
        await w.close();
      }
    });

    test('watch from now: puts, updates with prev, deletes, in order; other prefixes unseen', async () => {
      const p = fresh();
      await s.put(p + 'old', 'before the watch');
      const events: WatchEvent[] = [];
      const w = await s.watchPrefix(p + 'w/', (ev) => events.push(ev), { prevKV: true });
      try {
        const r1 = await s.put(p + 'w/a', '1');
        await s.put(p + 'other', 'x');
        const r2 = await s.put(p + 'w/a', '2');
        await s.delete(p + 'w/a');
        await waitFor(() => events.length >= 3);
        await sleep(50);
        assert.equal(events.length, 3);
        const [e1, e2, e3] = events;
        assert.ok(
          e1?.type === 'put' &&
            e1.kv.value === '1' &&
            e1.kv.modRevision === r1 &&
            e1.prev === undefined,
        );
        assert.ok(
          e2?.type === 'put' &&
            e2.kv.value === '2' &&
            e2.kv.createRevision === r1 &&
            e2.prev?.value === '1',
        );
        assert.ok(
          e3?.type === 'delete' &&
            e3.key === p + 'w/a' &&
            e3.modRevision === r2 + 1 &&
            e3.prev?.value === '2',
        );
      } finally {
        await w.close();
      }
    });

    test('watch without prevKV: events carry no previous value', async () => {
      const p = fresh();
      const events: WatchEvent[] = [];
      const w = await s.watchPrefix(p, (ev) => events.push(ev));
      try {
        await s.put(p + 'a', '1');
        await s.put(p + 'a', '2');
        await s.delete(p + 'a');
        await waitFor(() => events.length >= 3);
        assert.deepEqual(
          events.map((e) => [e.type, e.type === 'put' ? e.kv.value : e.key, e.prev]),
          [
            ['put', '1', undefined],
            ['put', '2', undefined],
            ['delete', p + 'a', undefined],
          ],
        );
      } finally {
        await w.close();
      }
    });

    test('watch afterRevision replays exactly what came after it', async () => {
      const p = fresh();
      const r1 = await s.put(p + 'a', '1');
      await s.put(p + 'b', '2');
      await s.delete(p + 'a');
      const events: WatchEvent[] = [];
      const w = await s.watchPrefix(p, (ev) => events.push(ev), { afterRevision: r1 });
      try {
        await s.put(p + 'c', '3');
        await waitFor(() => events.length >= 3);
        assert.deepEqual(
          events.map((e) =>
            e.type === 'put'
              ? `put ${e.kv.key.slice(p.length)}`
              : `delete ${e.key.slice(p.length)}`,
          ),
          ['put b', 'delete a', 'put c'],
        );
      } finally {
        await w.close();
      }
    });

    test('watch from a future revision starts there', async () => {
      const p = fresh();
      const r1 = await s.put(p + 'a', '1');
      const events: WatchEvent[] = [];
      const w = await s.watchPrefix(p, (ev) => events.push(ev), { afterRevision: r1 + 1 });
      try {
        await s.put(p + 'b', '2'); // revision r1 + 1: not after r1 + 1
        await s.put(p + 'c', '3'); // r1 + 2
        await waitFor(() => events.length >= 1);
        await sleep(50);
        assert.deepEqual(
          events.map((e) => (e.type === 'put' ? e.kv.key.slice(p.length) : '')),
          ['c'],
        );
      } finally {
        await w.close();
      }
    });

    test('list then watch from its revision misses nothing (the informer pattern)', async () => {
      const p = fresh();
      for (let i = 0; i < 5; i++) await s.put(p + `k${i}`, String(i));
      const { kvs, revision } = await s.list(p);
      const state = new Map(kvs.map((kv) => [kv.key, kv.value]));
      await s.put(p + 'k9', '9'); // between list and watch
      const w = await s.watchPrefix(
        p,
        (ev) => {
          if (ev.type === 'put') state.set(ev.kv.key, ev.kv.value);
          else state.delete(ev.key);
        },
        { afterRevision: revision },
      );
      try {
        await s.delete(p + 'k0');
        await waitFor(() => !state.has(p + 'k0'));
        assert.deepEqual([...state.keys()].map((k) => k.slice(p.length)).sort(), [
          'k1',
          'k2',
          'k3',
          'k4',
          'k9',
        ]);
      } finally {
        await w.close();
      }
    });

    test('watch delivers many concurrent writes in revision order', async () => {
      const p = fresh();
      const revs: number[] = [];
      const w = await s.watchPrefix(p, (ev) =>
        revs.push(ev.type === 'put' ? ev.kv.modRevision : ev.modRevision),
      );
      try {
        const written = await Promise.all(
          Array.from({ length: 100 }, (_, i) => s.put(p + `k${i % 10}`, String(i))),
        );
        await waitFor(() => revs.length >= 100);
        assert.deepEqual(
          revs,
          [...written].sort((a, b) => a - b),
        );
      } finally {
        await w.close();
      }
    });

    test('a closed watch gets nothing more', async () => {
      const p = fresh();
      const events: WatchEvent[] = [];
      const w = await s.watchPrefix(p, (ev) => events.push(ev));
      await s.put(p + 'a', '1');
      await waitFor(() => events.length === 1);
      await w.close();
      await s.put(p + 'b', '2');
      await sleep(100);
      assert.equal(events.length, 1);
    });

    test('watch from a compacted revision fails with KVSTORE_COMPACTED', async () => {
      const p = fresh();
      const r1 = await s.put(p + 'a', '1');
      await s.put(p + 'a', '2');
      const r3 = await s.put(p + 'a', '3');
      await t.compact(r3);
      const err = await new Promise<Error>((resolve, reject) => {
        s.watchPrefix(p, () => reject(new Error('no event expected')), {
          afterRevision: r1,
          onError: resolve,
        }).then((w) => setTimeout(() => void w.close(), 2000).unref(), resolve);
      });
      assert.ok(isKVStoreError(err, 'KVSTORE_COMPACTED'), `got ${String(err)}`);
      // From the compaction point on, watching works.
      const events: WatchEvent[] = [];
      const w = await s.watchPrefix(p, (ev) => events.push(ev), { afterRevision: r3 });
      try {
        await s.put(p + 'a', '4');
        await waitFor(() => events.length === 1);
      } finally {
        await w.close();
      }
    });

    test('revoking a lease deletes its keys (and watchers see it)', async () => {
      const p = fresh();
      const lease = await s.grantLease(30);
      assert.match(lease.id, /^[0-9a-f]+$/);
      await s.put(p + 'a', '1', { lease });
      assert.equal(await s.create(p + 'b', '2', { lease }), true);
      await s.put(p + 'c', 'no lease');
      assert.equal((await s.get(p + 'a'))?.lease, lease.id);
      assert.equal((await s.get(p + 'c'))?.lease, undefined);
      const dels: string[] = [];
      const w = await s.watchPrefix(
        p,
        (ev) => ev.type === 'delete' && dels.push(ev.key.slice(p.length)),
      );
      try {
        await lease.revoke();
        assert.deepEqual(
          (await s.list(p)).kvs.map((kv) => kv.key.slice(p.length)),
          ['c'],
        );
        await waitFor(() => dels.length === 2);
        assert.deepEqual(dels.sort(), ['a', 'b']);
        await assert.rejects(s.put(p + 'd', 'x', { lease }), (e) =>
          isKVStoreError(e, 'KVSTORE_LEASE_NOT_FOUND'),
        );
      } finally {
        await w.close();
      }
    });

    test('leases: a lease without keep-alive expires after its TTL; a kept-alive one does not', async () => {
      const p = fresh();
      const dying = await s.grantLease(1, { keepAlive: false });
      const kept = await s.grantLease(1);
      await s.put(p + 'dying', '1', { lease: dying });
      await s.put(p + 'kept', '1', { lease: kept });
      await waitFor(async () => (await s.get(p + 'dying')) === undefined, 8000);
      await sleep(1500);
      assert.equal((await s.get(p + 'kept'))?.value, '1', 'a kept-alive lease outlives its TTL');
      await kept.revoke();
      assert.equal(await s.get(p + 'kept'), undefined);
    });

    test('putAll/deleteAll: batches of any size, watchers see every key, last value wins', async () => {
      const p = fresh();
      const seen = new Map<string, string>();
      const w = await s.watchPrefix(p, (ev) => {
        if (ev.type === 'put') seen.set(ev.kv.key, ev.kv.value);
        else seen.delete(ev.key);
      });
      try {
        const pairs = Array.from({ length: 300 }, (_, i) => ({
          key: `${p}k${String(i).padStart(3, '0')}`,
          value: `v${i}`,
        }));
        pairs.push({ key: `${p}k000`, value: 'again' });
        const rev = await putAll(s, pairs);
        const { kvs, revision } = await s.list(p);
        assert.equal(kvs.length, 300);
        assert.ok(revision >= rev && rev > 0);
        assert.equal(kvs[0]!.value, 'again');
        await waitFor(() => seen.size === 300 && seen.get(`${p}k000`) === 'again');
        await deleteAll(s, [...pairs.slice(0, 250).map((x) => x.key), `${p}missing`]);
        assert.equal((await s.list(p)).kvs.length, 50);
        await waitFor(() => seen.size === 50);
        assert.equal(await putAll(s, []), 0);
      } finally {
        await w.close();
      }
    });

    test('invalid arguments are refused with KVSTORE_INVALID', async () => {
      await assert.rejects(s.put('', 'x'), (e) => isKVStoreError(e, 'KVSTORE_INVALID'));
      await assert.rejects(s.grantLease(0), (e) => isKVStoreError(e, 'KVSTORE_INVALID'));
    });

    test('a closed store refuses calls with KVSTORE_CLOSED', async (tc) => {
      if (!t.reopen) return tc.skip('backend gives no second client');
      const other = await t.reopen();
      await other.put(fresh() + 'x', '1');
      await other.close();
      await assert.rejects(other.get('x'), (e) => isKVStoreError(e, 'KVSTORE_CLOSED'));
    });
  });
}

/** Polls `cond` every 20 ms until true or `timeoutMs` (default 5000) passes. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(20);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kvstoreConformance, waitFor } from './conformance.js';
import { isKVStoreError } from './errors.js';
import { MemoryKVStore } from './memory.js';
import type { WatchEvent } from './types.js';

kvstoreConformance('memory', async () => {
  const store = new MemoryKVStore();
  return {
    store,
    compact: (rev) => store.compact(rev),
    reopen: async () => new MemoryKVStore(),
    teardown: () => store.close(),
  };
});

test('memory: history limit compacts old revisions automatically', async () => {
  const s = new MemoryKVStore({ historyLimit: 10 });
  try {
    const first = await s.put('k', '0');
    for (let i = 1; i < 100; i++) await s.put('k', String(i));
    const err = await new Promise<Error>((resolve) => {
      void s.watchPrefix('k', () => {}, { afterRevision: first, onError: resolve });
    });
    assert.ok(isKVStoreError(err, 'KVSTORE_COMPACTED'));
    assert.ok((err as { compactRevision?: number }).compactRevision! > first);
    // The last 10 revisions are still there.
    const seen: WatchEvent[] = [];
    const w = await s.watchPrefix('k', (ev) => seen.push(ev), { afterRevision: s.revision() - 10 });
    await waitFor(() => seen.length === 10);
    await w.close();
  } finally {
    await s.close();
  }
});

test('memory: a throwing watcher reports through onError and keeps receiving', async () => {
  const s = new MemoryKVStore();
  try {
    const errors: Error[] = [];
    const got: string[] = [];
    const w = await s.watchPrefix(
      '',
      (ev) => {
        if (ev.type === 'put' && ev.kv.value === 'bad') throw new Error('boom');
        if (ev.type === 'put') got.push(ev.kv.value);
      },
      { onError: (e) => errors.push(e) },
    );
    await s.put('a', 'bad');
    await s.put('a', 'good');
    await waitFor(() => got.length === 1);
    assert.equal(errors[0]?.message, 'boom');
    await w.close();
  } finally {
    await s.close();
  }
});

test('memory: a lease from another store is refused', async () => {
  const a = new MemoryKVStore();
  const b = new MemoryKVStore();
  try {
    const lease = await a.grantLease(10);
    await lease.revoke();
    const other = await b.grantLease(10);
    await assert.rejects(a.put('x', 'y', { lease: { ...other, id: 'ffff' } }), (e) =>
      isKVStoreError(e, 'KVSTORE_LEASE_NOT_FOUND'),
    );
    await assert.rejects(a.compact(a.revision() + 5), (e) => isKVStoreError(e, 'KVSTORE_INVALID'));
  } finally {
    await a.close();
    await b.close();
  }
});

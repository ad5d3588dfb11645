/**
 * Bulk writes for the mesh's initial lists (a resync of 10,000 cached
 * entries, a syncer exporting a big cluster). etcd commits once per request,
 * so they go through the kvstore's putAll (src/kvstore/batch.ts): etcd
 * transactions of up to 128 puts when the store has putMany, bounded
 * concurrent puts otherwise.
 */
import { putAll } from '../kvstore/batch.js';
import type { KVStore } from '../kvstore/types.js';

/** Writes many keys; resolves when all are written. Throws on the first failure (some may be written). */
export type BatchWriter = (entries: [string, string][]) => Promise<void>;

/** A BatchWriter over any KVStore (its putMany when it has one). @throws KVStoreError */
export function storeBatchWriter(store: Pick<KVStore, 'put' | 'putMany'>): BatchWriter {
  return async (entries) => {
    await putAll(
      store as KVStore,
      entries.map(([key, value]) => ({ key, value })),
    );
  };
}

/**
 * Writing many keys at once. etcd commits (and fsyncs) once per request, so
 * a resync of 10,000 cached entries written one put at a time is bound by
 * the disk; one transaction of up to 128 puts (etcd's default --max-txn-ops)
 * is one commit. `etcdBatchWriter` does that over an EtcdKVStore's client;
 * `concurrentBatchWriter` is the portable fallback (concurrent puts, which
 * etcd also batches, less well) for any KVStore.
 */
import type { EtcdKVStore } from '../kvstore/etcd.js';
import { wrapError } from '../kvstore/etcd.js';
import type { KVStore } from '../kvstore/types.js';

/** Writes many keys; resolves when all are written. Throws on the first failure (some may be written). */
export type BatchWriter = (entries: [string, string][]) => Promise<void>;

/** Max puts per etcd transaction (etcd's default --max-txn-ops). */
export const MAX_TXN_OPS = 128;

/** Puts in transactions of up to 128 keys, 4 transactions in flight. @throws KVStoreError */
export function etcdBatchWriter(store: EtcdKVStore): BatchWriter {
  return async (entries) => {
    const chunks: [string, string][][] = [];
    for (let i = 0; i < entries.length; i += MAX_TXN_OPS) chunks.push(entries.slice(i, i + MAX_TXN_OPS));
    let next = 0;
    const worker = async () => {
      while (next < chunks.length) {
        const chunk = chunks[next++]!;
        try {
          await store.client.kv.txn({ compare: [], success: chunk.map(([key, value]) => ({ request_put: { key: Buffer.from(key), value: Buffer.from(value) } })), failure: [] });
        } catch (err) {
          throw wrapError(err, store.endpoints, `put ${chunk.length} keys (${chunk[0]![0]} ...)`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(4, chunks.length) }, worker));
  };
}

/** Concurrent single puts (up to 128 in flight), for any KVStore. */
export function concurrentBatchWriter(store: Pick<KVStore, 'put'>): BatchWriter {
  return async (entries) => {
    let next = 0;
    const worker = async () => {
      while (next < entries.length) {
        const [k, v] = entries[next++]!;
        await store.put(k, v);
      }
    };
    await Promise.all(Array.from({ length: Math.min(128, entries.length) }, worker));
  };
}

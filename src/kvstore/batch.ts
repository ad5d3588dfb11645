/**
 * Batch writes over any KVStore: the store's putMany/deleteMany when it has
 * them (etcd: one transaction per 128 operations, so 10,000 keys cost ~80
 * round trips and fsyncs instead of 10,000), else single calls with bounded
 * concurrency.
 */
import type { KVStore, Lease } from './types.js';

/** Largest number of operations in one etcd transaction (etcd's --max-txn-ops default). */
export const MAX_TXN_OPS = 128;
/** Keep one transaction well under etcd's 1.5 MiB request limit. */
export const MAX_TXN_BYTES = 1024 * 1024;

/** Splits pairs into chunks of at most `maxOps` operations and `maxBytes` bytes (a lone big pair gets its own chunk). */
export function chunkPairs<T extends { key: string; value?: string }>(
  pairs: readonly T[],
  maxOps = MAX_TXN_OPS,
  maxBytes = MAX_TXN_BYTES,
): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const p of pairs) {
    const size = p.key.length + (p.value?.length ?? 0) + 16;
    if (cur.length > 0 && (cur.length >= maxOps || bytes + size > maxBytes)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(p);
    bytes += size;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/** Writes every pair; returns the revision of the last write (0 for none). */
export async function putAll(
  store: KVStore,
  pairs: readonly { key: string; value: string }[],
  options: { lease?: Lease; concurrency?: number } = {},
): Promise<number> {
  if (pairs.length === 0) return 0;
  const lease = options.lease ? { lease: options.lease } : {};
  if (store.putMany) return store.putMany(pairs, lease);
  let rev = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(options.concurrency ?? 32, pairs.length) }, async () => {
      while (next < pairs.length) {
        const p = pairs[next++]!;
        rev = Math.max(rev, await store.put(p.key, p.value, lease));
      }
    }),
  );
  return rev;
}

/** Deletes every key. */
export async function deleteAll(
  store: KVStore,
  keys: readonly string[],
  options: { concurrency?: number } = {},
): Promise<void> {
  if (keys.length === 0) return;
  if (store.deleteMany) return store.deleteMany(keys);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(options.concurrency ?? 32, keys.length) }, async () => {
      while (next < keys.length) await store.delete(keys[next++]!);
    }),
  );
}

/**
 * The key-value store the mesh's control plane talks to. Two backends: etcd
 * (v3 API, through the `etcd3` client) and in-memory (tests, and the embedded
 * single-process case). Consumers should depend on the narrowest slice they
 * need (e.g. `Pick<KVStore, 'put' | 'delete'>`), as Cilium's SyncStoreBackend does.
 *
 * Revisions are etcd's: one store-wide counter, bumped by every write.
 */

/** One stored key. */
export interface KVPair {
  key: string;
  value: string;
  /** Revision of the write that created the key. */
  createRevision: number;
  /** Revision of the last write to the key. */
  modRevision: number;
  /** Lease the key is bound to (hex string), if any. */
  lease?: string;
}

/** A change seen by a watcher, in revision order. */
export type WatchEvent =
  | { type: 'put'; kv: KVPair; prev?: KVPair }
  | { type: 'delete'; key: string; modRevision: number; prev?: KVPair };

/** A running watch; `close()` stops it. */
export interface Watch {
  close(): Promise<void>;
}

/** A lease: keys put with it vanish when it expires or is revoked. */
export interface Lease {
  id: string;
  ttlSeconds: number;
  /** Stops keep-alives and deletes every key bound to the lease. */
  revoke(): Promise<void>;
}

export interface WatchOptions {
  /** Deliver every change after this revision (exclusive); default: from now. */
  afterRevision?: number;
  /**
   * Also deliver each event's previous value (`prev`); default false. etcd
   * answers it with a read per event on the server (etcd 3.4: a copy of its
   * uncommitted write buffer per read), which under 500 writes/s was most
   * of a mesh etcd's CPU: ask only when the old value is used.
   */
  prevKV?: boolean;
  /**
   * Called when the watch breaks for good (e.g. compacted revision: a
   * KVStoreError with code KVSTORE_COMPACTED); it will not resume by itself.
   * Also called (without ending the watch) when onEvent throws.
   */
  onError?: (err: Error) => void;
  /**
   * Called when the connection under the watch is lost; the watch resumes by
   * itself from the last delivered revision (nothing is skipped or repeated).
   * Only the etcd backend ever calls it.
   */
  onDisconnect?: (err: Error) => void;
  /** Called when a lost watch is re-established. */
  onReconnect?: () => void;
}

export interface LeaseOptions {
  /**
   * Keep the lease alive until revoked or the store is closed (default true).
   * With false, the lease expires `ttlSeconds` after the grant and its keys vanish.
   */
  keepAlive?: boolean;
  /** Called if a kept-alive lease is lost (keep-alives failed past its TTL). */
  onLost?: (err: Error) => void;
}

export interface KVStore {
  get(key: string): Promise<KVPair | undefined>;
  /** All keys under the prefix, with the store revision the list was read at. */
  list(prefix: string): Promise<{ kvs: KVPair[]; revision: number }>;
  /** Writes the key; returns the revision of the write. */
  put(key: string, value: string, options?: { lease?: Lease }): Promise<number>;
  /** Writes the key only if absent; returns false if it existed. */
  create(key: string, value: string, options?: { lease?: Lease }): Promise<boolean>;
  delete(key: string): Promise<void>;
  deletePrefix(prefix: string): Promise<void>;
  /** Calls onEvent for every change under the prefix, in order. */
  watchPrefix(
    prefix: string,
    onEvent: (ev: WatchEvent) => void,
    options?: WatchOptions,
  ): Promise<Watch>;
  /**
   * Optional batch write: puts every pair in as few round trips as the store
   * allows (etcd: transactions of up to 128 operations). Each transaction is
   * atomic, the batch as a whole is not. Returns the revision of the last
   * write. Use `putAll` (batch.ts), which falls back to single puts.
   */
  putMany?(
    pairs: readonly { key: string; value: string }[],
    options?: { lease?: Lease },
  ): Promise<number>;
  /** Optional batch delete, like putMany. Use `deleteAll` (batch.ts). */
  deleteMany?(keys: readonly string[]): Promise<void>;
  /** Grants a lease that the store keeps alive until revoked or closed (see LeaseOptions). */
  grantLease(ttlSeconds: number, options?: LeaseOptions): Promise<Lease>;
  close(): Promise<void>;
}

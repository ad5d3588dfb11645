/**
 * An in-memory KVStore with etcd's semantics, for tests and the embedded
 * single-process case:
 *
 * - one store-wide revision, bumped once per write (a deletePrefix or a lease
 *   expiry that removes many keys is one revision, as an etcd txn is);
 * - every key has a createRevision and a modRevision; deleting a missing key
 *   writes nothing;
 * - watches deliver events asynchronously, in revision order, and may start
 *   from an old revision: the store keeps an event history back to its
 *   compaction point, and a watch from before it fails with KVSTORE_COMPACTED;
 * - leases: keys bound to a lease vanish when it is revoked or expires (a
 *   lease granted with keepAlive false expires after its TTL).
 */
import { chunkPairs } from './batch.js';
import { KVStoreError } from './errors.js';
import type {
  KVPair,
  KVStore,
  Lease,
  LeaseOptions,
  Watch,
  WatchEvent,
  WatchOptions,
} from './types.js';

export interface MemoryKVStoreOptions {
  /**
   * Keep at most this many history events for watches from old revisions;
   * older ones are compacted automatically. Default 100000.
   */
  historyLimit?: number;
}

interface MemLease {
  id: string;
  ttlSeconds: number;
  keys: Set<string>;
  timer: NodeJS.Timeout | undefined;
}

interface MemWatch {
  prefix: string;
  onEvent: (ev: WatchEvent) => void;
  options: WatchOptions;
  queue: WatchEvent[];
  scheduled: boolean;
  closed: boolean;
  /** Events at or below this revision are not delivered (a watch from a future revision). */
  after: number;
}

/** The in-memory KVStore. Also exposes `revision()` and `compact()` for tests. */
export class MemoryKVStore implements KVStore {
  private readonly data = new Map<string, KVPair>();
  private readonly history: { revision: number; ev: WatchEvent }[] = [];
  private readonly watches = new Set<MemWatch>();
  private readonly leases = new Map<string, MemLease>();
  private rev = 1; // etcd starts at revision 1 with an empty store
  private compactedAt = 0;
  private nextLease = 0x7a00;
  private closed = false;
  private readonly historyLimit: number;

  constructor(options: MemoryKVStoreOptions = {}) {
    this.historyLimit = options.historyLimit ?? 100_000;
  }

  /** The store's current revision (that of the last write). */
  revision(): number {
    return this.rev;
  }

  /**
   * Drops history up to and including `revision` (like etcd's compact): a watch
   * with afterRevision < revision then fails with KVSTORE_COMPACTED.
   * @throws KVStoreError KVSTORE_INVALID if the revision is in the future.
   */
  async compact(revision: number): Promise<void> {
    this.check();
    if (revision > this.rev) {
      throw new KVStoreError(
        'KVSTORE_INVALID',
        `compact to revision ${revision}: the store is only at ${this.rev}`,
      );
    }
    this.compactTo(revision);
  }

  async get(key: string): Promise<KVPair | undefined> {
    this.check();
    const kv = this.data.get(key);
    return kv ? { ...kv } : undefined;
  }

  async list(prefix: string): Promise<{ kvs: KVPair[]; revision: number }> {
    this.check();
    const kvs: KVPair[] = [];
    for (const [k, kv] of this.data) if (k.startsWith(prefix)) kvs.push({ ...kv });
    kvs.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { kvs, revision: this.rev };
  }

  async put(key: string, value: string, options: { lease?: Lease } = {}): Promise<number> {
    this.check();
    checkKey(key);
    const lease = this.leaseFor(options.lease);
    return this.write(key, value, lease);
  }

  async create(key: string, value: string, options: { lease?: Lease } = {}): Promise<boolean> {
    this.check();
    checkKey(key);
    const lease = this.leaseFor(options.lease);
    if (this.data.has(key)) return false;
    this.write(key, value, lease);
    return true;
  }

  /** Each chunk of up to 128 pairs is one revision, as an etcd transaction would be. */
  async putMany(
    pairs: readonly { key: string; value: string }[],
    options: { lease?: Lease } = {},
  ): Promise<number> {
    this.check();
    for (const p of pairs) checkKey(p.key);
    const lease = this.leaseFor(options.lease);
    const last = new Map<string, string>();
    for (const p of pairs) {
      last.delete(p.key);
      last.set(p.key, p.value);
    }
    for (const chunk of chunkPairs([...last].map(([key, value]) => ({ key, value }))))
      this.writeMany(chunk, lease);
    return this.rev;
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    this.check();
    for (const chunk of chunkPairs([...new Set(keys)].map((key) => ({ key })))) {
      const present = chunk.map((c) => c.key).filter((k) => this.data.has(k));
      if (present.length > 0) this.removeKeys(present);
    }
  }

  async delete(key: string): Promise<void> {
    this.check();
    if (!this.data.has(key)) return;
    this.removeKeys([key]);
  }

  async deletePrefix(prefix: string): Promise<void> {
    this.check();
    const keys = [...this.data.keys()].filter((k) => k.startsWith(prefix));
    if (keys.length > 0) this.removeKeys(keys);
  }

  async watchPrefix(
    prefix: string,
    onEvent: (ev: WatchEvent) => void,
    options: WatchOptions = {},
  ): Promise<Watch> {
    this.check();
    const w: MemWatch = {
      prefix,
      // as etcd: the previous value only when asked for
      onEvent: options.prevKV
        ? onEvent
        : (ev) => {
            if (!ev.prev) return onEvent(ev);
            const { prev: _prev, ...rest } = ev;
            onEvent(rest as WatchEvent);
          },
      options,
      queue: [],
      scheduled: false,
      closed: false,
      after: options.afterRevision ?? 0,
    };
    const after = options.afterRevision;
    if (after !== undefined && after < this.rev) {
      if (after < this.compactedAt) {
        const err = new KVStoreError(
          'KVSTORE_COMPACTED',
          `watch ${JSON.stringify(prefix)} from revision ${after + 1}: the store is compacted up to revision ${this.compactedAt}`,
          {
            hint: 'list the prefix again and watch from the revision the list returns',
            compactRevision: this.compactedAt,
          },
        );
        queueMicrotask(() => options.onError?.(err));
        return { close: async () => {} };
      }
      for (const h of this.history) {
        if (h.revision > after && keyOf(h.ev).startsWith(prefix)) w.queue.push(h.ev);
      }
    }
    this.watches.add(w);
    this.schedule(w);
    return {
      close: async () => {
        w.closed = true;
        this.watches.delete(w);
      },
    };
  }

  async grantLease(ttlSeconds: number, options: LeaseOptions = {}): Promise<Lease> {
    this.check();
    if (!Number.isFinite(ttlSeconds) || ttlSeconds < 1) {
      throw new KVStoreError(
        'KVSTORE_INVALID',
        `grant lease: TTL ${ttlSeconds}s is not a whole number of seconds >= 1`,
      );
    }
    const id = (this.nextLease++).toString(16);
    const ml: MemLease = { id, ttlSeconds, keys: new Set(), timer: undefined };
    if (options.keepAlive === false) {
      ml.timer = setTimeout(() => this.endLease(id), ttlSeconds * 1000);
      ml.timer.unref();
    }
    this.leases.set(id, ml);
    return {
      id,
      ttlSeconds,
      revoke: async () => {
        this.check();
        this.endLease(id);
      },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const l of this.leases.values()) if (l.timer) clearTimeout(l.timer);
    this.leases.clear();
    for (const w of this.watches) w.closed = true;
    this.watches.clear();
  }

  // --- internals ---

  private check(): void {
    if (this.closed)
      throw new KVStoreError('KVSTORE_CLOSED', 'in-memory kvstore: the store is closed');
  }

  private leaseFor(lease: Lease | undefined): MemLease | undefined {
    if (!lease) return undefined;
    const ml = this.leases.get(lease.id);
    if (!ml) {
      throw new KVStoreError(
        'KVSTORE_LEASE_NOT_FOUND',
        `lease ${lease.id} not found: it expired, was revoked, or belongs to another store`,
        {
          hint: 'grant a new lease and write the keys again',
        },
      );
    }
    return ml;
  }

  private write(key: string, value: string, lease: MemLease | undefined): number {
    this.rev++;
    this.writeAt(key, value, lease);
    return this.rev;
  }

  /** Several writes in one revision (later pairs for the same key win, as in an etcd txn they may not repeat). */
  private writeMany(
    pairs: readonly { key: string; value: string }[],
    lease: MemLease | undefined,
  ): void {
    this.rev++;
    for (const p of pairs) this.writeAt(p.key, p.value, lease);
  }

  private writeAt(key: string, value: string, lease: MemLease | undefined): void {
    const prev = this.data.get(key);
    const kv: KVPair = {
      key,
      value,
      createRevision: prev ? prev.createRevision : this.rev,
      modRevision: this.rev,
    };
    if (lease) kv.lease = lease.id;
    if (prev?.lease && prev.lease !== lease?.id) this.leases.get(prev.lease)?.keys.delete(key);
    if (lease) lease.keys.add(key);
    this.data.set(key, kv);
    const ev: WatchEvent = prev
      ? { type: 'put', kv: { ...kv }, prev: { ...prev } }
      : { type: 'put', kv: { ...kv } };
    this.emit(ev);
  }

  private removeKeys(keys: string[]): void {
    this.rev++;
    for (const key of keys) {
      const prev = this.data.get(key);
      if (!prev) continue;
      this.data.delete(key);
      if (prev.lease) this.leases.get(prev.lease)?.keys.delete(key);
      this.emit({ type: 'delete', key, modRevision: this.rev, prev: { ...prev } });
    }
  }

  private endLease(id: string): void {
    const ml = this.leases.get(id);
    if (!ml) return;
    if (ml.timer) clearTimeout(ml.timer);
    this.leases.delete(id);
    if (!this.closed && ml.keys.size > 0) this.removeKeys([...ml.keys].sort());
  }

  private emit(ev: WatchEvent): void {
    this.history.push({ revision: this.rev, ev });
    if (this.history.length > this.historyLimit + Math.max(16, this.historyLimit >> 4)) {
      // Compact whole revisions only, so a watch never sees half a revision.
      const cut = this.history[this.history.length - this.historyLimit]!.revision - 1;
      this.compactTo(cut);
    }
    for (const w of this.watches) {
      if (this.rev > w.after && keyOf(ev).startsWith(w.prefix)) {
        w.queue.push(ev);
        this.schedule(w);
      }
    }
  }

  private compactTo(revision: number): void {
    if (revision <= this.compactedAt) return;
    this.compactedAt = revision;
    let n = 0;
    while (n < this.history.length && this.history[n]!.revision <= revision) n++;
    this.history.splice(0, n);
  }

  private schedule(w: MemWatch): void {
    if (w.scheduled || w.queue.length === 0) return;
    w.scheduled = true;
    queueMicrotask(() => {
      w.scheduled = false;
      const batch = w.queue;
      w.queue = [];
      for (const ev of batch) {
        if (w.closed) return;
        try {
          w.onEvent(ev);
        } catch (err) {
          w.options.onError?.(err instanceof Error ? err : new Error(String(err)));
        }
      }
    });
  }
}

function keyOf(ev: WatchEvent): string {
  return ev.type === 'put' ? ev.kv.key : ev.key;
}

function checkKey(key: string): void {
  if (key.length === 0) throw new KVStoreError('KVSTORE_INVALID', 'write: the key is empty');
}

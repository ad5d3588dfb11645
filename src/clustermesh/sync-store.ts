/**
 * A desired-state writer for one key prefix of the local etcd (Cilium's
 * SyncStore): callers upsert/remove entries; a single flush loop writes
 * them, skipping unchanged values and retrying failed writes with backoff.
 * `markSynced()` (after the source's initial list) deletes keys under the
 * prefix that are not desired — leftovers of an earlier run — and then writes
 * the synced canary, so a reader that sees the canary sees a complete list.
 */
import type { KVStore } from '../kvstore/types.js';
import { nopLogger, type Logger } from '../util/log.js';
import { encodeTimestamp } from './keys.js';
import type { BatchWriter } from './batch-writer.js';

/** The slice of KVStore a SyncStore needs. */
export type SyncStoreBackend = Pick<KVStore, 'put' | 'delete' | 'list'>;

export interface SyncStoreOptions {
  backend: SyncStoreBackend;
  /** Keys written must start with it (with trailing slash). */
  prefix: string;
  /** The synced canary key to write once the initial list is written. */
  canaryKey: string;
  /** Writes many puts at once (e.g. etcd transactions); default one put at a time. */
  batchWriter?: BatchWriter;
  logger?: Logger;
  /** Retry backoff (default 100 ms doubling to 5 s). */
  retryMinMs?: number;
  retryMaxMs?: number;
}

export class SyncStore {
  private readonly desired = new Map<string, string>();
  /** What we know is in etcd. */
  private readonly written = new Map<string, string>();
  private readonly dirty = new Set<string>();
  private syncedRequested = false;
  private syncedDone = false;
  private scanned = false;
  private flushing: Promise<void> | undefined;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private delay: number;
  private readonly log: Logger;
  /** The last write error (cleared by a successful flush). */
  lastError: Error | undefined;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly opts: SyncStoreOptions) {
    this.delay = opts.retryMinMs ?? 100;
    this.log = (opts.logger ?? nopLogger).child({ prefix: opts.prefix });
  }

  /** Desired entries count. */
  get size(): number {
    return this.desired.size;
  }

  /** True once the canary has been written. */
  get synced(): boolean {
    return this.syncedDone;
  }

  upsert(key: string, value: string): void {
    if (!key.startsWith(this.opts.prefix))
      throw new Error(`key ${key} is outside ${this.opts.prefix}`);
    if (this.desired.get(key) === value) return;
    this.desired.set(key, value);
    this.dirty.add(key);
    this.kick();
  }

  remove(key: string): void {
    if (!this.desired.has(key) && !this.written.has(key) && this.syncedDone) return;
    this.desired.delete(key);
    this.dirty.add(key);
    this.kick();
  }

  /** Makes the desired set exactly `entries` (keys not given are removed). */
  replaceAll(entries: Map<string, string>): void {
    for (const k of [...this.desired.keys()]) if (!entries.has(k)) this.remove(k);
    for (const [k, v] of entries) this.upsert(k, v);
  }

  /** The source's initial list is complete: clean up leftovers, then write the canary. */
  markSynced(): void {
    this.syncedRequested = true;
    this.kick();
  }

  /** Resolves when nothing is pending (for tests and shutdown). */
  async idle(): Promise<void> {
    if (this.isIdle()) return;
    await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
  }

  private isIdle(): boolean {
    return (
      this.dirty.size === 0 &&
      (!this.syncedRequested || this.syncedDone) &&
      !this.flushing &&
      this.retryTimer === undefined
    );
  }

  private kick(): void {
    if (this.stopped || this.flushing || this.retryTimer) return;
    this.flushing = this.flush().finally(() => {
      this.flushing = undefined;
      if (this.dirty.size > 0 || (this.syncedRequested && !this.syncedDone)) {
        if (this.retryTimer === undefined && this.lastError === undefined) this.kick();
      }
      if (this.isIdle()) for (const w of this.idleWaiters.splice(0)) w();
    });
  }

  private async flush(): Promise<void> {
    try {
      if (this.syncedRequested && !this.scanned) {
        // First flush after the initial list: learn what an earlier run left in etcd.
        const { kvs } = await this.opts.backend.list(this.opts.prefix);
        for (const kv of kvs) {
          this.written.set(kv.key, kv.value);
          if (!this.desired.has(kv.key)) this.dirty.add(kv.key);
        }
        this.scanned = true;
      }
      while (this.dirty.size > 0 && !this.stopped) {
        // Up to 1024 keys per round: puts go through the batch writer (one etcd commit per 128), deletes one by one.
        const keys: string[] = [];
        for (const k of this.dirty) {
          keys.push(k);
          if (keys.length >= 1024) break;
        }
        for (const k of keys) this.dirty.delete(k);
        const puts: [string, string][] = [];
        const dels: string[] = [];
        for (const key of keys) {
          const want = this.desired.get(key);
          if (want === undefined) {
            if (this.written.has(key) || !this.syncedDone) dels.push(key);
          } else if (this.written.get(key) !== want) {
            puts.push([key, want]);
          }
        }
        try {
          if (puts.length > 1 && this.opts.batchWriter) {
            await this.opts.batchWriter(puts);
          } else {
            for (const [k, v] of puts) await this.opts.backend.put(k, v);
          }
          for (const [k, v] of puts) this.written.set(k, v);
          for (const k of dels) {
            await this.opts.backend.delete(k);
            this.written.delete(k);
          }
        } catch (err) {
          // Retry every key of the round whose state is not known to be written.
          for (const k of keys) if (this.written.get(k) !== this.desired.get(k)) this.dirty.add(k);
          throw err;
        }
      }
      if (this.syncedRequested && !this.syncedDone && this.dirty.size === 0 && !this.stopped) {
        await this.opts.backend.put(this.opts.canaryKey, encodeTimestamp());
        this.syncedDone = true;
        this.log.debug('initial list written; synced canary set', { entries: this.desired.size });
      }
      this.lastError = undefined;
      this.delay = this.opts.retryMinMs ?? 100;
    } catch (err) {
      this.lastError = err as Error;
      this.log.warn('write to etcd failed; retrying', { error: err, retryInMs: this.delay });
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.lastError = undefined;
        this.kick();
      }, this.delay);
      this.delay = Math.min(this.delay * 2, this.opts.retryMaxMs ?? 5000);
    }
  }
}

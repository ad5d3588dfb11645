/**
 * A desired-state reconciler: the agent sets what should exist (keyed values),
 * the reconciler makes the datapath match, one key at a time, retrying failed
 * keys with exponential backoff. A transient kernel error never reaches the
 * source of the state. Entries found in the kernel at start (adopted) are only
 * removed after `synced()` says the sources have delivered their full initial
 * state, so an agent restart never tears down a live service or route.
 * With `hold`, adopted entries that belong to remote clusters wait longer: for
 * `remoteSynced()` (the mesh source's first sync), so an agent restarted while
 * the mesh store is unreachable keeps cross-cluster routes, ipcache entries
 * and remote backends until the mesh answers again.
 */
import type { Logger } from '../util/log.js';
import { nopLogger } from '../util/log.js';
import type { ReconcilerStatus } from './api/types.js';

export interface ReconcilerOps<V> {
  upsert(value: V): Promise<void>;
  delete(key: string, last: V): Promise<void>;
}

export interface ReconcilerOptions<V> {
  name: string;
  keyOf: (value: V) => string;
  ops: ReconcilerOps<V>;
  /** Values are compared with this to skip no-op upserts (default: JSON equality). */
  equal?: (a: V, b: V) => boolean;
  logger?: Logger;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Adopted remote-cluster state kept until `remoteSynced()` (see the class comment). */
  hold?: ReconcilerHold<V>;
  /**
   * Applies many changes in one call (e.g. routes through one iproute2
   * process) instead of `ops` one key at a time; resolves with the keys that
   * failed (retried with backoff), the others count as applied. A lone change
   * is still applied at once: everything dirty when a run starts goes in one
   * call, and what changes meanwhile goes in the next.
   */
  applyMany?: (
    upserts: V[],
    deletes: Array<{ key: string; last: V }>,
  ) => Promise<Map<string, unknown>>;
  /** Most keys per applyMany call (default 4096). */
  maxBatch?: number;
}

/** Which adopted entries are remote, and how to keep their remote parts in a desired value. */
export interface ReconcilerHold<V> {
  /** True when an adopted entry belongs to a remote cluster (kept until remoteSynced). */
  isRemote(adopted: V): boolean;
  /** While held: the desired value plus the adopted value's remote parts (e.g. remote backends). */
  merge?(desired: V, adopted: V): V;
}

const jsonEqual = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Keeps a datapath table equal to a desired set. */
export class Reconciler<V> {
  private readonly desired = new Map<string, V>();
  private readonly applied = new Map<string, V>();
  private readonly dirty = new Set<string>();
  private isSynced = false;
  /** False while adopted remote entries are held (only with `hold`). */
  private isRemoteSynced: boolean;
  /** Adopted values, by key, for `hold.merge` (dropped once remote-synced). */
  private readonly adoptedValues = new Map<string, V>();
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private backoff: number;
  private lastError: string | undefined;
  private stopped = false;
  private idleWaiters: Array<() => void> = [];
  private readonly log: Logger;

  constructor(private readonly o: ReconcilerOptions<V>) {
    this.backoff = o.minBackoffMs ?? 50;
    this.isRemoteSynced = o.hold === undefined;
    this.log = (o.logger ?? nopLogger).child({ reconciler: o.name });
  }

  /** Records entries already present in the datapath (e.g. pinned maps after a restart). */
  adopt(values: V[]): void {
    for (const v of values) {
      const k = this.o.keyOf(v);
      this.applied.set(k, v);
      if (!this.isRemoteSynced) this.adoptedValues.set(k, v);
      if (!this.desired.has(k)) {
        this.adoptedOnly.add(k);
        this.dirty.add(k);
      }
    }
  }

  /** Wants `value` to exist. */
  set(value: V): void {
    const k = this.o.keyOf(value);
    const cur = this.desired.get(k);
    if (cur !== undefined && (this.o.equal ?? jsonEqual)(cur, value)) return;
    this.desired.set(k, value);
    if (this.adoptedOnly.size > 0) this.adoptedOnly.delete(k);
    this.mark(k);
  }

  /** Wants the key gone. */
  remove(key: string): void {
    if (!this.desired.delete(key) && !this.applied.has(key)) return;
    this.mark(key);
  }

  /** Replaces the whole desired set: keys not in `values` are removed. */
  replaceAll(values: V[]): void {
    const keep = new Set<string>();
    for (const v of values) {
      keep.add(this.o.keyOf(v));
      this.set(v);
    }
    for (const k of [...this.desired.keys()]) if (!keep.has(k)) this.remove(k);
  }

  /** The sources delivered their initial state: adopted leftovers may now be removed. */
  synced(): void {
    if (this.isSynced) return;
    this.isSynced = true;
    for (const k of this.applied.keys()) if (!this.desired.has(k)) this.dirty.add(k);
    this.kick();
  }

  /** The remote sources (the mesh) delivered their initial state: held remote leftovers may go. */
  remoteSynced(): void {
    if (this.isRemoteSynced) return;
    this.isRemoteSynced = true;
    // Merged values lose their adopted remote parts; unheld leftovers are removed.
    for (const k of this.adoptedValues.keys()) this.dirty.add(k);
    this.adoptedValues.clear();
    this.kick();
  }

  /** The value to apply for `k`: the desired one, merged with held adopted remote parts. */
  private target(k: string): V | undefined {
    const want = this.desired.get(k);
    const adopted = this.adoptedValues.get(k);
    if (want === undefined || adopted === undefined || !this.o.hold?.merge) return want;
    return this.o.hold.merge(want, adopted);
  }

  /** The desired values. */
  values(): V[] {
    return [...this.desired.values()];
  }

  get(key: string): V | undefined {
    return this.desired.get(key);
  }

  status(): ReconcilerStatus {
    return {
      name: this.o.name,
      desired: this.desired.size,
      applied: this.applied.size,
      pending: this.dirty.size,
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  /** Resolves when nothing is pending (or failing keys wait for retry). */
  whenIdle(): Promise<void> {
    if (this.dirty.size === 0 && !this.running) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private mark(k: string): void {
    this.dirty.add(k);
    this.kick();
  }

  /** A run is queued (one microtask for a burst of changes, not one per change). */
  private kicked = false;

  private kick(): void {
    if (this.running || this.timer || this.stopped || this.kicked) return;
    this.kicked = true;
    queueMicrotask(() => {
      this.kicked = false;
      void this.run();
    });
  }

  private async run(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    let failed = false;
    const failedKeys = new Set<string>();
    try {
      while (this.dirty.size > 0 && !this.stopped) {
        if (this.o.applyMany) {
          // keys that failed in this run wait for the retry; the others go on in further batches
          const r = await this.runMany(this.o.applyMany, failedKeys);
          failed ||= r.failed;
          if (r.visited === 0) break;
          continue;
        }
        const batch = [...this.dirty];
        let progressed = false;
        for (const k of batch) {
          const desired = this.desired.get(k);
          const want = this.target(k);
          const have = this.applied.get(k);
          try {
            if (want !== undefined) {
              if (have === undefined || !(this.o.equal ?? jsonEqual)(want, have))
                await this.o.ops.upsert(want);
              this.applied.set(k, want);
            } else if (have !== undefined) {
              if (
                this.adoptedOnly.has(k) &&
                (!this.isSynced || (!this.isRemoteSynced && this.o.hold!.isRemote(have)))
              ) {
                // adopted entry: keep it until the sources (for a remote one: the mesh) are synced
                this.dirty.delete(k);
                continue;
              }
              await this.o.ops.delete(k, have);
              this.applied.delete(k);
              this.adoptedOnly.delete(k);
            }
            // only clear if nothing changed while we were working on it
            if (this.desired.get(k) === desired) this.dirty.delete(k);
            progressed = true;
          } catch (err) {
            failed = true;
            this.lastError = `${k}: ${(err as Error).message}`;
            this.log.warn('reconcile failed, will retry', {
              key: k,
              error: err,
              retryInMs: this.backoff,
            });
          }
        }
        if (failed || !progressed) break;
      }
    } finally {
      this.running = false;
    }
    if (failed && !this.stopped) {
      const delay = this.backoff;
      this.backoff = Math.min(this.backoff * 2, this.o.maxBackoffMs ?? 10_000);
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.run();
      }, delay);
    } else {
      if (!failed) {
        this.backoff = this.o.minBackoffMs ?? 50;
        this.lastError = undefined;
      }
      if (this.dirty.size > 0 && !this.stopped) this.kick();
    }
    if (this.dirty.size === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** One applyMany call for up to maxBatch dirty keys (the batch form of run's loop body). */
  private async runMany(
    applyMany: NonNullable<ReconcilerOptions<V>['applyMany']>,
    skip: Set<string>,
  ): Promise<{ failed: boolean; visited: number }> {
    const max = this.o.maxBatch ?? 4096;
    const upserts: V[] = [];
    const deletes: Array<{ key: string; last: V }> = [];
    // the keys worked on, each with its desired value at the start and the value being
    // applied (undefined: a delete): parallel arrays, not an object per key (250,000 keys)
    const keys: string[] = [];
    const desireds: Array<V | undefined> = [];
    const wants: Array<V | undefined> = [];
    const equal = this.o.equal ?? jsonEqual;
    let visited = 0;
    // the Set itself, not a copy: a batch of maxBatch keys costs O(maxBatch), not O(dirty)
    // (deleting the visited key while iterating a Set is safe)
    for (const k of this.dirty) {
      if (visited >= max) break;
      if (skip.size > 0 && skip.has(k)) continue;
      visited++;
      const desired = this.desired.get(k);
      const want = this.adoptedValues.size > 0 ? this.target(k) : desired;
      const have = this.applied.get(k);
      if (want !== undefined) {
        if (have === undefined || !equal(want, have)) upserts.push(want);
        keys.push(k);
        desireds.push(desired);
        wants.push(want);
      } else if (have !== undefined) {
        if (
          this.adoptedOnly.has(k) &&
          (!this.isSynced || (!this.isRemoteSynced && this.o.hold!.isRemote(have)))
        ) {
          this.dirty.delete(k); // adopted entry: kept until the sources are synced
          continue;
        }
        deletes.push({ key: k, last: have });
        keys.push(k);
        desireds.push(desired);
        wants.push(undefined);
      } else this.dirty.delete(k);
    }
    let errors: Map<string, unknown>;
    try {
      errors = upserts.length || deletes.length ? await applyMany(upserts, deletes) : new Map();
    } catch (err) {
      errors = new Map(keys.map((k) => [k, err]));
    }
    let failures = 0;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      const want = wants[i];
      const err = errors.size > 0 ? errors.get(k) : undefined;
      if (err !== undefined) {
        if (failures++ === 0) {
          this.lastError = `${k}: ${err instanceof Error ? err.message : String(err)}`;
          this.log.warn('reconcile failed, will retry', {
            key: k,
            error: err,
            failedInBatch: keys.filter((x) => errors.has(x)).length,
            retryInMs: this.backoff,
          });
        }
        skip.add(k);
        continue;
      }
      if (want !== undefined) this.applied.set(k, want);
      else {
        this.applied.delete(k);
        this.adoptedOnly.delete(k);
      }
      if (this.desired.get(k) === desireds[i]) this.dirty.delete(k);
    }
    return { failed: failures > 0, visited };
  }

  private readonly adoptedOnly = new Set<string>();
}

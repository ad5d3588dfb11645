/**
 * The identity allocator: label set -> numeric security identity, over an
 * IdentityBackend (kvstore or CRD). As in Cilium's operator:
 *
 * - a label set that is one reserved label gets its reserved identity;
 * - any other label set gets a cluster-local identity (clusterID << 16 | n,
 *   n in 256..65535), the same one for as long as it exists anywhere;
 * - the allocator counts references (allocate +1, release -1); an identity
 *   whose count is 0 and that the caller does not report in use is deleted by
 *   `gc()` once it has been unused for the grace period, so a pod restarting
 *   within the grace period keeps its identity.
 *
 * Concurrent calls for one label set are serialized; different label sets
 * allocate in parallel. Atomicity across processes is the backend's job.
 */
import { TendrilError } from '../util/errors.js';
import { nopLogger, type Logger } from '../util/log.js';
import type { IdentityBackend, IdentityRecord } from './backend.js';
import { labelsString, makeLabels, parseLabels, type Labels } from './labels.js';
import {
  clusterIdentity,
  isClusterIdentity,
  currentIdentityLayout,
  MIN_LOCAL_INDEX,
  reservedIdentityOf,
  validateClusterId,
} from './numeric.js';

export interface IdentityAllocatorOptions {
  /** This cluster's ID (1..255); goes into bits 16-23 of every identity allocated. */
  clusterId: number;
  /** Unused identities are deleted by gc() only after this long (default 15 minutes). */
  gcGracePeriodMs?: number;
  /** Local index range (default 256..65535); narrower ranges are for tests. */
  minIndex?: number;
  maxIndex?: number;
  /** Clock (ms), for tests. */
  now?: () => number;
  logger?: Logger;
}

/** Result of allocate(). */
export interface AllocatedIdentity {
  id: number;
  /** Canonical label string. */
  labels: string;
  /** True if this call created the identity in the backend. */
  isNew: boolean;
}

/** Result of gc(). */
export interface GCResult {
  /** Identities deleted by this run. */
  released: IdentityRecord[];
  /** Identities unused but still within their grace period. */
  pending: number;
}

/** The allocator. One per cluster (the operator's), or one per process in kvstore mode. */
export class IdentityAllocator {
  readonly clusterId: number;
  private readonly backend: IdentityBackend;
  private readonly grace: number;
  private readonly minIndex: number;
  private readonly maxIndex: number;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly refs = new Map<number, number>();
  private readonly idByLabels = new Map<string, number>();
  private readonly unusedSince = new Map<number, number>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly trying = new Set<number>();
  private taken: Set<number> | undefined;
  private cursor: number;

  /** @throws IdentityError for a bad cluster ID or index range. */
  constructor(backend: IdentityBackend, options: IdentityAllocatorOptions) {
    this.backend = backend;
    this.clusterId = validateClusterId(options.clusterId);
    this.grace = options.gcGracePeriodMs ?? 15 * 60_000;
    this.minIndex = options.minIndex ?? MIN_LOCAL_INDEX;
    // 65535, or 32767 with max-connected-clusters=511 (the process's identity layout)
    this.maxIndex = options.maxIndex ?? currentIdentityLayout().maxLocalIndex;
    clusterIdentity(this.clusterId, this.minIndex);
    clusterIdentity(this.clusterId, this.maxIndex);
    this.cursor = this.minIndex;
    this.now = options.now ?? Date.now;
    this.log = (options.logger ?? nopLogger).child({ subsys: 'identity-allocator' });
  }

  /**
   * Returns the identity of `labels`, allocating one if the label set has
   * none yet, and counts a reference to it.
   * @throws LabelError for bad labels; TendrilError IDENTITY_EXHAUSTED when no index is free; backend errors.
   */
  async allocate(labels: Labels | string): Promise<AllocatedIdentity> {
    const set = toLabels(labels);
    const canon = labelsString(set);
    if (set.length === 0) {
      throw new TendrilError(
        'IDENTITY_INVALID_LABELS',
        'allocate identity: the label set is empty',
        { hint: 'an endpoint without labels gets the reserved init identity (reserved:init)' },
      );
    }
    const reserved = reservedIdentityOf(set);
    if (reserved !== undefined) return { id: reserved, labels: canon, isNew: false };
    return this.withLock(canon, async () => {
      const cached = this.idByLabels.get(canon);
      if (cached !== undefined && (this.refs.get(cached) ?? 0) > 0) {
        this.ref(cached, +1);
        return { id: cached, labels: canon, isNew: false };
      }
      const res = await this.allocateInBackend(canon);
      this.idByLabels.set(canon, res.id);
      this.ref(res.id, +1);
      if (res.isNew) this.log.debug('allocated identity', { id: res.id, labels: canon });
      return res;
    });
  }

  /**
   * Drops one reference. At zero the identity stays in the backend until
   * gc() finds it unused past the grace period. Returns the identity and
   * the remaining count, or undefined if this allocator held no reference.
   */
  async release(labels: Labels | string): Promise<{ id: number; refs: number } | undefined> {
    const set = toLabels(labels);
    const canon = labelsString(set);
    if (reservedIdentityOf(set) !== undefined) return undefined;
    return this.withLock(canon, async () => {
      const id = this.idByLabels.get(canon);
      if (id === undefined || (this.refs.get(id) ?? 0) === 0) return undefined;
      const left = this.ref(id, -1);
      return { id, refs: left };
    });
  }

  /** The number of references this allocator holds to `id`. */
  refCount(id: number): number {
    return this.refs.get(id) ?? 0;
  }

  /** The identity of a label set, if it has one (reserved ones included); allocates nothing. */
  async lookup(labels: Labels | string): Promise<number | undefined> {
    const set = toLabels(labels);
    const reserved = reservedIdentityOf(set);
    if (reserved !== undefined) return reserved;
    return this.backend.lookup(labelsString(set));
  }

  /** The labels of an identity (from the backend), if it exists. */
  async lookupById(id: number): Promise<Labels | undefined> {
    const s = await this.backend.get(id);
    return s === undefined ? undefined : parseLabels(s);
  }

  /** Every identity in the backend (of all clusters, if the backend holds others). */
  async list(): Promise<IdentityRecord[]> {
    return this.backend.list();
  }

  /**
   * Deletes this cluster's identities that nobody uses: no reference here,
   * not in `inUse` (e.g. the identities of all endpoints the operator sees),
   * and unused for at least the grace period (counted from when a run, or a
   * release to zero, first saw it unused). Identities of other clusters are
   * never touched.
   */
  async gc(options: { inUse?: Iterable<number> } = {}): Promise<GCResult> {
    const used = new Set(options.inUse ?? []);
    const now = this.now();
    const records = await this.backend.list();
    const present = new Set<number>();
    const released: IdentityRecord[] = [];
    for (const r of records) {
      if (!isClusterIdentity(r.id, this.clusterId)) continue;
      present.add(r.id);
      if (this.refCount(r.id) > 0 || used.has(r.id)) {
        this.unusedSince.delete(r.id);
        continue;
      }
      const since = this.unusedSince.get(r.id);
      if (since === undefined) {
        this.unusedSince.set(r.id, now);
        continue;
      }
      if (now - since < this.grace) continue;
      const done = await this.withLock(r.labels, async () => {
        if (this.refCount(r.id) > 0) return false; // allocated again meanwhile
        await this.backend.release(r.id, r.labels);
        this.unusedSince.delete(r.id);
        this.taken?.delete(r.id);
        if (this.idByLabels.get(r.labels) === r.id) this.idByLabels.delete(r.labels);
        return true;
      });
      if (done) {
        released.push(r);
        this.log.info('garbage-collected identity', { id: r.id, labels: r.labels });
      }
    }
    for (const id of [...this.unusedSince.keys()])
      if (!present.has(id)) this.unusedSince.delete(id);
    return { released, pending: this.unusedSince.size };
  }

  /**
   * Runs gc() every `intervalMs` (errors are logged, not thrown). Returns a
   * function that stops it.
   */
  startGC(options: {
    intervalMs: number;
    inUse?: () => Iterable<number> | Promise<Iterable<number>>;
  }): () => void {
    let running = false;
    const timer = setInterval(() => {
      if (running) return;
      running = true;
      void (async () => {
        try {
          const inUse = options.inUse ? await options.inUse() : undefined;
          await this.gc(inUse ? { inUse } : {});
        } catch (err) {
          this.log.warn('identity gc failed; retrying next interval', { error: err });
        } finally {
          running = false;
        }
      })();
    }, options.intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  // --- internals ---

  private ref(id: number, delta: number): number {
    const n = Math.max(0, (this.refs.get(id) ?? 0) + delta);
    if (n === 0) {
      this.refs.delete(id);
      this.unusedSince.set(id, this.now());
    } else {
      this.refs.set(id, n);
      this.unusedSince.delete(id);
    }
    return n;
  }

  private async allocateInBackend(canon: string): Promise<AllocatedIdentity> {
    const existing = await this.backend.lookup(canon);
    if (existing !== undefined) return { id: existing, labels: canon, isNew: false };
    let refreshed = false;
    for (;;) {
      if (!this.taken) this.taken = new Set((await this.backend.list()).map((r) => r.id));
      const candidate = this.nextCandidate();
      if (candidate === undefined) {
        if (refreshed) break;
        refreshed = true;
        this.taken = undefined;
        continue;
      }
      this.trying.add(candidate);
      try {
        const res = await this.backend.allocate(candidate, canon);
        if ('taken' in res) {
          this.taken.add(candidate);
          continue;
        }
        this.taken.add(res.id);
        return { id: res.id, labels: canon, isNew: res.created };
      } finally {
        this.trying.delete(candidate);
      }
    }
    throw new TendrilError(
      'IDENTITY_EXHAUSTED',
      `allocate identity for ${canon}: all ${this.maxIndex - this.minIndex + 1} identities of cluster ${this.clusterId} are in use`,
      {
        hint: 'unused identities are freed by garbage collection after the grace period; check for endpoints with labels that change per pod',
      },
    );
  }

  /** The next free identity after the cursor, wrapping around; undefined if none. */
  private nextCandidate(): number | undefined {
    const size = this.maxIndex - this.minIndex + 1;
    for (let i = 0; i < size; i++) {
      const n = this.minIndex + ((this.cursor - this.minIndex + i) % size);
      const id = clusterIdentity(this.clusterId, n);
      if (this.taken!.has(id) || this.trying.has(id)) continue;
      this.cursor = n === this.maxIndex ? this.minIndex : n + 1;
      return id;
    }
    return undefined;
  }

  private withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(key, tail);
    void tail.then(() => {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    });
    return run;
  }
}

function toLabels(labels: Labels | string): Labels {
  return typeof labels === 'string' ? parseLabels(labels) : makeLabels(labels);
}

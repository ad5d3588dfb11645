/**
 * A small work queue for controllers: keys are deduplicated while pending,
 * reconciled one at a time, and retried with exponential backoff (capped) when
 * the reconcile throws. Conflicts (409) are retried at once, as a controller
 * that lost a race should just read again.
 */
import type { Logger } from '../../../util/log.js';
import { isNotFound, isConflict } from '../../../util/errors.js';

/** Options of WorkQueue. */
export interface WorkQueueOptions {
  name: string;
  logger: Logger;
  reconcile: (key: string) => Promise<void>;
  /** First retry delay; doubles up to maxBackoffMs. Default 50 ms. */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
}

/** Deduplicating, serial, retrying work queue. */
export class WorkQueue {
  private readonly pending = new Set<string>();
  private readonly order: string[] = [];
  private readonly failures = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private running = false;
  private stopped = false;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly opts: WorkQueueOptions) {}

  /** Schedules a key for reconciliation. */
  add(key: string): void {
    if (this.stopped || this.pending.has(key)) return;
    this.pending.add(key);
    this.order.push(key);
    if (!this.running) {
      this.running = true;
      setImmediate(() => void this.drain());
    }
  }

  private async drain(): Promise<void> {
    while (this.order.length > 0 && !this.stopped) {
      const key = this.order.shift()!;
      this.pending.delete(key);
      try {
        await this.opts.reconcile(key);
        this.failures.delete(key);
      } catch (err) {
        if (this.stopped) break;
        const n = (this.failures.get(key) ?? 0) + 1;
        this.failures.set(key, n);
        const conflict = isConflict(err) || isNotFound(err);
        const delay =
          conflict && n < 5
            ? 0
            : Math.min(
                (this.opts.baseBackoffMs ?? 50) * 2 ** (n - 1),
                this.opts.maxBackoffMs ?? 5000,
              );
        if (!conflict)
          this.opts.logger.warn('reconcile failed; will retry', {
            controller: this.opts.name,
            key,
            err,
            retryInMs: delay,
          });
        const t = setTimeout(() => {
          this.timers.delete(t);
          this.add(key);
        }, delay);
        t.unref();
        this.timers.add(t);
      }
    }
    this.running = false;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  /** Resolves when nothing is queued or running (for tests). */
  idle(): Promise<void> {
    if (!this.running && this.order.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops processing and drops pending keys and retries. */
  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.order.length = 0;
    this.pending.clear();
  }
}

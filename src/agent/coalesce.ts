/**
 * Runs a recompute "soon" after changes, without a fixed delay: a lone change
 * runs on the next turn of the event loop (setImmediate), so everything
 * already queued in this turn is coalesced into one run, and nothing waits
 * for a timer. Only when the previous run was expensive and recent does the
 * next one wait, until `factor` x its duration has passed since it ended
 * (capped at `maxDelayMs`): during a bulk sync of thousands of entries CPU goes
 * to work, not to recomputing, and an idle agent answers at once. A run under
 * `cheapMs` (default 1 ms, a timer's own granularity) counts as free: it adds
 * no wait at all.
 */
export interface CoalescerOptions {
  /** The upper bound of the wait after an expensive run (default 500 ms). */
  maxDelayMs?: number;
  /** Spacing after a run, as a multiple of its duration (default 2). */
  factor?: number;
  /** Runs shorter than this (ms) add no spacing (default 1). */
  cheapMs?: number;
}

/** Coalesces schedule() calls into runs of `fn`; see the module comment. */
export class Coalescer {
  private pending: NodeJS.Immediate | NodeJS.Timeout | undefined;
  private lastEnd = 0;
  private lastDurationMs = 0;
  private stopped = false;

  constructor(
    private readonly fn: () => void,
    private readonly o: CoalescerOptions = {},
  ) {}

  /** Asks for a run; returns at once (the run is asynchronous). */
  schedule(): void {
    if (this.pending || this.stopped) return;
    const wait = this.lastEnd + this.spacing() - performance.now();
    if (wait <= 0) this.pending = setImmediate(() => this.run());
    else this.pending = setTimeout(() => this.run(), wait);
  }

  /** Runs now (a pending run is dropped). */
  runNow(): void {
    this.cancel();
    this.run();
  }

  /** The delay the next schedule() would add, in ms (0: next turn of the event loop). */
  nextDelayMs(): number {
    return Math.max(0, this.lastEnd + this.spacing() - performance.now());
  }

  private spacing(): number {
    if (this.lastDurationMs < (this.o.cheapMs ?? 1)) return 0;
    return Math.min(this.o.maxDelayMs ?? 500, this.lastDurationMs * (this.o.factor ?? 2));
  }

  /** Drops a pending run; later schedule() calls are ignored. */
  stop(): void {
    this.stopped = true;
    this.cancel();
  }

  private cancel(): void {
    if (!this.pending) return;
    clearTimeout(this.pending as NodeJS.Timeout);
    clearImmediate(this.pending as NodeJS.Immediate);
    this.pending = undefined;
  }

  private run(): void {
    this.pending = undefined;
    const t0 = performance.now();
    try {
      this.fn();
    } finally {
      this.lastEnd = performance.now();
      this.lastDurationMs = this.lastEnd - t0;
    }
  }
}

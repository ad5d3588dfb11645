/**
 * File descriptor ownership. Every kernel object the library opens is held by
 * an `FD`, registered in a process-wide table of live descriptors, so tests can
 * assert that nothing leaked (`liveFds()`, `openFdCount()`). An FD that is
 * garbage-collected without close() is closed by a finalizer as a last resort.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { closeFd } from './syscall.js';
import { BpfError } from './errors.js';

/** What a live descriptor holds, for leak reports. */
export interface LiveFd {
  fd: number;
  kind: string;
  name: string;
}

const live = new Map<number, LiveFd>();
const finalizer = new FinalizationRegistry<number>((raw) => {
  // Only close if the number is still registered to a collected owner.
  if (live.has(raw)) {
    live.delete(raw);
    closeFd(raw);
  }
});

/** An owned file descriptor. close() is idempotent. */
export class FD {
  #raw: number;
  readonly kind: string;
  readonly name: string;

  constructor(raw: number, kind: string, name: string) {
    this.#raw = raw;
    this.kind = kind;
    this.name = name;
    live.set(raw, { fd: raw, kind, name });
    finalizer.register(this, raw, this);
  }

  /** The raw number; throws when closed. */
  get raw(): number {
    if (this.#raw < 0) {
      throw new BpfError('use', 9, {
        context: `use ${this.kind} "${this.name}" after close()`,
        hint: 'the object was closed; reopen it',
      });
    }
    return this.#raw;
  }

  get closed(): boolean {
    return this.#raw < 0;
  }

  close(): void {
    if (this.#raw < 0) return;
    finalizer.unregister(this);
    live.delete(this.#raw);
    closeFd(this.#raw);
    this.#raw = -1;
  }
}

/** Descriptors the library holds open right now. */
export function liveFds(): LiveFd[] {
  return [...live.values()];
}

/**
 * How many descriptors this process has open (from /proc/self/fd); with
 * `target`, only those whose link matches it (`/^anon_inode:bpf-map$/`,
 * `/^net:/`): other code of the process (the test runner, a library loading)
 * may open and close files meanwhile.
 */
export function openFdCount(target?: RegExp): number {
  const fds = readdirSync('/proc/self/fd');
  if (!target) return fds.length;
  let n = 0;
  for (const fd of fds) {
    try {
      if (target.test(readlinkSync(`/proc/self/fd/${fd}`))) n++;
    } catch {
      // closed since the listing (or the listing's own descriptor)
    }
  }
  return n;
}

/**
 * The agent's bounded flow ring (Hubble's default capacity 4095): the newest
 * `capacity` flows, oldest overwritten. Subscribers (follow mode, metrics)
 * are called synchronously per flow; a subscriber buffers on its own side
 * and reports its losses, so the ring never grows.
 */
import type { Flow, FlowSource } from './flow.js';

/** Hubble's default ring size. */
export const DEFAULT_FLOW_RING_CAPACITY = 4095;

/** A FlowSource backed by a fixed array. */
export class FlowRing implements FlowSource {
  readonly capacity: number;
  readonly #buf: (Flow | undefined)[];
  #next = 0;
  #seen = 0;
  #lost = 0;
  readonly #subs = new Set<(f: Flow) => void>();

  constructor(capacity: number = DEFAULT_FLOW_RING_CAPACITY) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`flow ring capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    this.#buf = new Array<Flow | undefined>(capacity);
  }

  /** Adds a flow, overwriting the oldest when full, and hands it to subscribers. */
  push(flow: Flow): void {
    this.#buf[this.#next] = flow;
    this.#next = (this.#next + 1) % this.capacity;
    this.#seen++;
    for (const s of this.#subs) s(flow);
  }

  /** Counts events the datapath reported lost (ring buffer full, decode errors). */
  addLost(n: number): void {
    this.#lost += n;
  }

  snapshot(): Flow[] {
    const out: Flow[] = [];
    const n = Math.min(this.#seen, this.capacity);
    let i = (this.#next - n + this.capacity) % this.capacity;
    for (let k = 0; k < n; k++, i = (i + 1) % this.capacity) out.push(this.#buf[i]!);
    return out;
  }

  subscribe(onFlow: (f: Flow) => void): () => void {
    this.#subs.add(onFlow);
    return () => this.#subs.delete(onFlow);
  }

  stats(): { seen: number; capacity: number; lost: number } {
    return { seen: this.#seen, capacity: this.capacity, lost: this.#lost };
  }
}

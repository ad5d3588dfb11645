/**
 * The sending side of one GetFlows stream with a bounded queue: responses
 * are written while the gRPC stream accepts them; while it is blocked (the
 * client reads slower than flows arrive) they wait in a queue of at most
 * `maxQueue`, and what does not fit is dropped, counted, and reported to the
 * client as one `lost_events` response (source OBSERVER_EVENTS_QUEUE) as
 * soon as the stream accepts writes again. Used by the agent's server and
 * the relay, so neither holds more than `maxQueue` responses per client.
 */
import type * as grpc from '@grpc/grpc-js';
import { responseToWire, type GetFlowsResponse, type WireTimestamp } from './grpc.js';

/** Options of a BoundedResponseStream. */
export interface BoundedStreamOptions {
  maxQueue: number;
  /** node_name of lost_events responses. */
  nodeName: string;
  /** Called with the count of each drop (for ServerStatus). */
  onDrop?: (n: number) => void;
}

/** One client's GetFlows stream with a bounded queue. */
export class BoundedResponseStream {
  readonly #call: grpc.ServerWritableStream<unknown, unknown>;
  readonly #o: BoundedStreamOptions;
  readonly #queue: GetFlowsResponse[] = [];
  readonly #closers: Array<() => void> = [];
  #lost = 0;
  #blocked = false;
  #ending = false;
  #done = false;
  readonly #pump = () => this.#drain();

  constructor(call: grpc.ServerWritableStream<unknown, unknown>, o: BoundedStreamOptions) {
    this.#call = call;
    this.#o = o;
    const finish = () => this.#finish();
    call.on('drain', this.#pump);
    call.on('cancelled', finish);
    call.on('close', finish);
    call.on('error', finish);
  }

  /** True once the client went away or the stream ended. */
  get done(): boolean {
    return this.#done;
  }

  /** Runs `fn` when the stream is over (client cancelled, closed, or ended). */
  onClose(fn: () => void): void {
    if (this.#done) fn();
    else this.#closers.push(fn);
  }

  /** Queues a response; drops it (and counts) when the queue is full. `force` ignores the bound (bounded history). */
  push(r: GetFlowsResponse, force = false): void {
    if (this.#done) return;
    if (!force && this.#queue.length >= this.#o.maxQueue) {
      this.lose(1);
      return;
    }
    this.#queue.push(r);
    if (!this.#blocked) this.#drain();
  }

  /** Counts responses lost upstream (or dropped here); reported as one lost_events. */
  lose(n: number): void {
    if (n <= 0 || this.#done) return;
    this.#lost += n;
    this.#o.onDrop?.(n);
    if (!this.#blocked) this.#drain();
  }

  /** Ends the stream once the queue is written. */
  end(): void {
    this.#ending = true;
    if (!this.#blocked) this.#drain();
  }

  /** Ends the stream with an error status. */
  fail(code: number, details: string): void {
    if (this.#done) return;
    this.#finish();
    this.#call.emit('error', { code, details });
  }

  #write(r: GetFlowsResponse): void {
    if (!this.#call.write(responseToWire(r))) this.#blocked = true;
  }

  #drain(): void {
    this.#blocked = false;
    while (!this.#done && !this.#blocked) {
      if (this.#lost > 0) {
        const n = this.#lost;
        this.#lost = 0;
        this.#write({
          lostEvents: { source: 'OBSERVER_EVENTS_QUEUE', numEventsLost: n },
          nodeName: this.#o.nodeName,
          time: nowTimestamp(),
        });
        continue;
      }
      const r = this.#queue.shift();
      if (!r) break;
      this.#write(r);
    }
    if (this.#ending && !this.#done && this.#queue.length === 0 && this.#lost === 0) {
      this.#finish();
      this.#call.end();
    }
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#call.off('drain', this.#pump);
    for (const c of this.#closers.splice(0)) c();
  }
}

/** Now as a wire timestamp. */
export function nowTimestamp(): WireTimestamp {
  const ms = Date.now();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

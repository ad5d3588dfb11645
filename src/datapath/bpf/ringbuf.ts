/**
 * Reading a BPF ring buffer (MapType.Ringbuf) from JS. A worker thread maps
 * the ring and waits in poll(2), so the event loop never blocks or spins;
 * records arrive as Buffers through an async iterator. close() wakes the
 * worker (eventfd), waits for it to unmap and exit, and closes the reader's
 * own map fd.
 */
import { writeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { TendrilError } from '../../util/errors.js';
import { SpecError, bpfError } from './errors.js';
import { FD } from './fd.js';
import type { BpfMap } from './map.js';
import { BPF_ATTR_SIZE, Cmd, addressOf, bpfAddr, stableBuffer } from './syscall.js';
import { MapType } from './types.js';

/** Options of openRingBuffer. */
export interface RingBufferOptions {
  /** Bytes of records per batch handed from the worker (default 256 KiB). */
  maxBatchBytes?: number;
  /** Batches in flight before the worker waits for the reader (default 4). */
  maxOutstanding?: number;
  /**
   * After reading records, wait this long before reading again (default 0), so
   * records gather into batches: a busy ring then wakes the reader at most
   * 1000/batchDelayMs times a second instead of about once per record. Adds up
   * to this much latency.
   */
  batchDelayMs?: number;
}

/** Opens a new fd for a map by its id, so the reader does not depend on the caller's fd. */
function dupMapFd(map: BpfMap<unknown, unknown>): FD {
  const id = map.info().id;
  const attr = stableBuffer(BPF_ATTR_SIZE);
  attr.writeUInt32LE(id, 0);
  const r = bpfAddr(Cmd.MapGetFdById, addressOf(attr), BPF_ATTR_SIZE);
  if (r < 0) throw bpfError(Cmd.MapGetFdById, -r, `open ring buffer ${map.name}`);
  return new FD(r, 'ringbuf', map.name);
}

/** A consumer of one ring buffer. Iterate it with `for await`; close() to stop. */
export class RingBufferReader implements AsyncIterable<Buffer> {
  readonly name: string;
  readonly #fd: FD;
  readonly #worker: Worker;
  readonly #ctl: Int32Array;
  #efd = -1;
  #queue: { buf: Buffer; offsets: Uint32Array; next: number }[] = [];
  #waiters: { resolve: (v: Buffer | undefined) => void; reject: (e: unknown) => void }[] = [];
  #closed = false;
  #batches = 0;
  #error: Error | undefined;
  readonly #stopped: Promise<void>;
  readonly #ready: Promise<void>;

  constructor(map: BpfMap<unknown, unknown>, options: RingBufferOptions = {}) {
    if (map.type !== MapType.Ringbuf)
      throw new SpecError(
        `map ${map.name} is not a RINGBUF map`,
        'create it with type: MapType.Ringbuf',
      );
    this.name = map.name;
    this.#fd = dupMapFd(map);
    const control = new SharedArrayBuffer(8);
    this.#ctl = new Int32Array(control);
    this.#worker = new Worker(new URL('./ringbuf-worker.mjs', import.meta.url), {
      workerData: {
        fd: this.#fd.raw,
        size: map.maxEntries,
        control,
        maxBatchBytes: options.maxBatchBytes ?? 256 * 1024,
        maxOutstanding: options.maxOutstanding ?? 4,
        batchDelayMs: options.batchDelayMs ?? 0,
      },
      // The worker is plain JS; it needs no loader.
      execArgv: [],
    });
    let readyResolve!: () => void;
    let readyReject!: (e: unknown) => void;
    this.#ready = new Promise((res, rej) => ((readyResolve = res), (readyReject = rej)));
    this.#ready.catch(() => {});
    this.#stopped = new Promise((resolve) => this.#worker.once('exit', () => resolve()));
    this.#worker.on(
      'message',
      (m: {
        type: string;
        efd?: number;
        buf?: ArrayBuffer;
        offsets?: ArrayBuffer;
        message?: string;
      }) => {
        if (m.type === 'ready') {
          this.#efd = m.efd!;
          readyResolve();
        } else if (m.type === 'batch') {
          this.#push(Buffer.from(m.buf!), new Uint32Array(m.offsets!));
        } else if (m.type === 'error') {
          this.#fail(new TendrilError('RINGBUF_READ', `ring buffer ${this.name}: ${m.message}`));
          readyReject(this.#error);
        }
      },
    );
    this.#worker.on('error', (e) => {
      this.#fail(e);
      readyReject(e);
    });
    this.#worker.on('exit', () => {
      readyReject(new TendrilError('RINGBUF_READ', `ring buffer ${this.name}: reader stopped`));
      this.#drainWaiters();
    });
  }

  /** Resolves once the worker has mapped the ring (records produced after this are seen). */
  ready(): Promise<void> {
    return this.#ready;
  }

  #fail(e: Error): void {
    this.#error ??= e;
    for (const w of this.#waiters.splice(0)) w.reject(e);
  }

  #drainWaiters(): void {
    if (this.#queue.length === 0) for (const w of this.#waiters.splice(0)) w.resolve(undefined);
  }

  /** Batches the worker has handed over so far (each one wake-up of this thread). */
  get batches(): number {
    return this.#batches;
  }

  #push(buf: Buffer, offsets: Uint32Array): void {
    this.#batches++;
    this.#queue.push({ buf, offsets, next: 0 });
    while (this.#waiters.length > 0) {
      const rec = this.#take();
      if (rec === undefined) break;
      this.#waiters.shift()!.resolve(rec);
    }
  }

  #take(): Buffer | undefined {
    const b = this.#queue[0];
    if (b === undefined) return undefined;
    const i = b.next++;
    const rec = b.buf.subarray(b.offsets[i]!, b.offsets[i + 1]!);
    if (b.next >= b.offsets.length - 1) {
      this.#queue.shift();
      Atomics.sub(this.#ctl, 1, 1);
      Atomics.notify(this.#ctl, 1);
    }
    return rec;
  }

  /** The next record if one has arrived, else undefined (no promise: for draining a batch). */
  tryRead(): Buffer | undefined {
    return this.#take();
  }

  /** The next record, or undefined once closed. Rejects if the worker failed. */
  read(): Promise<Buffer | undefined> {
    const rec = this.#take();
    if (rec !== undefined) return Promise.resolve(rec);
    if (this.#error) return Promise.reject(this.#error);
    if (this.#closed) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    try {
      for (;;) {
        const r = await this.read();
        if (r === undefined) return;
        yield r;
      }
    } finally {
      await this.close();
    }
  }

  /** Stops the worker, unmaps the ring and closes the reader's fd. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return this.#stopped;
    this.#closed = true;
    Atomics.store(this.#ctl, 0, 1);
    Atomics.notify(this.#ctl, 1);
    Atomics.notify(this.#ctl, 0);
    await this.#ready.catch(() => {});
    if (this.#efd >= 0) {
      const one = Buffer.alloc(8);
      one.writeBigUInt64LE(1n);
      try {
        writeSync(this.#efd, one);
      } catch {
        /* worker already gone */
      }
    }
    const timer = setTimeout(() => void this.#worker.terminate(), 2000);
    await this.#stopped;
    clearTimeout(timer);
    this.#fd.close();
    this.#queue = [];
    for (const w of this.#waiters.splice(0)) w.resolve(undefined);
  }
}

/**
 * Starts reading a RINGBUF map. Throws SpecError when the map is not a ring buffer.
 * Await reader.ready() before producing records you must not miss.
 */
export function openRingBuffer(
  map: BpfMap<unknown, unknown>,
  options: RingBufferOptions = {},
): RingBufferReader {
  return new RingBufferReader(map, options);
}

/**
 * DNS names for flows (Hubble's `source_names` / `destination_names`): the
 * agent captures the DNS answers that cross its node (an AF_PACKET socket in
 * the node's network namespace with a kernel filter for UDP from port 53, in
 * a worker thread: src/agent/dns-snoop-worker.mjs), and remembers for every
 * IPv4 address of an A record the names that resolved to it (the question and
 * the CNAMEs on the way) until the record's TTL ends (at least a minute).
 * Cilium learns the same from its DNS proxy; Tendril has no L7 proxy, so it
 * listens passively and never changes a packet.
 */
import { MessageChannel, Worker, receiveMessageOnPort } from 'node:worker_threads';
import { writeSync } from 'node:fs';
import dnsPacket from 'dns-packet';
import koffi from 'koffi';
import type { Logger } from '../util/log.js';

/** One address an answer resolved, with the names that led to it. */
export interface DnsAnswer {
  ip: string;
  names: string[];
  ttlSeconds: number;
}

/** Names of an address expire no sooner than this after the answer. */
export const DNS_NAME_MIN_TTL_SECONDS = 60;

/**
 * Names by address, bounded (the oldest address goes first when `maxIPs` is
 * reached), each name expiring with its answer's TTL.
 */
export class DnsNameCache {
  readonly #byIp = new Map<string, Map<string, number>>();
  readonly #maxIPs: number;
  readonly #now: () => number;

  constructor(o: { maxIPs?: number; now?: () => number } = {}) {
    this.#maxIPs = o.maxIPs ?? 16_384;
    this.#now = o.now ?? Date.now;
  }

  /** Records an answer's names for its address. */
  record(a: DnsAnswer): void {
    const until = this.#now() + Math.max(a.ttlSeconds, DNS_NAME_MIN_TTL_SECONDS) * 1000;
    let m = this.#byIp.get(a.ip);
    if (m)
      this.#byIp.delete(a.ip); // re-inserted last: the newest
    else m = new Map();
    for (const n of a.names) m.set(n, until);
    this.#byIp.set(a.ip, m);
    while (this.#byIp.size > this.#maxIPs) {
      const oldest = this.#byIp.keys().next().value as string;
      this.#byIp.delete(oldest);
    }
  }

  /** The live names of an address, sorted; undefined when none. */
  names(ip: string): string[] | undefined {
    const m = this.#byIp.get(ip);
    if (!m) return undefined;
    const now = this.#now();
    const out: string[] = [];
    for (const [n, until] of m) {
      if (until > now) out.push(n);
      else m.delete(n);
    }
    if (out.length === 0) {
      this.#byIp.delete(ip);
      return undefined;
    }
    return out.sort();
  }

  /** Addresses known. */
  get size(): number {
    return this.#byIp.size;
  }
}

/**
 * The A records of a captured Ethernet frame carrying a DNS response (IPv4,
 * UDP from port 53); [] for anything else. Names are lower case without the
 * trailing dot; each address gets the question's name and every CNAME on the
 * way to it.
 */
export function parseDnsFrame(frame: Uint8Array): DnsAnswer[] {
  const b = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  if (b.length < 14 + 20 + 8 || b.readUInt16BE(12) !== 0x0800) return [];
  const ihl = (b[14]! & 0x0f) * 4;
  if (b[14 + 9] !== 17) return [];
  const udp = 14 + ihl;
  if (b.length < udp + 8 || b.readUInt16BE(udp) !== 53) return [];
  let msg: dnsPacket.Packet;
  try {
    msg = dnsPacket.decode(b.subarray(udp + 8));
  } catch {
    return [];
  }
  if (msg.type !== 'response') return [];
  const lower = (n: string) => n.toLowerCase().replace(/\.$/, '');
  // CNAME chain: each target name knows the names that led to it
  const aliases = new Map<string, Set<string>>();
  for (const q of msg.questions ?? []) aliases.set(lower(q.name), new Set([lower(q.name)]));
  for (const a of msg.answers ?? [])
    if (a.type === 'CNAME') {
      const from = lower(a.name);
      const to = lower(String(a.data));
      const set = aliases.get(to) ?? new Set<string>([to]);
      for (const n of aliases.get(from) ?? [from]) set.add(n);
      aliases.set(to, set);
    }
  const out: DnsAnswer[] = [];
  for (const a of msg.answers ?? []) {
    if (a.type !== 'A' || typeof a.data !== 'string') continue;
    const name = lower(a.name);
    out.push({ ip: a.data, names: [...(aliases.get(name) ?? [name])], ttlSeconds: a.ttl ?? 0 });
  }
  return out;
}

/** A running capture. */
export interface DnsSnoop {
  /**
   * Takes in, synchronously, every answer already captured (posted by the
   * worker or still queued on the socket): a connection's socket translation
   * is reported after its DNS answer reached the socket, so draining first
   * lets its flow find the name even when the worker thread is late.
   */
  drain(): void;
  /** Stops the worker and closes its socket. */
  stop(): Promise<void>;
}

let recvFn: ((fd: number, buf: Buffer, len: number, flags: number) => number | bigint) | undefined;
function recvOnce(fd: number, buf: Buffer): number {
  recvFn ??= koffi.load('libc.so.6').func('int64 recv(int fd, void *buf, uint64 len, int flags)');
  return Number(recvFn(fd, buf, buf.length, 0x40 /* MSG_DONTWAIT */));
}

/**
 * Starts capturing DNS answers in this process's network namespace (needs
 * CAP_NET_RAW) and calls `onAnswer` for each A record. A capture that cannot
 * start (no privilege) is logged, and flows simply carry no names.
 */
export function startDnsSnoop(o: {
  onAnswer: (a: DnsAnswer) => void;
  logger?: Logger;
  snapLen?: number;
}): DnsSnoop {
  const control = new SharedArrayBuffer(4);
  const ctl = new Int32Array(control);
  const snapLen = o.snapLen ?? 4096;
  // frames come on a port of their own, so drain() can take them synchronously
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(new URL('./dns-snoop-worker.mjs', import.meta.url), {
    workerData: { snapLen, control, port: port2 },
    transferList: [port2],
  });
  let efd = -1;
  let fd = -1;
  const scratch = Buffer.alloc(snapLen);
  const take = (frame: Uint8Array) => {
    for (const a of parseDnsFrame(frame)) o.onAnswer(a);
  };
  const stopped = new Promise<void>((resolve) => {
    worker.on('exit', () => resolve());
  });
  port1.on('message', (m: { frame: ArrayBuffer }) => take(new Uint8Array(m.frame)));
  worker.on('message', (m: { type: string; efd?: number; fd?: number; message?: string }) => {
    if (m.type === 'ready') {
      efd = m.efd ?? -1;
      fd = m.fd ?? -1;
      o.logger?.info('hubble: capturing DNS answers for flow names');
    } else if (m.type === 'error')
      o.logger?.warn('hubble: cannot capture DNS answers; flows carry no DNS names', {
        error: m.message,
      });
  });
  worker.on('error', (err) =>
    o.logger?.warn('hubble: the DNS capture failed', { error: (err as Error).message }),
  );
  worker.unref();
  port1.unref();
  let stopping = false;
  return {
    drain() {
      if (stopping) return;
      for (let m = receiveMessageOnPort(port1); m; m = receiveMessageOnPort(port1))
        take(new Uint8Array((m.message as { frame: ArrayBuffer }).frame));
      if (fd < 0) return;
      for (let i = 0; i < 64; i++) {
        const n = recvOnce(fd, scratch);
        if (n <= 0) break;
        take(scratch.subarray(0, n));
      }
    },
    async stop() {
      stopping = true;
      Atomics.store(ctl, 0, 1);
      if (efd >= 0) {
        const one = Buffer.alloc(8);
        one.writeBigUInt64LE(1n);
        try {
          writeSync(efd, one);
        } catch {
          // the worker already closed it
        }
      }
      await Promise.race([stopped, new Promise((r) => setTimeout(r, 2000))]);
      await worker.terminate().catch(() => undefined);
      port1.close();
    },
  };
}

/**
 * Hubble's Observer API (`observer.Observer`) over a FlowSource: GetFlows
 * (history by number/first or since/until, then follow), ServerStatus and
 * GetNodes. One ObserverServer serves a node's ring on a local Unix socket
 * and, when the node has a mesh certificate, on TCP (Hubble's 4244) with
 * mutual TLS.
 *
 * A follower that reads slower than flows arrive gets a bounded queue
 * (maxQueue responses); what does not fit is dropped and counted, and the
 * follower is told with a `lost_events` response (source
 * OBSERVER_EVENTS_QUEUE) as soon as there is room again. Memory per client
 * never exceeds the queue.
 */
import * as grpc from '@grpc/grpc-js';
import { rmSync } from 'node:fs';
import type { Flow, FlowSource } from './flow.js';
import { compileFlowFilters, FlowFilterError } from './filter.js';
import {
  observerService,
  statusToWire,
  timestampMs,
  type GetFlowsRequest,
  type GetFlowsResponse,
  type ObserverNode,
  type ServerStatus,
} from './grpc.js';
import type { Logger } from '../util/log.js';
import { nopLogger } from '../util/log.js';
import { TendrilError } from '../util/errors.js';
import { BoundedResponseStream } from './stream.js';

/** Hubble's port for a node's observer over TCP. */
export const HUBBLE_PORT = 4244;

/** Default bound of a follower's queue. */
export const DEFAULT_FOLLOW_QUEUE = 1024;

/** Options of an ObserverServer. */
export interface ObserverServerOptions {
  source: FlowSource;
  /** This node's name (node_name of every response). */
  nodeName: string;
  version?: string;
  /** Responses queued for a slow follower before flows are dropped (default 1024). */
  maxQueue?: number;
  logger?: Logger;
}

/** Mutual TLS material (PEM). */
export interface MutualTLS {
  ca: string;
  cert: string;
  key: string;
}

/** Where an ObserverServer listens. */
export interface ObserverListen {
  /** Unix socket path (the node-local socket). */
  socketPath?: string;
  /** host:port over TCP; requires tls. */
  tcpAddress?: string;
  tls?: MutualTLS;
}

/** The flow rate over the last minute from per-second samples of `seen`. */
class RateMeter {
  readonly #samples: Array<{ t: number; seen: number }> = [];
  readonly #timer: NodeJS.Timeout;
  constructor(private readonly seen: () => number) {
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), 1000);
    this.#timer.unref();
  }
  #sample(): void {
    this.#samples.push({ t: Date.now(), seen: this.seen() });
    if (this.#samples.length > 61) this.#samples.shift();
  }
  rate(): number {
    const first = this.#samples[0]!;
    const now = { t: Date.now(), seen: this.seen() };
    const dt = (now.t - first.t) / 1000;
    return dt > 0 ? (now.seen - first.seen) / dt : 0;
  }
  stop(): void {
    clearInterval(this.#timer);
  }
}

/** Picks the history a GetFlows request asks for from a snapshot (oldest first). */
export function selectHistory(
  snapshot: readonly Flow[],
  req: GetFlowsRequest,
  match: (f: Flow) => boolean,
): Flow[] {
  const since = req.since ? timestampMs(req.since) : undefined;
  const until = req.until ? timestampMs(req.until) : undefined;
  const inTime = (f: Flow) => {
    const t = timestampMs(f.time);
    return (since === undefined || t >= since) && (until === undefined || t <= until);
  };
  const all = snapshot.filter((f) => inTime(f) && match(f));
  const n = Number(req.number ?? 0);
  if (n > 0) return req.first ? all.slice(0, n) : all.slice(-n);
  // no number: since/until bound the history; follow alone starts from now
  if (req.follow && since === undefined && until === undefined) return [];
  return all;
}

/** The Observer service over one FlowSource. */
export class ObserverServer {
  readonly #o: Required<Omit<ObserverServerOptions, 'logger'>> & { logger: Logger };
  readonly #startedAt = process.hrtime.bigint();
  readonly #rate: RateMeter;
  #droppedForSlow = 0;
  #server: grpc.Server | undefined;
  #socketPath: string | undefined;
  /** Addresses this server listens on (unix:PATH, host:port). */
  readonly addresses: string[] = [];
  #tls = false;

  constructor(o: ObserverServerOptions) {
    this.#o = {
      version: 'tendril',
      maxQueue: DEFAULT_FOLLOW_QUEUE,
      logger: nopLogger,
      ...o,
    };
    this.#rate = new RateMeter(() => o.source.stats().seen);
  }

  /** Uptime in nanoseconds. */
  uptimeNs(): number {
    return Number(process.hrtime.bigint() - this.#startedAt);
  }

  /** ServerStatus's answer. */
  status(): ServerStatus {
    const s = this.#o.source.stats();
    return {
      numFlows: Math.min(s.seen, s.capacity),
      maxFlows: s.capacity,
      seenFlows: s.seen,
      uptimeNs: this.uptimeNs(),
      numConnectedNodes: 1,
      numUnavailableNodes: 0,
      unavailableNodes: [],
      version: this.#o.version,
      flowsRate: this.#rate.rate(),
      lostEvents: s.lost + this.#droppedForSlow,
    };
  }

  /** This node as GetNodes reports it. */
  node(): ObserverNode {
    const s = this.#o.source.stats();
    return {
      name: this.#o.nodeName,
      version: this.#o.version,
      address: this.addresses.find((a) => !a.startsWith('unix:')) ?? this.addresses[0] ?? '',
      state: 'NODE_CONNECTED',
      tls: { enabled: this.#tls },
      uptimeNs: this.uptimeNs(),
      numFlows: Math.min(s.seen, s.capacity),
      maxFlows: s.capacity,
      seenFlows: s.seen,
    };
  }

  /** The service implementation (for a grpc.Server of your own). */
  handlers(): grpc.UntypedServiceImplementation {
    return {
      GetFlows: (call: grpc.ServerWritableStream<GetFlowsRequest, unknown>) => this.#getFlows(call),
      ServerStatus: (_call: unknown, cb: grpc.sendUnaryData<unknown>) =>
        cb(null, statusToWire(this.status())),
      GetNodes: (_call: unknown, cb: grpc.sendUnaryData<unknown>) =>
        cb(null, { nodes: [this.node()] }),
    };
  }

  #getFlows(call: grpc.ServerWritableStream<GetFlowsRequest, unknown>): void {
    const req = call.request;
    const nodeName = this.#o.nodeName;
    const out = new BoundedResponseStream(call, {
      maxQueue: this.#o.maxQueue,
      nodeName,
      onDrop: (n) => (this.#droppedForSlow += n),
    });
    let match: (f: Flow) => boolean;
    try {
      match = compileFlowFilters(req.whitelist ?? [], req.blacklist ?? []);
    } catch (err) {
      out.fail(
        grpc.status.INVALID_ARGUMENT,
        err instanceof FlowFilterError ? err.message : String(err),
      );
      return;
    }
    const resp = (f: Flow): GetFlowsResponse => ({ flow: f, nodeName, time: f.time });
    const until = req.until ? timestampMs(req.until) : undefined;
    if (req.follow) {
      const unsubscribe = this.#o.source.subscribe(
        (f) => {
          if (until !== undefined && timestampMs(f.time) > until) return;
          if (match(f)) out.push(resp(f));
        },
        (n) => out.lose(n),
      );
      out.onClose(unsubscribe);
    }
    // the history (bounded by the ring's capacity) goes first, whole
    for (const f of selectHistory(this.#o.source.snapshot(), req, match)) out.push(resp(f), true);
    if (!req.follow) out.end();
  }

  /**
   * Starts listening.
   * @throws TendrilError HUBBLE_LISTEN when a socket cannot be bound, HUBBLE_NO_TLS for TCP without TLS.
   */
  async listen(l: ObserverListen): Promise<void> {
    const server = new grpc.Server({ 'grpc.max_concurrent_streams': 1000 });
    server.addService(observerService().service, this.handlers());
    this.#server = server;
    await bindObserverServer(server, l, 'hubble', (address, tls) => {
      if (tls) this.#tls = true;
      else this.#socketPath = l.socketPath;
      this.addresses.push(address);
    });
  }

  /** Stops serving (ends open streams) and removes the socket file. */
  async close(): Promise<void> {
    this.#rate.stop();
    const s = this.#server;
    this.#server = undefined;
    if (s) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          s.forceShutdown();
          resolve();
        }, 1000);
        s.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    if (this.#socketPath) rmSync(this.#socketPath, { force: true });
  }
}

/**
 * Binds SERVER (an Observer service, the node's or the relay's) where L says:
 * first the Unix socket (a stale file there is removed), then TCP with
 * mutual TLS. BOUND is called after each bind with the address as clients
 * dial it (`unix:PATH`, or host:port with the port bound for port 0) and
 * whether it is the TLS one, so a caller that fails half-way still knows
 * what to clean up. NAME (`hubble`, `hubble relay`) starts the error messages.
 * @throws TendrilError HUBBLE_LISTEN when a socket cannot be bound, HUBBLE_NO_TLS for TCP without TLS.
 */
export async function bindObserverServer(
  server: grpc.Server,
  l: ObserverListen,
  name: string,
  bound: (address: string, tls: boolean) => void,
): Promise<void> {
  if (l.socketPath) {
    rmSync(l.socketPath, { force: true });
    await bind(server, `unix:${l.socketPath}`, grpc.ServerCredentials.createInsecure(), name);
    bound(`unix:${l.socketPath}`, false);
  }
  if (l.tcpAddress) {
    if (!l.tls)
      throw new TendrilError(
        'HUBBLE_NO_TLS',
        `${name}: will not serve ${l.tcpAddress} without TLS`,
        {
          hint: 'give the mesh certificate (ca, cert, key) or listen on a Unix socket only',
        },
      );
    const creds = grpc.ServerCredentials.createSsl(
      Buffer.from(l.tls.ca),
      [{ cert_chain: Buffer.from(l.tls.cert), private_key: Buffer.from(l.tls.key) }],
      true,
    );
    const port = await bind(server, l.tcpAddress, creds, name);
    bound(l.tcpAddress.replace(/:0$/, `:${port}`), true);
  }
}

function bind(
  server: grpc.Server,
  address: string,
  creds: grpc.ServerCredentials,
  name: string,
): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(address, creds, (err, port) =>
      err
        ? reject(
            new TendrilError('HUBBLE_LISTEN', `${name}: listen on ${address}: ${err.message}`, {
              cause: err,
            }),
          )
        : resolve(port),
    ),
  );
}

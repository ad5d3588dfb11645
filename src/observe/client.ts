/**
 * A client of Hubble's Observer API (an agent's socket, a relay, or Hubble
 * itself): GetFlows as an async iterable of decoded responses, ServerStatus
 * and GetNodes. Reading is pulled: a consumer that stops reading makes the
 * stream stop (HTTP/2 flow control), and the server drops for it, not us.
 */
import * as grpc from '@grpc/grpc-js';
import {
  observerService,
  responseFromWire,
  type GetFlowsRequest,
  type GetFlowsResponse,
  type ObserverNode,
  type ServerStatus,
} from './grpc.js';
import type { MutualTLS } from './server.js';
import { TendrilError } from '../util/errors.js';

/** Where and how to reach an observer. */
export interface ObserverClientOptions {
  /** `unix:/path/to.sock` or `host:port`. */
  address: string;
  /** Mutual TLS for host:port (the mesh CA, a client certificate and key). */
  tls?: MutualTLS & { serverName?: string };
  /** gRPC metadata sent with every call (a relay marks calls to another cluster's relay). */
  metadata?: Record<string, string>;
  /** Per-call deadline for unary calls (default 5000 ms). */
  timeoutMs?: number;
}

/** Options of one GetFlows call. */
export interface GetFlowsCallOptions {
  /** Aborting cancels the stream (the iterator then ends). */
  signal?: AbortSignal;
  /** Extra gRPC metadata (the relay marks calls it forwards). */
  metadata?: Record<string, string>;
}

/** An Observer API failure. */
export class ObserverClientError extends TendrilError {
  constructor(message: string, hint: string | undefined, cause: unknown) {
    super('HUBBLE_UNAVAILABLE', message, { ...(hint ? { hint } : {}), cause });
    this.name = 'ObserverClientError';
  }
}

type Raw = grpc.Client & Record<string, (...a: unknown[]) => unknown>;

/** Client of observer.Observer. */
export class ObserverClient {
  readonly address: string;
  readonly #c: Raw;
  readonly #timeoutMs: number;
  readonly #metadata: Record<string, string>;

  constructor(o: ObserverClientOptions) {
    this.address = o.address;
    this.#timeoutMs = o.timeoutMs ?? 5000;
    this.#metadata = o.metadata ?? {};
    const creds = o.tls
      ? grpc.credentials.createSsl(
          Buffer.from(o.tls.ca),
          Buffer.from(o.tls.key),
          Buffer.from(o.tls.cert),
        )
      : grpc.credentials.createInsecure();
    const Ctor = observerService();
    this.#c = new Ctor(o.address, creds, {
      ...(o.tls?.serverName ? { 'grpc.ssl_target_name_override': o.tls.serverName } : {}),
      'grpc.enable_retries': 0,
    }) as unknown as Raw;
  }

  /**
   * Streams GetFlows responses (flows, node_status, lost_events) until the
   * server ends the stream, the signal aborts, or the consumer breaks out.
   * @throws ObserverClientError when the call fails (unreachable, bad filter: INVALID_ARGUMENT).
   */
  async *getFlows(
    req: GetFlowsRequest,
    o: GetFlowsCallOptions = {},
  ): AsyncGenerator<GetFlowsResponse> {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries({ ...this.#metadata, ...o.metadata })) md.set(k, v);
    const stream = (
      this.#c['GetFlows'] as (
        r: unknown,
        m: grpc.Metadata,
      ) => grpc.ClientReadableStream<Record<string, unknown>>
    )(req, md);
    const onAbort = () => stream.cancel();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const w of stream) yield responseFromWire(w as Record<string, unknown>);
    } catch (err) {
      const e = err as grpc.ServiceError;
      if (e.code === grpc.status.CANCELLED && (o.signal?.aborted ?? true)) return;
      throw this.#error('GetFlows', e);
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
      stream.cancel();
    }
  }

  /** ServerStatus. @throws ObserverClientError */
  serverStatus(): Promise<ServerStatus> {
    return this.#unary<
      Partial<ServerStatus> & {
        numConnectedNodes?: { value?: number };
        numUnavailableNodes?: { value?: number };
      }
    >('ServerStatus').then((r) => ({
      numFlows: Number(r.numFlows ?? 0),
      maxFlows: Number(r.maxFlows ?? 0),
      seenFlows: Number(r.seenFlows ?? 0),
      uptimeNs: Number(r.uptimeNs ?? 0),
      ...(r.numConnectedNodes ? { numConnectedNodes: r.numConnectedNodes.value ?? 0 } : {}),
      ...(r.numUnavailableNodes ? { numUnavailableNodes: r.numUnavailableNodes.value ?? 0 } : {}),
      unavailableNodes: r.unavailableNodes ?? [],
      version: r.version ?? '',
      flowsRate: Number(r.flowsRate ?? 0),
      lostEvents: Number(r.lostEvents ?? 0),
    }));
  }

  /** GetNodes. @throws ObserverClientError */
  async getNodes(): Promise<ObserverNode[]> {
    const r = await this.#unary<{ nodes?: Array<Partial<ObserverNode>> }>('GetNodes');
    return (r.nodes ?? []).map((n) => ({
      name: n.name ?? '',
      version: n.version ?? '',
      address: n.address ?? '',
      state: n.state ?? 'UNKNOWN_NODE_STATE',
      ...(n.tls
        ? {
            tls: {
              enabled: n.tls.enabled ?? false,
              ...(n.tls.serverName ? { serverName: n.tls.serverName } : {}),
            },
          }
        : {}),
      uptimeNs: Number(n.uptimeNs ?? 0),
      numFlows: Number(n.numFlows ?? 0),
      maxFlows: Number(n.maxFlows ?? 0),
      seenFlows: Number(n.seenFlows ?? 0),
    }));
  }

  /** Closes the channel. */
  close(): void {
    this.#c.close();
  }

  #unary<T>(method: string): Promise<T> {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(this.#metadata)) md.set(k, v);
    return new Promise((resolve, reject) => {
      (
        this.#c[method] as (
          r: unknown,
          m: grpc.Metadata,
          o: grpc.CallOptions,
          cb: (e: grpc.ServiceError | null, r: T) => void,
        ) => void
      )({}, md, { deadline: Date.now() + this.#timeoutMs }, (err, r) =>
        err ? reject(this.#error(method, err)) : resolve(r),
      );
    });
  }

  #error(method: string, e: grpc.ServiceError): ObserverClientError {
    const unreachable =
      e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED;
    return new ObserverClientError(
      `hubble ${method} at ${this.address}: ${e.details || e.message}`,
      unreachable
        ? 'is Hubble enabled and the relay (or agent) running? see `tendril status`'
        : undefined,
      e,
    );
  }
}

/**
 * Follows flows from an observer: the function other parts (the UI) use.
 * Calls `onFlow` for every matching flow and `onEvent` for node_status and
 * lost_events; resolves when the signal aborts or the stream ends.
 */
export async function followFlows(
  client: ObserverClient,
  req: GetFlowsRequest,
  handlers: {
    onFlow: (r: GetFlowsResponse) => void;
    onEvent?: (r: GetFlowsResponse) => void;
    signal?: AbortSignal;
  },
): Promise<void> {
  for await (const r of client.getFlows(
    { ...req, follow: req.follow ?? true },
    handlers.signal ? { signal: handlers.signal } : {},
  )) {
    if (r.flow) handlers.onFlow(r);
    else handlers.onEvent?.(r);
  }
}

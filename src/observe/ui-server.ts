/**
 * `tendril hubble ui`: an HTTP server on localhost that serves the service
 * map page, its libraries straight from node_modules (cytoscape and the
 * fcose layout; nothing from a CDN), and a server-sent event stream of the
 * map and the flows, fed from any `AsyncIterable<Flow>` (the relay client,
 * or flows a test pushes).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type { Flow } from './flow.js';
import { ServiceMap, DEFAULT_RATE_WINDOW_MS } from './service-map.js';

/** Default port of `tendril hubble ui` (Hubble UI's port-forward default). */
export const DEFAULT_UI_PORT = 12000;

/** The UI server could not start. */
export class HubbleUiError extends Error {
  readonly code = 'HUBBLE_UI_FAILED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HubbleUiError';
  }
}

const require = createRequire(import.meta.url);

/** Browser files served under /vendor/, resolved from node_modules. */
const VENDOR: Record<string, string> = {
  'cytoscape.min.js': 'cytoscape/dist/cytoscape.min.js',
  'layout-base.js': 'layout-base/layout-base.js',
  'cose-base.js': 'cose-base/cose-base.js',
  'cytoscape-fcose.js': 'cytoscape-fcose/cytoscape-fcose.js',
};

const PAGE_FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
};

/** Options of the UI server. */
export interface HubbleUiOptions {
  /** Port on 127.0.0.1 (default 12000; 0 picks a free one). */
  port?: number;
  /** Host to bind (default 127.0.0.1: the UI is localhost only). */
  host?: string;
  /** Sliding window for edge rates. */
  windowMs?: number;
  /** How often the map is pushed while flows arrive, ms. */
  pushIntervalMs?: number;
  /** Recent flows kept for a newly opened page. */
  recentFlows?: number;
}

/** A running UI. */
export interface HubbleUi {
  readonly server: Server;
  readonly port: number;
  readonly url: string;
  readonly map: ServiceMap;
  /** Flows taken from the source so far. */
  flowsSeen(): number;
  /** Resolves when the flow source ends (or rejects with its error). */
  readonly done: Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts the UI server reading `flows` until it ends or the server closes.
 */
export async function startHubbleUi(
  flows: AsyncIterable<Flow>,
  opts: HubbleUiOptions = {},
): Promise<HubbleUi> {
  const port = opts.port ?? DEFAULT_UI_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new HubbleUiError(`--port ${port} is not a port number 0-65535`);
  const host = opts.host ?? '127.0.0.1';
  const pushIntervalMs = opts.pushIntervalMs ?? 500;
  const keep = opts.recentFlows ?? 1000;
  const map = new ServiceMap({ windowMs: opts.windowMs ?? DEFAULT_RATE_WINDOW_MS });
  const recent: Flow[] = [];
  const clients = new Set<ServerResponse>();
  let seen = 0;
  let dirty = false;

  const send = (res: ServerResponse, event: string, data: unknown): void => {
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  const pushMap = (): void => {
    const snap = map.snapshot();
    for (const c of clients) send(c, 'map', snap);
    dirty = false;
  };
  // Rates decay without new flows too, so push on a timer.
  let ticks = 0;
  const timer = setInterval(() => {
    ticks++;
    if (dirty || ticks % 4 === 0) pushMap();
  }, pushIntervalMs);
  timer.unref();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (req.method !== 'GET') {
      res.writeHead(405, { 'content-type': 'text/plain' }).end('only GET\n');
      return;
    }
    const page = PAGE_FILES[path];
    if (page) {
      const body = await readFile(new URL(`./ui/${page.file}`, import.meta.url));
      res.writeHead(200, { 'content-type': page.type, 'cache-control': 'no-store' }).end(body);
      return;
    }
    if (path.startsWith('/vendor/')) {
      const mod = VENDOR[path.slice('/vendor/'.length)];
      if (!mod) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      const body = await readFile(require.resolve(mod));
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(body);
      return;
    }
    if (path === '/api/map') {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify(map.snapshot()));
      return;
    }
    if (path === '/api/flows') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(recent));
      return;
    }
    if (path === '/api/events') {
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-store',
        connection: 'keep-alive',
      });
      clients.add(res);
      req.on('close', () => clients.delete(res));
      send(res, 'flows', recent);
      send(res, 'map', map.snapshot());
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`hubble ui: ${err instanceof Error ? err.message : String(err)}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new HubbleUiError(
          `cannot listen on ${host}:${port}: ${err.message}${err.code === 'EADDRINUSE' ? '; choose another with --port' : ''}`,
          { cause: err },
        ),
      ),
    );
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;

  let closed = false;
  const iterator = flows[Symbol.asyncIterator]();
  const done = (async () => {
    while (!closed) {
      const r = await iterator.next();
      if (r.done) break;
      const f = r.value;
      seen++;
      recent.push(f);
      if (recent.length > keep) recent.splice(0, recent.length - keep);
      if (map.add(f)) dirty = true;
      for (const c of clients) send(c, 'flow', f);
    }
  })();
  done.catch(() => undefined);

  return {
    server,
    port: bound,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}/`,
    map,
    flowsSeen: () => seen,
    done,
    async close() {
      closed = true;
      clearInterval(timer);
      void iterator.return?.()?.catch(() => undefined);
      for (const c of clients) c.end();
      clients.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * An AsyncIterable<Flow> that flows are pushed into (tests, and adapters of
 * callback sources such as FlowSource.subscribe). Unbounded only up to
 * `limit` queued flows; beyond, the oldest queued are dropped and counted.
 */
export class FlowPushQueue implements AsyncIterable<Flow> {
  readonly #queue: Flow[] = [];
  #waiter: ((r: IteratorResult<Flow>) => void) | undefined;
  #ended = false;
  dropped = 0;
  constructor(readonly limit = 10_000) {}

  push(f: Flow): void {
    if (this.#ended) return;
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w({ value: f, done: false });
      return;
    }
    this.#queue.push(f);
    if (this.#queue.length > this.limit) {
      this.#queue.shift();
      this.dropped++;
    }
  }

  end(): void {
    this.#ended = true;
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<Flow> {
    return {
      next: () => {
        const f = this.#queue.shift();
        if (f) return Promise.resolve({ value: f, done: false });
        if (this.#ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (this.#waiter = resolve));
      },
      return: () => {
        this.end();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/**
 * Adapts a FlowSource (an agent's ring) to an AsyncIterable<Flow>: the
 * ring's current flows first, then every new one. Call `end()` on the result
 * (or close the UI) to unsubscribe.
 */
export function flowSourceIterable(
  source: import('./flow.js').FlowSource,
  limit = 10_000,
): FlowPushQueue {
  const q = new FlowPushQueue(limit);
  for (const f of source.snapshot()) q.push(f);
  const unsub = source.subscribe((f) => q.push(f));
  const end = q.end.bind(q);
  q.end = () => {
    unsub();
    end();
  };
  return q;
}

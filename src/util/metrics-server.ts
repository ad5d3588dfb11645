/**
 * Serves a daemon's prom-client Registry as Prometheus text on
 * `prometheus-serve-addr` (`[host]:port`). Every daemon owns its Registry;
 * nothing here touches prom-client's global default registry.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';

/**
 * Documented default ports (Cilium's where they do not collide): agent 9962,
 * operator 9963, hubble 9965, hubble-relay 9966. The clustermesh-apiserver
 * (Cilium: 9962 in its own pod) and kvstoremesh run in the lab's control-plane
 * netns next to the agent, so they take 9964 and 9967.
 */
export const DEFAULT_METRICS_PORTS = {
  agent: 9962,
  operator: 9963,
  hubble: 9965,
  dns: 9153,
  clustermeshApiserver: 9964,
  kvstoremesh: 9967,
  hubbleRelay: 9966,
} as const;

/** The metrics address could not be parsed or bound. */
export class MetricsServeError extends Error {
  readonly code = 'METRICS_SERVE_FAILED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MetricsServeError';
  }
}

/** Parses a `prometheus-serve-addr` value: `:9962`, `127.0.0.1:9962`, `[::1]:9962`, or `9962`. */
export function parseServeAddr(addr: string): { host: string | undefined; port: number } {
  const m = /^(?:(?:\[([^\]]+)\]|([^:[\]]*)):)?(\d+)$/.exec(addr.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new MetricsServeError(
      `prometheus-serve-addr "${addr}" is not [host]:port with a port 0-65535; use e.g. ":9962" or "127.0.0.1:9962"`,
    );
  const host = m[1] ?? (m[2] || undefined);
  return { host, port };
}

/** A running metrics endpoint. */
export interface MetricsServer {
  readonly server: Server;
  /** The bound port (useful with port 0). */
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves `registries` (merged) as Prometheus text on `GET /metrics` at
 * `addr` (`prometheus-serve-addr` syntax).
 */
export async function serveMetrics(
  registries: Registry | Registry[],
  addr: string,
): Promise<MetricsServer> {
  const { host, port } = parseServeAddr(addr);
  const regs = Array.isArray(registries) ? registries : [registries];
  const merged = regs.length === 1 ? regs[0]! : Registry.merge(regs);
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res
        .writeHead(404, { 'content-type': 'text/plain' })
        .end('not found: metrics are at GET /metrics\n');
      return;
    }
    merged.metrics().then(
      (text) => res.writeHead(200, { 'content-type': merged.contentType }).end(text),
      (err: unknown) =>
        res
          .writeHead(500, { 'content-type': 'text/plain' })
          .end(`metrics failed: ${String(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(
        new MetricsServeError(`cannot serve metrics on ${addr}: ${err.message}`, { cause: err }),
      ),
    );
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  const shownHost = host === undefined ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return {
    server,
    port: bound,
    url: `http://${shownHost}:${bound}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

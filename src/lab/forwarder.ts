/**
 * The API forwarder: listens on a TCP address (the control plane's
 * <underlay ip>:6443, inside its network namespace) and pipes every
 * connection to the API server's Unix socket. Unix sockets are reached by
 * path, so they cross network namespaces: this is how nodes reach an API
 * server that listens in the root namespace.
 *
 * Kept only for lab clusters created before issue 14, whose saved daemon
 * specs still run forwarder-main.ts: a new cluster's API server listens in
 * the control plane's namespace itself (src/lab/apiserver/netns-listen.ts)
 * and no forwarder runs.
 */
import { connect, createServer, type Server } from 'node:net';
import type { Logger } from '../util/log.js';

/** A running forwarder. */
export interface Forwarder {
  server: Server;
  close(): Promise<void>;
}

/** Starts forwarding host:port -> socketPath. Resolves once listening; rejects on a listen error. */
export function startForwarder(options: {
  host: string;
  port: number;
  socketPath: string;
  log: Logger;
}): Promise<Forwarder> {
  const { host, port, socketPath, log } = options;
  const server = createServer((client) => {
    // No Nagle: a watch event the API server writes in pieces would otherwise
    // wait here for the client's (delayed, up to 40 ms) ACK of the piece before.
    client.setNoDelay(true);
    const upstream = connect(socketPath);
    client.pipe(upstream);
    upstream.pipe(client);
    const done = (err?: Error) => {
      if (err && (err as NodeJS.ErrnoException).code !== 'ECONNRESET')
        log.debug('forwarded connection failed', { err });
      client.destroy();
      upstream.destroy();
    };
    client.on('error', done);
    upstream.on('error', done);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve({ server, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}

/**
 * pods/portforward, as the kubelet serves it: a SPDY/3.1 session (./spdy.ts)
 * in which the client opens, per forwarded connection, an `error` stream and
 * a `data` stream carrying the headers `streamType`, `port` and `requestID`.
 * When both streams of a request are there, the server connects to
 * localhost:PORT inside the pod's network namespace (as containerd does: a
 * socket created in the pod's netns with setns(2), so servers bound to
 * 127.0.0.1 in the pod are reachable too), pipes bytes both ways on the data
 * stream, and reports a failure as text on the error stream, then closes
 * both. kubectl 1.31+ carries the session inside WebSocket binary messages
 * (subprotocol `SPDY/3.1+portforward.k8s.io`) and falls back to a plain
 * `Upgrade: SPDY/3.1` connection; both end here.
 */
import { Socket } from 'node:net';
import { withNetns } from '../../datapath/bpf/netns.js';
import { AF_INET, AF_INET6, rawTcpSocket } from './netns-listen.js';
import { RST, type SpdyStream } from './spdy.js';

/** The WebSocket subprotocol kubectl 1.31+ tunnels port-forward's SPDY in. */
export const PORTFORWARD_WS_PROTOCOL = 'SPDY/3.1+portforward.k8s.io';

/** The stream protocol (X-Stream-Protocol-Version) of port-forward over SPDY. */
export const PORTFORWARD_PROTOCOL = 'portforward.k8s.io';

/** How long the second stream of a pair may lag behind the first (the kubelet's streamCreationTimeout). */
export const PAIR_TIMEOUT_MS = 30_000;

/**
 * A TCP connection to host:port made from inside the network namespace
 * `netns` (a name under /run/netns or a path): the socket is created there
 * (setns on the main thread, socket(2), setns back), then connected by Node.
 */
export function connectInNetns(netns: string, host: string, port: number): Promise<Socket> {
  const v6 = host.includes(':');
  const fd = withNetns(netns, () => rawTcpSocket(v6 ? AF_INET6 : AF_INET));
  if (fd < 0) return Promise.reject(new Error(`socket() in network namespace ${netns} failed`));
  return new Promise((resolve, reject) => {
    const sock = new Socket({ fd, readable: true, writable: true, manualStart: true } as never);
    const timer = setTimeout(
      () => sock.destroy(new Error(`dial tcp ${hostPort(host, port)}: i/o timeout`)),
      10_000,
    );
    sock.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.connect(port, host, () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      resolve(sock);
    });
  });
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** How Go words a dial error (what the kubelet's message carries). */
function dialError(
  err: NodeJS.ErrnoException,
  family: 'tcp4' | 'tcp6',
  host: string,
  port: number,
): string {
  const what =
    err.code === 'ECONNREFUSED'
      ? 'connect: connection refused'
      : err.code === 'ENETUNREACH'
        ? 'connect: network is unreachable'
        : err.code === 'EADDRNOTAVAIL'
          ? 'connect: cannot assign requested address'
          : err.message;
  return `dial ${family} ${hostPort(host, port)}: ${what}`;
}

/** The pod a port-forward session serves. */
export interface PortForwardTarget {
  namespace: string;
  name: string;
  uid: string;
  /** The pod's network namespace (name or path). */
  netns: string;
}

/** Options of PortForwarder. */
export interface PortForwarderOptions {
  /** Connects to localhost:port in the pod (tests may swap it). Default: connectInNetns, IPv4 then IPv6. */
  connect?: (port: number) => Promise<Socket>;
  /** Stops reading from the client while a pod socket is full, and resumes. */
  pauseClient?: () => void;
  resumeClient?: () => void;
}

interface Pair {
  data?: SpdyStream;
  error?: SpdyStream;
  port?: number;
  timer: NodeJS.Timeout;
}

/** Serves the streams of one port-forward session. */
export class PortForwarder {
  private readonly pairs = new Map<string, Pair>();
  private readonly sockets = new Set<Socket>();
  private paused = 0;

  constructor(
    readonly target: PortForwardTarget,
    private readonly o: PortForwarderOptions = {},
  ) {}

  /** The session's onStream handler. */
  onStream = (s: SpdyStream): void => {
    s.reply();
    const type = s.header('streamtype');
    const id = s.header('requestid') ?? String(s.id);
    if (type !== 'data' && type !== 'error') {
      s.resetStream(RST.PROTOCOL_ERROR);
      return;
    }
    let pair = this.pairs.get(id);
    if (!pair) {
      const p: Pair = {
        timer: setTimeout(() => {
          this.pairs.delete(id);
          p.error?.write(
            Buffer.from(
              `timed out waiting for the ${p.data ? 'error' : 'data'} stream of request ${id}`,
            ),
          );
          p.error?.end();
          p.data?.resetStream(RST.CANCEL);
        }, PAIR_TIMEOUT_MS),
      };
      p.timer.unref();
      pair = p;
      this.pairs.set(id, pair);
    }
    if (pair[type]) {
      s.resetStream(RST.PROTOCOL_ERROR);
      return;
    }
    pair[type] = s;
    if (type === 'error') s.onData = () => {};
    const portText = s.header('port') ?? '';
    const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
    if (!(port >= 1 && port <= 65535)) {
      this.pairs.delete(id);
      clearTimeout(pair.timer);
      const msg = `invalid port header "${portText}" on ${type} stream of request ${id}: must be 1-65535`;
      if (pair.error) {
        pair.error.write(Buffer.from(msg));
        pair.error.end();
      }
      pair.data?.resetStream(RST.PROTOCOL_ERROR);
      return;
    }
    pair.port = port;
    if (pair.data && pair.error) {
      clearTimeout(pair.timer);
      this.pairs.delete(id);
      this.forward(pair.data, pair.error, port);
    }
  };

  private forward(data: SpdyStream, error: SpdyStream, port: number): void {
    const early: Buffer[] = [];
    let earlyEnd = false;
    let sock: Socket | undefined;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      data.end();
      error.end();
    };
    data.onData = (d) => {
      if (!sock) early.push(d);
      else this.toPod(sock, data, d);
    };
    data.onEnd = () => {
      if (sock) sock.end();
      else earlyEnd = true;
    };
    data.onReset = () => {
      sock?.destroy();
      done = true;
      error.end();
    };
    error.onReset = () => sock?.destroy();
    const t = this.target;
    (this.o.connect ?? ((p: number) => this.connectPod(p)))(port).then(
      (s) => {
        if (data.reset) {
          s.destroy();
          return;
        }
        sock = s;
        this.sockets.add(s);
        for (const d of early.splice(0)) this.toPod(s, data, d);
        if (earlyEnd) s.end();
        s.on('data', (d: Buffer) => {
          if (!data.write(d)) {
            // the transport is full: hold the pod's side until it drains
            s.pause();
            data.session.onDrain(() => s.resume());
          }
        });
        s.on('end', () => data.end());
        s.on('error', (err) => {
          if (!done && !data.reset)
            error.write(
              Buffer.from(
                `error forwarding port ${port} to pod ${t.namespace}/${t.name}, uid ${t.uid}: ${err.message}`,
              ),
            );
        });
        s.on('close', () => {
          this.sockets.delete(s);
          finish();
        });
      },
      (err: Error) => {
        if (!data.reset)
          error.write(
            Buffer.from(
              `error forwarding port ${port} to pod ${t.namespace}/${t.name}, uid ${t.uid}: ${err.message}`,
            ),
          );
        finish();
      },
    );
  }

  private toPod(sock: Socket, data: SpdyStream, d: Buffer): void {
    data.consumed(d.length);
    if (!sock.write(d) && this.o.pauseClient) {
      if (this.paused++ === 0) this.o.pauseClient();
      sock.once('drain', () => {
        if (--this.paused === 0) this.o.resumeClient?.();
      });
    }
  }

  /** localhost:port in the pod: 127.0.0.1, then ::1 (the error names both, as containerd's). */
  private async connectPod(port: number): Promise<Socket> {
    const ns = this.target.netns;
    try {
      return await connectInNetns(ns, '127.0.0.1', port);
    } catch (e4) {
      try {
        return await connectInNetns(ns, '::1', port);
      } catch (e6) {
        throw new Error(
          `failed to connect to localhost:${port} inside namespace "${ns}", IPv4: ${dialError(e4 as NodeJS.ErrnoException, 'tcp4', '127.0.0.1', port)} IPv6 ${dialError(e6 as NodeJS.ErrnoException, 'tcp6', '::1', port)} `,
        );
      }
    }
  }

  /** Closes every pod connection and pending pair. */
  close(): void {
    for (const p of this.pairs.values()) clearTimeout(p.timer);
    this.pairs.clear();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }
}

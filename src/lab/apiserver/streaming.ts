/**
 * The pods' streaming subresources of the lab API server, served from the
 * lab kubelet's work on this machine (the lab runs every node here):
 *
 * - `pods/log` reads the file the kubelet captures a container's output in
 *   ($TENDRIL_HOME/clusters/<c>/pods/<ns>_<pod>_<uid>/<container>[.previous].log):
 *   container, follow, previous, tailLines, limitBytes, and — from the
 *   kubelet's per-line time index (../kubelet/log-times.ts) — timestamps,
 *   sinceSeconds and sinceTime;
 * - `pods/exec` and `pods/attach` speak Kubernetes' WebSocket remote-command
 *   protocol (subprotocols v5.channel.k8s.io and v4.channel.k8s.io: every
 *   binary message starts with its channel byte, 0 stdin, 1 stdout, 2 stderr,
 *   3 error (a Status; a non-zero exit is reason NonZeroExitCode with an
 *   ExitCode cause), 4 resize; v5 adds 255 "close" carrying the channel
 *   closed), or the SPDY fallback (v4.channel.k8s.io, a SPDY stream per
 *   channel). exec runs the command the way the kubelet starts containers (in
 *   the pod's cgroup and network namespace, see ../kubelet/exec-plan.ts);
 * - `pods/portforward` is SPDY/3.1, inside WebSocket messages or on a plain
 *   SPDY upgrade (./portforward.ts, ./spdy.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { join } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import type { KubeObject } from '../../k8s/objects.js';
import { resourceForPath } from '../../k8s/resources.js';
import { ApiError, badRequest, failure } from '../../k8s/status.js';
import type { Logger } from '../../util/log.js';
import { followFile, readFrom } from '../follow.js';
import { podLogDir, tryLoadCluster, type LabCluster } from '../state.js';
import { execPlan, podNetnsOf } from '../kubelet/exec-plan.js';
import {
  LineTimesReader,
  hasLineTimes,
  parseRfc3339Nanos,
  rfc3339Nano,
} from '../kubelet/log-times.js';
import { PtyResizer, parseResize, ttyPlan, type TermSize } from './tty.js';
import { PORTFORWARD_PROTOCOL, PORTFORWARD_WS_PROTOCOL, PortForwarder } from './portforward.js';
import { RST, SpdySession, type SpdyStream, type SpdyTransport } from './spdy.js';
import type { PodContainer } from '../kubelet/pod-worker.js';
import { integerParam, limitedLogWriter } from './bounds.js';
import type { Registry } from './registry.js';
import { podDaemons, refuseStreamOnReflection } from '../daemon-pods.js';
import { serveDaemonLog, type DaemonLogContext } from './daemon-log.js';

/** Channel numbers of the remote-command protocol. */
export const CHANNEL = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4, close: 255 } as const;

/** The remote-command subprotocols served, preferred first. */
export const STREAM_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'] as const;

/** One frame: the channel byte, then the data. */
export function encodeFrame(channel: number, data: Buffer | string): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data) : data;
  const out = Buffer.allocUnsafe(body.length + 1);
  out[0] = channel;
  body.copy(out, 1);
  return out;
}

/** Splits a frame into channel and data; undefined for an empty message. */
export function decodeFrame(msg: Buffer): { channel: number; data: Buffer } | undefined {
  if (msg.length === 0) return undefined;
  return { channel: msg[0]!, data: msg.subarray(1) };
}

/** The Status sent on the error channel when a command ends with `code` (Kubernetes' shape). */
export function exitStatus(code: number, command: string[]): Record<string, unknown> {
  if (code === 0) return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success' };
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${code}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  };
}

/** Picks the subprotocol a client offered (Sec-WebSocket-Protocol), preferring v5. */
export function pickProtocol(offered: Iterable<string>): string | undefined {
  const set = new Set([...offered].map((p) => p.trim()));
  return STREAM_PROTOCOLS.find((p) => set.has(p));
}

const POD = resourceForPath('', 'v1', 'pods')!;

/** Options of PodStreams. */
export interface PodStreamsOptions {
  /** The lab cluster's name (whose pod directories and namespaces are used). */
  cluster: string;
  registry: Registry;
  log: Logger;
}

/** Serves pods/log, pods/exec and pods/attach. */
export class PodStreams {
  private readonly wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => pickProtocol(protocols) ?? false,
  });
  private readonly pfWss = (() => {
    const wss = new WebSocketServer({ noServer: true });
    wss.on('headers', (headers) =>
      headers.push(`Sec-WebSocket-Protocol: ${PORTFORWARD_WS_PROTOCOL}`),
    );
    return wss;
  })();
  private readonly open = new Set<() => void>();

  private readonly daemonLogs: DaemonLogContext;

  constructor(private readonly o: PodStreamsOptions) {
    this.daemonLogs = {
      cluster: o.cluster,
      peek: (ns, name) => o.registry.peek(POD, ns, name),
      open: this.open,
    };
  }

  /** Ends every open stream. */
  close(): void {
    for (const end of [...this.open]) end();
    this.wss.close();
    this.pfWss.close();
  }

  private pod(ns: string, name: string): KubeObject {
    return this.o.registry.get(POD, ns, name);
  }

  /** GET pods/log. */
  async serveLog(
    req: IncomingMessage,
    res: ServerResponse,
    ns: string,
    name: string,
    q: URLSearchParams,
  ): Promise<void> {
    const pod = this.pod(ns, name);
    const c = pickContainer(pod, q.get('container') ?? undefined);
    // one of Tendril's daemons the lab supervisor runs: its log file (./daemon-log.ts)
    const daemon = podDaemons(pod).get(c.name);
    if (daemon) return serveDaemonLog(this.daemonLogs, res, pod, c.name, daemon, q);
    const previous = isTrue(q.get('previous'));
    const follow = isTrue(q.get('follow'));
    const timestamps = isTrue(q.get('timestamps'));
    const tail = q.has('tailLines')
      ? integerParam('tailLines', q.get('tailLines')!, 0, 2 ** 31 - 1)
      : -1;
    const limit = q.has('limitBytes')
      ? integerParam('limitBytes', q.get('limitBytes')!, 1, 2 ** 31 - 1)
      : Infinity;
    const since = sinceNanos(q);
    const st = containerStatus(pod, c.name);
    const uid = pod.metadata.uid!;
    const path = join(
      podLogDir(this.o.cluster, ns, name, uid),
      previous ? `${c.name}.previous.log` : `${c.name}.log`,
    );
    if (!existsSync(path)) {
      if (previous)
        throw badRequest(`previous terminated container "${c.name}" in pod "${name}" not found`);
      const waiting = st?.state?.waiting?.reason ?? 'ContainerCreating';
      throw badRequest(`container "${c.name}" in pod "${name}" is waiting to start: ${waiting}`);
    }
    // per-line times come from the kubelet's index (../kubelet/log-times.ts)
    const lineTimes = hasLineTimes(path) ? new LineTimesReader(path) : undefined;
    if (!lineTimes) {
      if (timestamps)
        throw badRequest(
          'timestamps are not available for this log: it was written by a kubelet that recorded no per-line times (drop --timestamps)',
        );
      checkSince(
        since,
        previous ? undefined : (st?.state?.running?.startedAt ?? st?.state?.terminated?.startedAt),
      );
    }
    const byLine = lineTimes !== undefined && (timestamps || since !== undefined);
    const out = limitedLogWriter(res, limit);
    const write = (d: Buffer): boolean => out.write(d);
    // a line's time: the kubelet's record, else (written in the last moments,
    // not indexed yet) the file's modification time
    const timeOf = (offset: number): bigint =>
      lineTimes!.at(offset) ?? statSync(path, { bigint: true }).mtimeNs;
    const stamp = (line: Buffer, t: bigint): Buffer =>
      timestamps ? Buffer.concat([Buffer.from(`${rfc3339Nano(t)} `), line]) : line;
    const first = readFrom(path, 0);
    if (first && byLine) {
      lineTimes!.refresh();
      let lines = splitLines(first.data, 0).map((l) => ({ ...l, t: timeOf(l.offset) }));
      if (since !== undefined) lines = lines.filter((l) => l.t >= since);
      if (tail >= 0) lines = tail === 0 ? [] : lines.slice(-tail);
      for (const l of lines) if (!write(stamp(l.line, l.t))) break;
    } else if (first) write(tailBuffer(first.data, tail));
    if (!follow || previous || out.full) {
      res.end();
      return;
    }
    // following by line: an unfinished line waits for its end
    let pending = Buffer.alloc(0);
    let pendingAt = first?.offset ?? 0;
    // the first read ended inside a line, already sent: its rest goes out as it is
    let continuing =
      byLine && !!first && first.data.length > 0 && first.data[first.data.length - 1] !== 0x0a;
    const onFollow = (d: Buffer): boolean => {
      if (!byLine) return write(d);
      let buf = pending.length ? Buffer.concat([pending, d]) : d;
      let at = pendingAt;
      for (;;) {
        const nl = buf.indexOf(0x0a);
        if (nl < 0) break;
        const line = buf.subarray(0, nl + 1);
        let ok = true;
        if (continuing) {
          ok = write(line);
          continuing = false;
        } else {
          const t = timeOf(at);
          if (since === undefined || t >= since) ok = write(stamp(line, t));
        }
        if (!ok) return false;
        at += line.length;
        buf = buf.subarray(nl + 1);
      }
      pending = Buffer.from(buf);
      pendingAt = at;
      return true;
    };
    const ac = new AbortController();
    const end = () => ac.abort();
    this.open.add(end);
    // (not req's 'close': it fires once the request is read, not when the client leaves)
    res.on('close', end);
    const restarts = st?.restartCount ?? 0;
    try {
      await followFile(path, (d) => void (onFollow(d) || ac.abort()), {
        offset: first?.offset ?? 0,
        signal: ac.signal,
        intervalMs: 100,
        until: () => {
          // ends when the container ends (or restarts), or the pod is gone
          const p = this.o.registry.peek(POD, ns, name);
          if (!p || p.metadata.uid !== uid) return true;
          const s = containerStatus(p, c.name);
          return s?.state?.terminated !== undefined || (s?.restartCount ?? 0) !== restarts;
        },
      });
    } finally {
      this.open.delete(end);
      // a last line without its newline, as the container left it
      if (byLine && pending.length && !out.full) {
        const t = timeOf(pendingAt);
        if (continuing) write(pending);
        else if (since === undefined || t >= since) write(stamp(pending, t));
      }
      res.end();
    }
  }

  /**
   * An upgrade request for pods/exec or pods/attach: a WebSocket with a
   * remote-command subprotocol, else an HTTP error Status on the socket.
   */
  upgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    ns: string,
    name: string,
    sub: string,
    q: URLSearchParams,
  ): void {
    // Tendril's daemons' pods are supervised processes (src/lab/daemon-pods.ts), for any protocol
    refuseStreamOnReflection(this.o.registry.peek(POD, ns, name), sub);
    const upgradeTo = String(req.headers.upgrade ?? '').toLowerCase();
    if (sub === 'portforward') return this.portForward(req, socket, head, ns, name, upgradeTo);
    const spdy = upgradeTo.startsWith('spdy/3.1');
    if (spdy) {
      const versions = String(req.headers['x-stream-protocol-version'] ?? '')
        .split(',')
        .map((p) => p.trim());
      if (!versions.includes(SPDY_STREAM_PROTOCOL))
        throw badRequest(
          `no supported stream protocol among X-Stream-Protocol-Version "${versions.join(',')}": over SPDY use ${SPDY_STREAM_PROTOCOL}`,
        );
    } else if (upgradeTo !== 'websocket') {
      throw badRequest(
        `this lab API server streams ${sub} over WebSocket (subprotocols ${STREAM_PROTOCOLS.join(', ')}) or SPDY/3.1 (${SPDY_STREAM_PROTOCOL}), not "${req.headers.upgrade}"`,
      );
    } else {
      const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',');
      if (!pickProtocol(offered))
        throw badRequest(
          `no supported stream protocol among "${offered.join(',').trim()}": use one of ${STREAM_PROTOCOLS.join(', ')}`,
        );
    }
    if (sub !== 'exec' && sub !== 'attach')
      throw badRequest(`pods/${sub} is not served over WebSocket by the lab API server`);
    const pod = this.pod(ns, name);
    const c = pickContainer(pod, q.get('container') ?? undefined);
    const st = containerStatus(pod, c.name);
    if (pod.status?.phase !== 'Running' || !st?.state?.running)
      throw badRequest(
        `container ${c.name} is not running in pod ${name} (phase ${pod.status?.phase ?? 'Pending'})`,
      );
    const cluster = tryLoadCluster(this.o.cluster);
    if (!cluster)
      throw new ApiError(
        failure(
          503,
          'ServiceUnavailable',
          `lab cluster "${this.o.cluster}" has no state on this machine: no node serves its pods`,
        ),
      );
    const wantStdin = isTrue(q.get('stdin'));
    const tty = isTrue(q.get('tty'));
    const command = q.getAll('command');
    if (sub === 'exec' && command.length === 0)
      throw badRequest('you must specify at least 1 command');
    const begin = (io: RemoteIO, v5: boolean) => {
      if (sub === 'exec') {
        const plan = execPlan(cluster, pod, c, command, tty ? 'xterm' : undefined);
        this.runExec(io, plan, command, { stdin: wantStdin, tty });
      } else {
        const dir = podLogDir(this.o.cluster, ns, name, pod.metadata.uid!);
        this.runAttach(io, ns, name, pod.metadata.uid!, c, dir, { stdin: wantStdin, v5 });
      }
    };
    if (spdy) {
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n' +
          `X-Stream-Protocol-Version: ${SPDY_STREAM_PROTOCOL}\r\n\r\n`,
      );
      const expected = new Set(['error']);
      if (wantStdin) expected.add('stdin');
      if (q.get('stdout') !== 'false' && q.get('stdout') !== '0') expected.add('stdout');
      if (isTrue(q.get('stderr')) && !tty) expected.add('stderr');
      if (tty) expected.add('resize');
      spdyRemoteIO(socket, head, expected, (io) => begin(io, false));
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const v5 = ws.protocol === 'v5.channel.k8s.io';
      begin(wsRemoteIO(ws, v5), v5);
    });
  }

  /**
   * pods/portforward: SPDY/3.1 inside WebSocket binary messages (kubectl
   * 1.31+), or a plain `Upgrade: SPDY/3.1` connection.
   */
  private portForward(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    ns: string,
    name: string,
    upgradeTo: string,
  ): void {
    const spdy = upgradeTo.startsWith('spdy/3.1');
    if (upgradeTo === 'websocket') {
      const offered = String(req.headers['sec-websocket-protocol'] ?? '')
        .split(',')
        .map((p) => p.trim());
      if (!offered.includes(PORTFORWARD_WS_PROTOCOL))
        throw badRequest(
          `no supported port-forward protocol among "${offered.join(',')}": use ${PORTFORWARD_WS_PROTOCOL}`,
        );
    } else if (spdy) {
      const versions = String(req.headers['x-stream-protocol-version'] ?? '')
        .split(',')
        .map((p) => p.trim());
      if (!versions.includes(PORTFORWARD_PROTOCOL))
        throw badRequest(
          `no supported port-forward protocol among X-Stream-Protocol-Version "${versions.join(',')}": use ${PORTFORWARD_PROTOCOL}`,
        );
    } else
      throw badRequest(
        `pods/portforward is served over WebSocket (subprotocol ${PORTFORWARD_WS_PROTOCOL}) or SPDY/3.1, not "${req.headers.upgrade}"`,
      );
    const pod = this.pod(ns, name);
    if (pod.status?.phase !== 'Running')
      throw badRequest(
        `unable to forward port because pod is not running. Current status=${pod.status?.phase ?? 'Pending'}`,
      );
    const cluster = this.labCluster();
    const target = {
      namespace: ns,
      name,
      uid: pod.metadata.uid!,
      netns: podNetnsOf(cluster, pod),
    };
    const start = (transport: SpdyTransport, feed: (fn: (d: Buffer) => void) => void) => {
      const forwarder = new PortForwarder(target, {
        pauseClient: () => transport.pause?.(),
        resumeClient: () => transport.resume?.(),
      });
      const session = new SpdySession({
        transport,
        onStream: forwarder.onStream,
        onClose: (err) => {
          if (err) this.o.log.warn('port-forward session ended', { pod: `${ns}/${name}`, err });
          forwarder.close();
          this.open.delete(end);
        },
      });
      const end = () => session.goAway();
      this.open.add(end);
      feed((d) => session.receive(d));
      return session;
    };
    if (spdy) {
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n' +
          `X-Stream-Protocol-Version: ${PORTFORWARD_PROTOCOL}\r\n\r\n`,
      );
      const session = start(socketTransport(socket), (receive) => {
        if (head.length) receive(head);
        socket.on('data', receive);
      });
      socket.on('close', () => session.close());
      socket.on('error', () => session.close());
      return;
    }
    // `ws` refuses "SPDY/3.1+portforward.k8s.io" as a subprotocol ('/' is not
    // a token character in RFC 6455, though gorilla/websocket sends it): the
    // header is checked above, taken off the request, and answered through
    // the 'headers' hook of pfWss.
    delete req.headers['sec-websocket-protocol'];
    this.pfWss.handleUpgrade(req, socket, head, (ws) => {
      const session = start(wsTransport(ws), (receive) =>
        ws.on('message', (msg: Buffer | ArrayBuffer | Buffer[]) =>
          receive(Array.isArray(msg) ? Buffer.concat(msg) : Buffer.from(msg as Buffer)),
        ),
      );
      ws.on('close', () => session.close());
      ws.on('error', () => session.close());
    });
  }

  private labCluster(): LabCluster {
    const cluster = tryLoadCluster(this.o.cluster);
    if (!cluster)
      throw new ApiError(
        failure(
          503,
          'ServiceUnavailable',
          `lab cluster "${this.o.cluster}" has no state on this machine: no node serves its pods`,
        ),
      );
    return cluster;
  }

  private runExec(
    io: RemoteIO,
    plan: { argv: string[]; env: Record<string, string> },
    command: string[],
    o: { stdin: boolean; tty: boolean },
  ): void {
    if (!o.tty) {
      this.startExec(io, plan, command, o);
      return;
    }
    // a terminal: wait (briefly) for kubectl's first size, so the command starts with it
    let started = false;
    const early: Array<Buffer | null> = [];
    io.onStdin(
      (d) => early.push(d),
      () => early.push(null),
    );
    const start = (size?: TermSize) => {
      if (started) return;
      started = true;
      clearTimeout(timer);
      this.open.delete(cancel);
      const child = this.startExec(io, ttyPlan(plan, size), command, o, early);
      if (child?.pid === undefined) return;
      const resizer = new PtyResizer(child.pid);
      io.onResize((sz) => void resizer.resize(sz));
    };
    const timer = setTimeout(() => start(), 1000);
    const cancel = () => {
      started = true;
      clearTimeout(timer);
    };
    this.open.add(cancel);
    io.onClose(cancel);
    io.onResize((sz) => start(sz));
  }

  private startExec(
    io: RemoteIO,
    plan: { argv: string[]; env: Record<string, string> },
    command: string[],
    o: { stdin: boolean; tty: boolean },
    early: Array<Buffer | null> = [],
  ): ChildProcess | undefined {
    const child = spawn(plan.argv[0]!, plan.argv.slice(1), {
      env: plan.env,
      stdio: [o.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    // a terminal has one output stream (`script`'s own errors join it)
    child.stdout!.on('data', (d: Buffer) => io.send(CHANNEL.stdout, d));
    child.stderr!.on('data', (d: Buffer) => io.send(o.tty ? CHANNEL.stdout : CHANNEL.stderr, d));
    child.stdin?.on('error', () => {});
    const write = (d: Buffer) => {
      if (child.stdin && !child.stdin.destroyed) child.stdin.write(d);
    };
    for (const d of early) if (d) write(d);
    if (early.includes(null)) child.stdin?.end();
    else io.onStdin(write, () => child.stdin?.end());
    const end = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    this.open.add(end);
    io.onClose(end);
    let done = false;
    const finish = (status: Record<string, unknown>) => {
      if (done) return;
      done = true;
      this.open.delete(end);
      io.finish(status);
    };
    child.on('error', (err) =>
      finish({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: `error executing command [${command.join(' ')}]: ${err.message}`,
        reason: 'InternalError',
        code: 500,
      }),
    );
    child.on('close', (code, sig) => {
      const exit = code ?? 128 + (sig === 'SIGKILL' ? 9 : sig === 'SIGTERM' ? 15 : 0);
      // 125: the wrapper could not enter the pod (its sandbox is gone)
      finish(exitStatus(exit, command));
    });
    return child;
  }

  private runAttach(
    io: RemoteIO,
    ns: string,
    name: string,
    uid: string,
    c: PodContainer,
    dir: string,
    o: { stdin: boolean; v5: boolean },
  ): void {
    const path = join(dir, `${c.name}.log`);
    const ac = new AbortController();
    const fifo = join(dir, `${c.name}.stdin`);
    const stdin = o.stdin && existsSync(fifo) ? createWriteStream(fifo, { flags: 'a' }) : undefined;
    stdin?.on('error', () => {});
    io.onStdin(
      (d) => stdin?.write(d),
      () => stdin?.end(),
    );
    const end = () => ac.abort();
    this.open.add(end);
    io.onClose(end);
    let offset = 0;
    try {
      offset = statSync(path).size;
    } catch {
      offset = 0;
    }
    const restarts = containerStatus(this.pod(ns, name), c.name)?.restartCount ?? 0;
    let exit: number | undefined;
    void followFile(path, (d) => io.send(CHANNEL.stdout, d), {
      offset,
      signal: ac.signal,
      intervalMs: 100,
      until: () => {
        const p = this.o.registry.peek(POD, ns, name);
        if (!p || p.metadata.uid !== uid) return true;
        const s = containerStatus(p, c.name);
        const t =
          s?.state?.terminated ??
          (s?.restartCount !== restarts ? s?.lastState?.terminated : undefined);
        if (t) exit = Number(t.exitCode ?? 0);
        return t !== undefined;
      },
    }).finally(() => {
      this.open.delete(end);
      stdin?.end();
      io.finish(exit !== undefined ? exitStatus(exit, [c.name]) : undefined);
    });
  }
}

/** The remote-command protocol spoken over SPDY (streams per channel; the exit Status on the error stream). */
export const SPDY_STREAM_PROTOCOL = 'v4.channel.k8s.io';

/** One remote-command session's channels, whatever carries them (WebSocket or SPDY streams). */
interface RemoteIO {
  /** Output on stdout (1) or stderr (2). */
  send(channel: number, data: Buffer): void;
  /** Where stdin's data and its end go. */
  onStdin(data: (d: Buffer) => void, end: () => void): void;
  /** Where the resize channel's terminal sizes go. */
  onResize(fn: (size: TermSize) => void): void;
  /** Sends the closing Status (if any) and ends the session. */
  finish(status?: Record<string, unknown>): void;
  /** Called once if the client goes away first. */
  onClose(fn: () => void): void;
}

/** Remote-command channels as WebSocket messages with a channel byte (v4/v5). */
function wsRemoteIO(ws: WebSocket, v5: boolean): RemoteIO {
  let stdinData: (d: Buffer) => void = () => {};
  let stdinEnd: () => void = () => {};
  let resize: (s: TermSize) => void = () => {};
  ws.on('message', (msg: Buffer, isBinary: boolean) => {
    const f = decodeFrame(isBinary ? msg : Buffer.from(msg));
    if (!f) return;
    if (f.channel === CHANNEL.stdin) stdinData(f.data);
    else if (f.channel === CHANNEL.close && v5 && f.data[0] === CHANNEL.stdin) stdinEnd();
    else if (f.channel === CHANNEL.resize)
      for (const sz of parseResize(f.data.toString())) resize(sz);
  });
  return {
    send: (ch, d) => {
      if (ws.readyState === ws.OPEN) ws.send(encodeFrame(ch, d));
    },
    onStdin: (data, end) => {
      stdinData = data;
      stdinEnd = end;
    },
    onResize: (fn) => (resize = fn),
    finish: (status) => {
      if (ws.readyState !== ws.OPEN) return;
      if (status) ws.send(encodeFrame(CHANNEL.error, JSON.stringify(status)));
      ws.close(1000);
    },
    onClose: (fn) => {
      ws.on('close', fn);
      ws.on('error', fn);
    },
  };
}

/**
 * Remote-command channels as SPDY streams (the kubelet's v4 protocol over an
 * `Upgrade: SPDY/3.1` connection): the client opens one stream per channel
 * with header `streamType` (error, stdin, stdout, stderr, resize); the
 * session starts once all `expected` are there (30 s at most).
 */
function spdyRemoteIO(
  socket: Duplex,
  head: Buffer,
  expected: Set<string>,
  begin: (io: RemoteIO) => void,
): void {
  const streams = new Map<string, SpdyStream>();
  const closers: Array<() => void> = [];
  let started = false;
  let closed = false;
  let stdinData: (d: Buffer) => void = () => {};
  let stdinEnd: () => void = () => {};
  let resize: (s: TermSize) => void = () => {};
  let resizeText = '';
  const session = new SpdySession({
    transport: socketTransport(socket),
    onStream: (s) => {
      s.reply();
      const type = s.header('streamtype') ?? '';
      if (!expected.has(type) || streams.has(type)) {
        s.resetStream(RST.PROTOCOL_ERROR);
        return;
      }
      streams.set(type, s);
      if (type === 'stdin') {
        s.onData = (d) => {
          s.consumed(d.length);
          stdinData(d);
        };
        s.onEnd = () => stdinEnd();
      } else if (type === 'resize') {
        // JSON sizes, one per line
        s.onData = (d) => {
          s.consumed(d.length);
          resizeText += d.toString();
          const nl = resizeText.lastIndexOf('\n');
          if (nl < 0) return;
          for (const sz of parseResize(resizeText.slice(0, nl))) resize(sz);
          resizeText = resizeText.slice(nl + 1);
        };
      } else s.onData = (d) => s.consumed(d.length);
      if (streams.size === expected.size && !started) {
        started = true;
        clearTimeout(timer);
        begin(io);
      }
    },
    onClose: () => {
      closed = true;
      clearTimeout(timer);
      for (const fn of closers) fn();
    },
  });
  const io: RemoteIO = {
    send: (ch, d) => streams.get(ch === CHANNEL.stderr ? 'stderr' : 'stdout')?.write(d),
    onStdin: (data, end) => {
      stdinData = data;
      stdinEnd = end;
    },
    onResize: (fn) => (resize = fn),
    finish: (status) => {
      if (closed) return;
      for (const t of ['stdout', 'stderr', 'stdin', 'resize']) streams.get(t)?.end();
      const err = streams.get('error');
      // v4: a successful run leaves the error stream empty
      if (status && status.status !== 'Success') err?.write(Buffer.from(JSON.stringify(status)));
      err?.end();
      setTimeout(() => session.goAway(), 100).unref();
    },
    onClose: (fn) => closers.push(fn),
  };
  const timer = setTimeout(() => session.goAway(), 30_000);
  timer.unref();
  if (head.length) session.receive(head);
  socket.on('data', (d: Buffer) => session.receive(d));
  socket.on('close', () => session.close());
  socket.on('error', () => session.close());
}

/** A SPDY transport over a raw upgraded socket. */
function socketTransport(socket: Duplex): SpdyTransport {
  return {
    write: (d) => !socket.destroyed && socket.write(d),
    onDrain: (fn) => (socket.writableNeedDrain ? socket.once('drain', fn) : fn()),
    close: () => socket.end(),
    pause: () => socket.pause(),
    resume: () => socket.resume(),
  };
}

/** A SPDY transport over WebSocket binary messages (kubectl's tunneling connection). */
function wsTransport(ws: WebSocket): SpdyTransport {
  const HIGH = 1 << 20;
  const raw = () => (ws as unknown as { _socket?: Duplex })._socket;
  return {
    write: (d) => {
      if (ws.readyState !== ws.OPEN) return false;
      ws.send(d, { binary: true });
      return ws.bufferedAmount < HIGH;
    },
    onDrain: (fn) => {
      const s = raw();
      if (!s || ws.bufferedAmount === 0 || !s.writableNeedDrain) fn();
      else s.once('drain', fn);
    },
    close: () => ws.close(1000),
    pause: () => ws.pause(),
    resume: () => ws.resume(),
  };
}

interface ContainerStatusK8s {
  name: string;
  restartCount?: number;
  state?: {
    running?: { startedAt?: string };
    waiting?: { reason?: string };
    terminated?: { exitCode?: number; startedAt?: string };
  };
  lastState?: { terminated?: { exitCode?: number } };
}

function containerStatus(pod: KubeObject, name: string): ContainerStatusK8s | undefined {
  return ((pod.status?.containerStatuses ?? []) as ContainerStatusK8s[]).find(
    (s) => s.name === name,
  );
}

function isTrue(v: string | null): boolean {
  return v === 'true' || v === '1';
}

/** Picks the container as the kubelet does: the named one, else the only one (kubectl picks the default itself). */
export function pickContainer(pod: KubeObject, wanted: string | undefined): PodContainer {
  const containers = (pod.spec?.containers ?? []) as PodContainer[];
  const names = containers.map((c) => c.name);
  const podName = pod.metadata.name;
  if (wanted) {
    const c = containers.find((x) => x.name === wanted);
    if (!c) throw badRequest(`container ${wanted} is not valid for pod ${podName}`);
    return c;
  }
  const def = pod.metadata.annotations?.['kubectl.kubernetes.io/default-container'];
  const c =
    containers.find((x) => x.name === def) ?? (containers.length === 1 ? containers[0] : undefined);
  if (!c)
    throw badRequest(
      `a container name must be specified for pod ${podName}, choose one of: [${names.join(' ')}]`,
    );
  return c;
}

/** The last `n` lines of a buffer (n < 0: all). */
export function tailBuffer(data: Buffer, n: number): Buffer {
  if (n < 0) return data;
  const text = data.toString();
  const lines = text.split('\n');
  const trailing = text.endsWith('\n');
  if (trailing) lines.pop();
  const kept = n === 0 ? [] : lines.slice(-n);
  return Buffer.from(kept.join('\n') + (trailing && kept.length ? '\n' : ''));
}

/** The lines of `data` (the last one may lack its newline) with their file offsets, `base` being data's. */
export function splitLines(data: Buffer, base: number): Array<{ offset: number; line: Buffer }> {
  const out: Array<{ offset: number; line: Buffer }> = [];
  let start = 0;
  while (start < data.length) {
    const nl = data.indexOf(0x0a, start);
    const stop = nl < 0 ? data.length : nl + 1;
    out.push({ offset: base + start, line: data.subarray(start, stop) });
    start = stop;
  }
  return out;
}

/** sinceSeconds or sinceTime as a wall-clock time in nanoseconds (undefined: neither). */
export function sinceNanos(q: URLSearchParams, nowMs = Date.now()): bigint | undefined {
  if (q.has('sinceSeconds') && q.has('sinceTime'))
    throw badRequest('at most one of sinceTime or sinceSeconds may be specified');
  if (q.has('sinceSeconds'))
    return (
      BigInt(nowMs - integerParam('sinceSeconds', q.get('sinceSeconds')!, 1, 2 ** 31 - 1) * 1000) *
      1_000_000n
    );
  if (q.has('sinceTime')) {
    const t = parseRfc3339Nanos(q.get('sinceTime')!);
    if (t === undefined)
      throw badRequest(`sinceTime "${q.get('sinceTime')}" is not an RFC 3339 time`);
    return t;
  }
  return undefined;
}

/**
 * sinceSeconds/sinceTime on a log without per-line times (written by a
 * kubelet before they were recorded): served only when the window covers the
 * whole run of the container.
 */
function checkSince(since: bigint | undefined, startedAt: string | undefined): void {
  if (since === undefined) return;
  const started = startedAt ? Date.parse(startedAt) : NaN;
  if (Number.isFinite(started) && since <= BigInt(started) * 1_000_000n) return;
  throw badRequest(
    `--since/--since-time can only cover the whole run of the container for this log (it started ${startedAt ?? 'at an unknown time'}): it was written by a kubelet that recorded no per-line times`,
  );
}

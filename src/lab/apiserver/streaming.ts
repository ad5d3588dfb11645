/**
 * The pods' streaming subresources of the lab API server, served from the
 * lab kubelet's work on this machine (the lab runs every node here):
 *
 * - `pods/log` reads the file the kubelet captures a container's output in
 *   ($TENDRIL_HOME/clusters/<c>/pods/<ns>_<pod>_<uid>/<container>[.previous].log):
 *   container, follow, previous, tailLines, limitBytes, sinceSeconds/sinceTime
 *   (only when they cover the whole container run: the kubelet records no
 *   per-line times, so timestamps=true is refused);
 * - `pods/exec` and `pods/attach` speak Kubernetes' WebSocket remote-command
 *   protocol (subprotocols v5.channel.k8s.io and v4.channel.k8s.io: every
 *   binary message starts with its channel byte, 0 stdin, 1 stdout, 2 stderr,
 *   3 error (a Status; a non-zero exit is reason NonZeroExitCode with an
 *   ExitCode cause), 4 resize; v5 adds 255 "close" carrying the channel
 *   closed). exec runs the command the way the kubelet starts containers (in
 *   the pod's cgroup and network namespace, see ../kubelet/exec-plan.ts).
 *   SPDY upgrades are refused (kubectl 1.32 uses WebSocket first).
 */
import { spawn } from 'node:child_process';
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
import { podLogDir, tryLoadCluster } from '../state.js';
import { execPlan } from '../kubelet/exec-plan.js';
import type { PodContainer } from '../kubelet/pod-worker.js';
import { integerParam } from './bounds.js';
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
    if (isTrue(q.get('timestamps')))
      throw badRequest(
        'timestamps are not available: the lab kubelet records container output without per-line times (drop --timestamps)',
      );
    const tail = q.has('tailLines')
      ? integerParam('tailLines', q.get('tailLines')!, 0, 2 ** 31 - 1)
      : -1;
    const limit = q.has('limitBytes')
      ? integerParam('limitBytes', q.get('limitBytes')!, 1, 2 ** 31 - 1)
      : Infinity;
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
    checkSince(
      q,
      previous ? undefined : (st?.state?.running?.startedAt ?? st?.state?.terminated?.startedAt),
    );
    res.writeHead(200, {
      'Content-Type': 'text/plain',
      'Transfer-Encoding': 'chunked',
      'Cache-Control': 'no-cache, private',
    });
    let sent = 0;
    const write = (d: Buffer): boolean => {
      if (sent >= limit) return false;
      const part = sent + d.length > limit ? d.subarray(0, limit - sent) : d;
      sent += part.length;
      res.write(part);
      return sent < limit;
    };
    const first = readFrom(path, 0);
    if (first) write(tailBuffer(first.data, tail));
    if (!follow || previous || sent >= limit) {
      res.end();
      return;
    }
    const ac = new AbortController();
    const end = () => ac.abort();
    this.open.add(end);
    // (not req's 'close': it fires once the request is read, not when the client leaves)
    res.on('close', end);
    const restarts = st?.restartCount ?? 0;
    try {
      await followFile(path, (d) => void (write(d) || ac.abort()), {
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
    if (upgradeTo !== 'websocket')
      throw badRequest(
        `this lab API server streams ${sub} over WebSocket only (subprotocols ${STREAM_PROTOCOLS.join(', ')}), not "${req.headers.upgrade}" (SPDY is not implemented)`,
      );
    const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',');
    if (!pickProtocol(offered))
      throw badRequest(
        `no supported stream protocol among "${offered.join(',').trim()}": use one of ${STREAM_PROTOCOLS.join(', ')}`,
      );
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
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const v5 = ws.protocol === 'v5.channel.k8s.io';
      if (sub === 'exec') {
        const plan = execPlan(cluster, pod, c, command, tty ? 'xterm' : undefined);
        this.runExec(ws, plan, command, { stdin: wantStdin, tty, v5 });
      } else {
        const dir = podLogDir(this.o.cluster, ns, name, pod.metadata.uid!);
        this.runAttach(ws, ns, name, pod.metadata.uid!, c, dir, { stdin: wantStdin, v5 });
      }
    });
  }

  private runExec(
    ws: WebSocket,
    plan: { argv: string[]; env: Record<string, string> },
    command: string[],
    o: { stdin: boolean; tty: boolean; v5: boolean },
  ): void {
    const child = spawn(plan.argv[0]!, plan.argv.slice(1), {
      env: plan.env,
      stdio: [o.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    const send = (ch: number, d: Buffer | string) => {
      if (ws.readyState === ws.OPEN) ws.send(encodeFrame(ch, d));
    };
    // without a terminal, a tty session has one output stream: stderr joins stdout
    child.stdout!.on('data', (d: Buffer) => send(CHANNEL.stdout, d));
    child.stderr!.on('data', (d: Buffer) => send(o.tty ? CHANNEL.stdout : CHANNEL.stderr, d));
    child.stdin?.on('error', () => {});
    ws.on('message', (msg: Buffer, isBinary: boolean) => {
      const f = decodeFrame(isBinary ? msg : Buffer.from(msg));
      if (!f) return;
      if (f.channel === CHANNEL.stdin && child.stdin && !child.stdin.destroyed)
        child.stdin.write(f.data);
      else if (f.channel === CHANNEL.close && o.v5 && f.data[0] === CHANNEL.stdin)
        child.stdin?.end();
      // resize (4): no terminal is allocated, so there is nothing to resize
    });
    const end = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    this.open.add(end);
    ws.on('close', end);
    ws.on('error', end);
    let done = false;
    const finish = (status: Record<string, unknown>) => {
      if (done) return;
      done = true;
      this.open.delete(end);
      send(CHANNEL.error, JSON.stringify(status));
      ws.close(1000);
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
  }

  private runAttach(
    ws: WebSocket,
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
    ws.on('message', (msg: Buffer) => {
      const f = decodeFrame(msg);
      if (!f) return;
      if (f.channel === CHANNEL.stdin) stdin?.write(f.data);
      else if (f.channel === CHANNEL.close && f.data[0] === CHANNEL.stdin) stdin?.end();
    });
    const end = () => ac.abort();
    this.open.add(end);
    ws.on('close', end);
    let offset = 0;
    try {
      offset = statSync(path).size;
    } catch {
      offset = 0;
    }
    const restarts = containerStatus(this.pod(ns, name), c.name)?.restartCount ?? 0;
    let exit: number | undefined;
    void followFile(
      path,
      (d) => {
        if (ws.readyState === ws.OPEN) ws.send(encodeFrame(CHANNEL.stdout, d));
      },
      {
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
      },
    ).finally(() => {
      this.open.delete(end);
      stdin?.end();
      if (ws.readyState === ws.OPEN) {
        if (exit !== undefined)
          ws.send(encodeFrame(CHANNEL.error, JSON.stringify(exitStatus(exit, [c.name]))));
        ws.close(1000);
      }
    });
  }
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

/**
 * sinceSeconds/sinceTime: served only when the window covers the whole run
 * of the container (the log has no per-line times to cut it elsewhere).
 */
function checkSince(q: URLSearchParams, startedAt: string | undefined): void {
  let since: number | undefined;
  if (q.has('sinceSeconds'))
    since =
      Date.now() - integerParam('sinceSeconds', q.get('sinceSeconds')!, 1, 2 ** 31 - 1) * 1000;
  else if (q.has('sinceTime')) {
    since = Date.parse(q.get('sinceTime')!);
    if (!Number.isFinite(since))
      throw badRequest(`sinceTime "${q.get('sinceTime')}" is not an RFC 3339 time`);
  }
  if (since === undefined) return;
  const started = startedAt ? Date.parse(startedAt) : NaN;
  if (Number.isFinite(started) && since <= started) return;
  throw badRequest(
    `--since/--since-time can only cover the whole run of the container here (it started ${startedAt ?? 'at an unknown time'}): the lab kubelet records container output without per-line times`,
  );
}

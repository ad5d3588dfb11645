/**
 * `pods/log` of a reflected pod (one of Tendril's daemons the lab supervisor
 * runs, src/lab/daemon-pods.ts): the container's output is the daemon's run
 * in its log file $TENDRIL_HOME/clusters/<c>/logs/<daemon>.log, where the
 * supervisor marks every start and exit. The current container is the last
 * run, `previous` the one before; `follow` streams until the daemon exits or
 * restarts (its next start mark), or the pod goes.
 */
import type { ServerResponse } from 'node:http';
import type { KubeObject } from '../../k8s/objects.js';
import { badRequest } from '../../k8s/status.js';
import { daemonLogPath } from '../daemons.js';
import { followFile } from '../follow.js';
import { readDaemonRun } from '../daemon-pods.js';
import { integerParam, limitedLogWriter } from './bounds.js';

/** What the log server needs from the API server. */
export interface DaemonLogContext {
  cluster: string;
  /** The pod as stored now (undefined when gone). */
  peek(ns: string, name: string): KubeObject | undefined;
  /** Registers an open stream's stop function (the server ends them all at close). */
  open: Set<() => void>;
}

const SUPERVISOR_LINE = /^--- \d{4}-\d\d-\d\dT[0-9:.]+Z supervisor: /;

function isTrue(v: string | null): boolean {
  return v === 'true' || v === '1';
}

/** The last `n` lines (n < 0: all). */
function tail(data: Buffer, n: number): Buffer {
  if (n < 0) return data;
  const text = data.toString();
  const lines = text.split('\n');
  const trailing = text.endsWith('\n');
  if (trailing) lines.pop();
  const kept = n === 0 ? [] : lines.slice(-n);
  return Buffer.from(kept.join('\n') + (trailing && kept.length ? '\n' : ''));
}

/**
 * Serves GET pods/log for container `container` of a reflected pod whose
 * daemon is `daemon`.
 * @throws ApiError 400 for timestamps, a window that does not cover the run, or no such run.
 */
export async function serveDaemonLog(
  ctx: DaemonLogContext,
  res: ServerResponse,
  pod: KubeObject,
  container: string,
  daemon: string,
  q: URLSearchParams,
): Promise<void> {
  const ns = pod.metadata.namespace!;
  const name = pod.metadata.name!;
  const uid = pod.metadata.uid;
  const previous = isTrue(q.get('previous'));
  const follow = isTrue(q.get('follow'));
  if (isTrue(q.get('timestamps')))
    throw badRequest(
      `timestamps are not available for pod ${name}: it reflects the lab daemon "${daemon}", whose log the supervisor keeps without per-line times (drop --timestamps)`,
    );
  const tailLines = q.has('tailLines')
    ? integerParam('tailLines', q.get('tailLines')!, 0, 2 ** 31 - 1)
    : -1;
  const limit = q.has('limitBytes')
    ? integerParam('limitBytes', q.get('limitBytes')!, 1, 2 ** 31 - 1)
    : Infinity;
  const path = daemonLogPath(ctx.cluster, daemon);
  const run = readDaemonRun(path, daemon, previous ? 'previous' : 'current');
  const startedAt = statusOf(pod, container)?.state?.running?.startedAt;
  checkSince(q, previous ? undefined : startedAt);
  const out = limitedLogWriter(res, limit);
  const write = (d: Buffer): boolean => out.write(d);
  write(tail(run.data, tailLines));
  if (!follow || previous || out.full) {
    res.end();
    return;
  }
  const ac = new AbortController();
  const end = () => ac.abort();
  ctx.open.add(end);
  res.on('close', end);
  const restarts = statusOf(pod, container)?.restartCount ?? 0;
  let partial = '';
  try {
    await followFile(
      path,
      (d) => {
        if (ac.signal.aborted) return;
        // whole lines only: a supervisor line ends this run (the daemon exited or restarted)
        const lines = (partial + d.toString()).split(/(?<=\n)/);
        partial = lines.at(-1)!.endsWith('\n') ? '' : lines.pop()!;
        for (const line of lines) {
          if (SUPERVISOR_LINE.test(line)) return ac.abort();
          if (!write(Buffer.from(line))) return ac.abort();
        }
      },
      {
        offset: run.end,
        signal: ac.signal,
        intervalMs: 100,
        until: () => {
          const p = ctx.peek(ns, name);
          if (!p || p.metadata.uid !== uid) return true;
          const s = statusOf(p, container);
          return s?.state?.terminated !== undefined || (s?.restartCount ?? 0) !== restarts;
        },
      },
    );
    if (partial && !SUPERVISOR_LINE.test(partial)) write(Buffer.from(partial));
  } finally {
    ctx.open.delete(end);
    res.end();
  }
}

interface ContainerStatus {
  name: string;
  restartCount?: number;
  state?: { running?: { startedAt?: string }; terminated?: unknown };
}

function statusOf(pod: KubeObject, name: string): ContainerStatus | undefined {
  return ((pod.status?.containerStatuses ?? []) as ContainerStatus[]).find((s) => s.name === name);
}

/** sinceSeconds/sinceTime are served when they cover the whole run (no per-line times). */
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
    `--since/--since-time can only cover the whole run of a lab daemon (it started ${startedAt ?? 'at an unknown time'}): the supervisor keeps its log without per-line times`,
  );
}

/**
 * Lab daemons: background processes of a lab cluster (API server,
 * etcd, kubelets, agents...) run by the cluster's supervisor. STABLE API: the
 * agent installer and clustermesh code add their own daemons with addDaemon.
 *
 * A daemon is a spec file $TENDRIL_HOME/clusters/<cluster>/daemons/<name>.json.
 * The supervisor (one detached process per cluster, see supervisor.ts) notices
 * added, changed and removed spec files (fs.watch plus a rescan every 2 s),
 * starts each daemon with its output appended to logs/<name>.log and its pid in
 * pids/<name>.pid, restarts it per its policy with backoff (0.5 s doubling to
 * 30 s, reset after 10 s of running) and stops a removed one (SIGTERM, then
 * SIGKILL after stopTimeoutMs).
 */
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  closeSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { TendrilError } from '../util/errors.js';
import { clusterDir } from '../util/paths.js';
import { isAlive, procStartTime, signal, sleep, waitGone } from './proc.js';
import { writeFileAtomicSync as writeAtomic } from '../util/atomic-write.js';

/** When the supervisor restarts a daemon that exited. */
export type DaemonRestart = 'always' | 'on-failure' | 'never';

/** What to run. Paths in `command` and `cwd` must be absolute (daemons run from any cwd). */
export interface DaemonSpec {
  /** File-name-safe name: [a-z0-9][a-z0-9._-]* (e.g. "apiserver", "kubelet-cluster1-worker"). */
  name: string;
  /** argv; command[0] is an absolute path or a program on PATH. */
  command: string[];
  /** Extra environment (added to the supervisor's, which carries TENDRIL_HOME and TENDRIL_LAB_PREFIX). */
  env?: Record<string, string>;
  /** Run inside this network namespace (/run/netns/<netns>) through `nsenter --net=`; bpffs and cgroup2 stay visible. */
  netns?: string;
  /** Working directory (absolute); default the project root. */
  cwd?: string;
  restart: DaemonRestart;
  /** Grace period between SIGTERM and SIGKILL when stopping; default 5000 ms. */
  stopTimeoutMs?: number;
  /**
   * Show this daemon in the cluster's API server as a kube-system pod of this
   * workload (src/lab/daemon-reflector.ts); the install wing sets it for
   * Tendril's daemons (src/install/lab-reflection.ts).
   */
  reflect?: DaemonReflect;
}

/** The workload a supervised daemon is shown as, and its container there. */
export interface DaemonReflect {
  kind: 'Deployment' | 'DaemonSet';
  /** The workload as rendered for a real cluster (apps/v1, namespace kube-system): names, labels, template. */
  workload: {
    apiVersion: string;
    kind: string;
    metadata: { name?: string; namespace?: string; labels?: Record<string, string> };
    spec: Record<string, unknown>;
  };
  /** The name of this daemon's container in the workload's pod template. */
  container: string;
}

/** Last exit of a daemon. */
export interface DaemonExit {
  code: number | null;
  signal: string | null;
  at: string;
}

/** A daemon's state as `daemonStatus` reports it. */
export interface DaemonStatus {
  name: string;
  /** pid of the running process (undefined when not running). */
  pid: number | undefined;
  running: boolean;
  /** Times the supervisor restarted it after an exit. */
  restarts: number;
  /** When the current (or last) process started (ISO time). */
  startedAt: string | undefined;
  logPath: string;
  lastExit: DaemonExit | undefined;
  restart: DaemonRestart;
  /** The supervisor has given up on it (restart policy says no more). */
  finished: boolean;
}

/** What the supervisor records per daemon in daemon-status/<name>.json. */
export interface DaemonRecord {
  pid?: number;
  startTime?: number;
  restarts: number;
  startedAt?: string;
  lastExit?: DaemonExit;
  finished: boolean;
}

const root = fileURLToPath(new URL('../..', import.meta.url));

/** The project root (absolute), for building daemon commands. */
export function projectRoot(): string {
  return root;
}

let tsxLoader: string | undefined;

/** file:// URL of tsx's ESM loader, so `node --import <it>` works from any cwd. */
export function tsxLoaderURL(): string {
  if (!tsxLoader) {
    const require = createRequire(import.meta.url);
    tsxLoader = pathToFileURL(
      join(dirname(require.resolve('tsx/package.json')), 'dist', 'loader.mjs'),
    ).href;
  }
  return tsxLoader;
}

/**
 * argv that runs a TypeScript entry point of this project with node + tsx,
 * with absolute paths: `nodeCommand('src/lab/apiserver/main.ts', ['--cluster', 'c1'])`.
 */
export function nodeCommand(
  script: string,
  args: string[] = [],
  options: { nodeFlags?: string[] } = {},
): string[] {
  const abs = isAbsolute(script) ? script : join(root, script);
  return [process.execPath, ...(options.nodeFlags ?? []), '--import', tsxLoaderURL(), abs, ...args];
}

/** Directory of a cluster's daemon spec files. */
export function daemonsDir(cluster: string): string {
  return join(clusterDir(cluster), 'daemons');
}
/** Directory of daemons' pid files. */
export function pidsDir(cluster: string): string {
  return join(clusterDir(cluster), 'pids');
}
/** Directory of daemons' logs. */
export function logsDir(cluster: string): string {
  return join(clusterDir(cluster), 'logs');
}
/** Directory of the supervisor's per-daemon records. */
export function recordsDir(cluster: string): string {
  return join(clusterDir(cluster), 'daemon-status');
}
/** A daemon's log file. */
export function daemonLogPath(cluster: string, name: string): string {
  return join(logsDir(cluster), `${name}.log`);
}
/** A daemon's pid file. */
export function daemonPidPath(cluster: string, name: string): string {
  return join(pidsDir(cluster), `${name}.pid`);
}

/** Checks a daemon spec; throws LAB_DAEMON_INVALID naming the field. */
export function validateDaemonSpec(spec: DaemonSpec): void {
  const bad = (field: string, why: string) =>
    new TendrilError(
      'LAB_DAEMON_INVALID',
      `daemon spec ${JSON.stringify(spec?.name ?? '?')}: ${field} ${why}`,
    );
  if (typeof spec !== 'object' || spec === null) throw bad('spec', 'must be an object');
  if (typeof spec.name !== 'string' || !/^[a-z0-9][a-z0-9._-]{0,99}$/.test(spec.name)) {
    throw bad('name', 'must match [a-z0-9][a-z0-9._-]* (at most 100 characters)');
  }
  if (spec.name === 'supervisor') throw bad('name', 'is reserved');
  if (
    !Array.isArray(spec.command) ||
    spec.command.length === 0 ||
    spec.command.some((c) => typeof c !== 'string')
  ) {
    throw bad('command', 'must be a non-empty array of strings');
  }
  if (!['always', 'on-failure', 'never'].includes(spec.restart))
    throw bad('restart', "must be 'always', 'on-failure' or 'never'");
  if (spec.cwd !== undefined && !isAbsolute(spec.cwd)) throw bad('cwd', 'must be an absolute path');
  if (
    spec.netns !== undefined &&
    (typeof spec.netns !== 'string' || !/^[A-Za-z0-9._-]+$/.test(spec.netns))
  ) {
    throw bad('netns', 'must be a network namespace name');
  }
  if (
    spec.env !== undefined &&
    (typeof spec.env !== 'object' || Object.values(spec.env).some((v) => typeof v !== 'string'))
  ) {
    throw bad('env', 'must map names to strings');
  }
  const r = spec.reflect;
  if (
    r !== undefined &&
    (typeof r !== 'object' ||
      r === null ||
      !['Deployment', 'DaemonSet'].includes(r.kind) ||
      typeof r.container !== 'string' ||
      typeof r.workload?.metadata?.name !== 'string' ||
      typeof r.workload?.spec !== 'object')
  ) {
    throw bad(
      'reflect',
      'must name a Deployment or DaemonSet workload (with metadata.name and spec) and a container',
    );
  }
}

/**
 * Adds (or replaces) a daemon: writes its spec file; the cluster's supervisor
 * starts it (or restarts it with the new spec) within moments. Throws
 * LAB_DAEMON_INVALID for a bad spec.
 */
export function addDaemon(cluster: string, spec: DaemonSpec): void {
  validateDaemonSpec(spec);
  writeAtomic(
    join(daemonsDir(cluster), `${spec.name}.json`),
    JSON.stringify(spec, null, 2) + '\n',
    {
      mode: 0o600,
    },
  );
}

/** The daemon specs of a cluster (unparseable files are skipped). */
export function listDaemonSpecs(cluster: string): DaemonSpec[] {
  const dir = daemonsDir(cluster);
  if (!existsSync(dir)) return [];
  const out: DaemonSpec[] = [];
  for (const f of readdirSync(dir).sort()) {
    if (!f.endsWith('.json')) continue;
    try {
      const spec = JSON.parse(readFileSync(join(dir, f), 'utf8')) as DaemonSpec;
      validateDaemonSpec(spec);
      if (`${spec.name}.json` === f) out.push(spec);
    } catch {
      // half-written or invalid: the supervisor logs it
    }
  }
  return out;
}

/** Reads the supervisor's record of a daemon. */
export function readDaemonRecord(cluster: string, name: string): DaemonRecord | undefined {
  try {
    return JSON.parse(
      readFileSync(join(recordsDir(cluster), `${name}.json`), 'utf8'),
    ) as DaemonRecord;
  } catch {
    return undefined;
  }
}

/** Writes the supervisor's record of a daemon (supervisor use). */
export function writeDaemonRecord(cluster: string, name: string, rec: DaemonRecord): void {
  writeAtomic(join(recordsDir(cluster), `${name}.json`), JSON.stringify(rec) + '\n');
}

/**
 * Removes a daemon: deletes its spec file; the supervisor stops it. With
 * `wait`, resolves once its process is gone (throws LAB_DAEMON_TIMEOUT after
 * timeoutMs, default 15 s). Removing an unknown daemon is not an error.
 */
export async function removeDaemon(
  cluster: string,
  name: string,
  options: { wait?: boolean; timeoutMs?: number } = {},
): Promise<void> {
  const rec = readDaemonRecord(cluster, name);
  rmSync(join(daemonsDir(cluster), `${name}.json`), { force: true });
  if (!options.wait || !rec?.pid) return;
  const timeoutMs = options.timeoutMs ?? 15_000;
  if (!(await waitGone(rec.pid, timeoutMs, rec.startTime))) {
    throw new TendrilError(
      'LAB_DAEMON_TIMEOUT',
      `daemon "${name}" of lab cluster "${cluster}" still runs ${timeoutMs} ms after removal`,
      {
        hint: `is the supervisor running? see \`tendril lab list\`; its pid is in ${daemonPidPath(cluster, name)}`,
      },
    );
  }
}

/** Status of every daemon of a cluster (those with a spec file), by name. Never throws for a missing cluster (empty list). */
export function daemonStatus(cluster: string): DaemonStatus[] {
  return listDaemonSpecs(cluster).map((spec) => {
    const rec = readDaemonRecord(cluster, spec.name);
    const running = rec?.pid !== undefined && isAlive(rec.pid, rec.startTime);
    return {
      name: spec.name,
      pid: running ? rec!.pid : undefined,
      running,
      restarts: rec?.restarts ?? 0,
      startedAt: rec?.startedAt,
      logPath: daemonLogPath(cluster, spec.name),
      lastExit: rec?.lastExit,
      restart: spec.restart,
      finished: rec?.finished ?? false,
    };
  });
}

/**
 * Waits until the daemon is running (and has been for ~200 ms, so an instant
 * crash is not taken for a start). Throws LAB_DAEMON_TIMEOUT with the tail of
 * its log after timeoutMs.
 */
export async function waitDaemonRunning(
  cluster: string,
  name: string,
  timeoutMs: number,
): Promise<DaemonStatus> {
  const deadline = Date.now() + timeoutMs;
  let seen: { pid: number; since: number } | undefined;
  for (;;) {
    const st = daemonStatus(cluster).find((d) => d.name === name);
    if (st?.running && st.pid !== undefined) {
      if (seen?.pid !== st.pid) seen = { pid: st.pid, since: Date.now() };
      else if (Date.now() - seen.since >= 200) return st;
    } else {
      seen = undefined;
    }
    if (Date.now() >= deadline) {
      throw new TendrilError(
        'LAB_DAEMON_TIMEOUT',
        `daemon "${name}" of lab cluster "${cluster}" is not running after ${timeoutMs} ms`,
        {
          hint: `its log ends with:\n${logTail(daemonLogPath(cluster, name), 10)}`,
        },
      );
    }
    await sleep(50);
  }
}

/** The last `lines` lines of a file ('' when missing). */
export function logTail(path: string, lines: number): string {
  try {
    const text = readFileSync(path, 'utf8');
    return text
      .split('\n')
      .slice(-lines - 1)
      .join('\n');
  } catch {
    return '(no log)';
  }
}

// ---- the supervisor process ------------------------------------------------

interface SupervisorRecord {
  pid: number;
  startTime: number | undefined;
}

function supervisorRecordPath(cluster: string): string {
  return join(clusterDir(cluster), 'supervisor.json');
}
/** The supervisor's pid file. */
export function supervisorPidPath(cluster: string): string {
  return join(pidsDir(cluster), 'supervisor.pid');
}

/** Records the running supervisor (supervisor use). */
export function writeSupervisorRecord(cluster: string): void {
  const rec: SupervisorRecord = { pid: process.pid, startTime: procStartTime(process.pid) };
  writeAtomic(supervisorRecordPath(cluster), JSON.stringify(rec) + '\n');
  writeAtomic(supervisorPidPath(cluster), `${process.pid}\n`);
}

/** pid of the cluster's running supervisor, or undefined. */
export function supervisorPid(cluster: string): number | undefined {
  try {
    const rec = JSON.parse(readFileSync(supervisorRecordPath(cluster), 'utf8')) as SupervisorRecord;
    return isAlive(rec.pid, rec.startTime) ? rec.pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts the cluster's supervisor (detached, survives the CLI) unless it
 * runs; resolves with its pid once it is up. Throws LAB_SUPERVISOR_START.
 */
export async function startSupervisor(cluster: string, timeoutMs = 10_000): Promise<number> {
  const running = supervisorPid(cluster);
  if (running) return running;
  for (const d of [logsDir(cluster), pidsDir(cluster), daemonsDir(cluster), recordsDir(cluster)])
    mkdirSync(d, { recursive: true });
  const logPath = join(logsDir(cluster), 'supervisor.log');
  const fd = openSync(logPath, 'a', 0o600);
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (env.TENDRIL_HOME) env.TENDRIL_HOME = resolve(env.TENDRIL_HOME);
  const [cmd, ...args] = nodeCommand('src/lab/supervisor-main.ts', ['--cluster', cluster]);
  const child = spawn(cmd!, args, { cwd: root, env, stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  child.unref();
  const pid = child.pid;
  if (pid === undefined)
    throw new TendrilError(
      'LAB_SUPERVISOR_START',
      `cannot start the supervisor of lab cluster "${cluster}"`,
    );
  const deadline = Date.now() + timeoutMs;
  while (supervisorPid(cluster) !== pid) {
    if (child.exitCode !== null || !isAlive(pid) || Date.now() > deadline) {
      throw new TendrilError(
        'LAB_SUPERVISOR_START',
        `the supervisor of lab cluster "${cluster}" did not start`,
        {
          hint: `its log ends with:\n${logTail(logPath, 10)}`,
        },
      );
    }
    await sleep(25);
  }
  return pid;
}

/**
 * Stops the cluster's supervisor: SIGTERM (it then stops its daemons), SIGKILL
 * after timeoutMs. Does nothing when it is not running.
 */
export async function stopSupervisor(cluster: string, timeoutMs = 10_000): Promise<void> {
  let rec: SupervisorRecord;
  try {
    rec = JSON.parse(readFileSync(supervisorRecordPath(cluster), 'utf8')) as SupervisorRecord;
  } catch {
    return;
  }
  if (isAlive(rec.pid, rec.startTime)) {
    signal(rec.pid, 'SIGTERM');
    if (!(await waitGone(rec.pid, timeoutMs, rec.startTime))) {
      signal(rec.pid, 'SIGKILL');
      await waitGone(rec.pid, 2000, rec.startTime);
    }
  }
  rmSync(supervisorRecordPath(cluster), { force: true });
  rmSync(supervisorPidPath(cluster), { force: true });
}

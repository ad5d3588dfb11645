/**
 * The per-cluster daemon supervisor: runs the daemon specs in
 * clusters/<name>/daemons/, restarts them per policy with backoff, and follows
 * added / changed / removed spec files. One process per lab cluster, started
 * detached by `lab create` (see startSupervisor in daemons.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  watch,
  writeSync,
  type FSWatcher,
} from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../util/log.js';
import {
  daemonLogPath,
  daemonPidPath,
  daemonsDir,
  logsDir,
  pidsDir,
  projectRoot,
  readDaemonRecord,
  recordsDir,
  validateDaemonSpec,
  writeDaemonRecord,
  type DaemonRecord,
  type DaemonSpec,
} from './daemons.js';
import { procStartTime, terminate } from './proc.js';
import { writeFileSync } from 'node:fs';
import type { SupervisedDaemon } from './daemon-reflection.js';

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;
const STABLE_MS = 10_000;
const RESCAN_MS = 2000;

interface Managed {
  spec: DaemonSpec;
  text: string;
  child?: ChildProcess;
  rec: DaemonRecord;
  backoffMs: number;
  timer?: NodeJS.Timeout;
  /** Being stopped on purpose (removed, changed or supervisor shutdown): no restart. */
  stopping: boolean;
  startedMs: number;
  exited?: Promise<void>;
}

/** Runs one cluster's daemons until stop(). */
export class Supervisor {
  private readonly daemons = new Map<string, Managed>();
  private watcher?: FSWatcher;
  private interval?: NodeJS.Timeout;
  private debounce?: NodeJS.Timeout;
  private closed = false;
  /** Called after every start, exit and stop of a daemon (the reflector's kick). */
  onChange: () => void = () => {};

  constructor(
    private readonly cluster: string,
    private readonly log: Logger,
  ) {}

  /** Every daemon it runs, with its record (what the kube-system reflection shows). */
  snapshot(): SupervisedDaemon[] {
    return [...this.daemons.values()].map((m) => ({
      name: m.spec.name,
      spec: m.spec,
      running: m.child !== undefined && m.child.exitCode === null && m.child.signalCode === null,
      ...(m.rec.pid ? { pid: m.rec.pid } : {}),
      ...(m.rec.startedAt ? { startedAt: m.rec.startedAt } : {}),
      restarts: m.rec.restarts,
      ...(m.rec.lastExit ? { lastExit: m.rec.lastExit } : {}),
      finished: m.rec.finished === true,
    }));
  }

  /**
   * Stops a daemon and starts it again from its spec (its reflected pod was
   * deleted); not counted as a restart, as a new pod starts at 0.
   */
  async restartDaemon(name: string): Promise<void> {
    const m = this.daemons.get(name);
    if (!m || this.closed) return;
    const fd = openSync(daemonLogPath(this.cluster, name), 'a', 0o600);
    writeSync(
      fd,
      `--- ${new Date().toISOString()} supervisor: stopping ${name} to start it again\n`,
    );
    closeSync(fd);
    await this.stopDaemon(name, false);
    this.rescan();
  }

  /** Starts watching the spec directory and runs every daemon in it. Kills leftovers of a previous supervisor first. */
  async start(): Promise<void> {
    for (const d of [
      daemonsDir(this.cluster),
      pidsDir(this.cluster),
      logsDir(this.cluster),
      recordsDir(this.cluster),
    ])
      mkdirSync(d, { recursive: true });
    await this.killLeftovers();
    this.watcher = watch(daemonsDir(this.cluster), () => this.scheduleRescan());
    this.watcher.on('error', (err) =>
      this.log.warn('watch failed; relying on periodic rescans', { err }),
    );
    this.interval = setInterval(() => this.rescan(), RESCAN_MS);
    this.rescan();
  }

  /** Stops every daemon (SIGTERM, then SIGKILL after its stopTimeoutMs) and stops watching. */
  async stop(): Promise<void> {
    this.closed = true;
    this.watcher?.close();
    clearInterval(this.interval);
    clearTimeout(this.debounce);
    await Promise.all([...this.daemons.keys()].map((n) => this.stopDaemon(n, false)));
  }

  private scheduleRescan(): void {
    if (this.closed) return;
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.rescan(), 50);
  }

  private async killLeftovers(): Promise<void> {
    const dir = recordsDir(this.cluster);
    if (!existsSync(dir)) return;
    for (const f of readdirSync(dir)) {
      if (!f.endsWith('.json')) continue;
      const name = f.slice(0, -5);
      const rec = readDaemonRecord(this.cluster, name);
      if (rec?.pid) {
        this.log.info('stopping a daemon left by a previous supervisor', {
          daemon: name,
          pid: rec.pid,
        });
        await terminate(rec.pid, 5000, rec.startTime);
      }
    }
  }

  /** Reads the spec directory and reconciles: start new, restart changed, stop removed. */
  rescan(): void {
    if (this.closed) return;
    const want = new Map<string, { spec: DaemonSpec; text: string }>();
    const dir = daemonsDir(this.cluster);
    let files: string[] = [];
    try {
      files = readdirSync(dir);
    } catch {
      files = [];
    }
    for (const f of files) {
      if (!f.endsWith('.json')) continue;
      let text: string;
      try {
        text = readFileSync(join(dir, f), 'utf8');
      } catch {
        continue;
      }
      try {
        const spec = JSON.parse(text) as DaemonSpec;
        validateDaemonSpec(spec);
        if (`${spec.name}.json` !== f) throw new Error(`file name must be ${spec.name}.json`);
        want.set(spec.name, { spec, text });
      } catch (err) {
        this.log.warn('ignoring an invalid daemon spec', { file: f, err });
      }
    }
    for (const [name, m] of this.daemons) {
      const w = want.get(name);
      if (!w) {
        if (!m.stopping) {
          this.log.info('daemon removed', { daemon: name });
          void this.stopDaemon(name, true);
        }
      } else if (w.text !== m.text && !m.stopping) {
        this.log.info('daemon spec changed; restarting', { daemon: name });
        void this.stopDaemon(name, false).then(() => this.rescan());
      }
    }
    for (const [name, w] of want) {
      if (!this.daemons.has(name)) this.launch(w.spec, w.text);
    }
  }

  private launch(spec: DaemonSpec, text: string): void {
    const prev = readDaemonRecord(this.cluster, spec.name);
    const m: Managed = {
      spec,
      text,
      rec: { restarts: prev?.restarts ?? 0, lastExit: prev?.lastExit, finished: false },
      backoffMs: BACKOFF_MIN_MS,
      stopping: false,
      startedMs: 0,
    };
    this.daemons.set(spec.name, m);
    this.run(m);
  }

  private run(m: Managed): void {
    if (this.closed || m.stopping) return;
    const { spec } = m;
    const argv = spec.netns
      ? ['nsenter', `--net=/run/netns/${spec.netns}`, '--', ...spec.command]
      : spec.command;
    const logPath = daemonLogPath(this.cluster, spec.name);
    const fd = openSync(logPath, 'a', 0o600);
    writeSync(
      fd,
      `--- ${new Date().toISOString()} supervisor: starting ${spec.name}: ${argv.join(' ')}\n`,
    );
    let child: ChildProcess;
    try {
      child = spawn(argv[0]!, argv.slice(1), {
        cwd: spec.cwd ?? projectRoot(),
        env: { ...process.env, ...spec.env },
        stdio: ['ignore', fd, fd],
        detached: true,
      });
    } finally {
      closeSync(fd);
    }
    m.child = child;
    m.startedMs = Date.now();
    child.on('error', (err) => {
      this.log.warn('daemon failed to start', { daemon: spec.name, err });
    });
    m.exited = new Promise((resolveExit) => {
      child.on('exit', (code, sig) => {
        this.onExit(m, child, code, sig);
        resolveExit();
      });
    });
    if (child.pid !== undefined) {
      m.rec = {
        ...m.rec,
        pid: child.pid,
        startTime: procStartTime(child.pid),
        startedAt: new Date().toISOString(),
        finished: false,
      };
      writeFileSync(daemonPidPath(this.cluster, spec.name), `${child.pid}\n`);
      writeDaemonRecord(this.cluster, spec.name, m.rec);
      this.log.info('daemon started', { daemon: spec.name, pid: child.pid });
    }
    this.onChange();
  }

  private onExit(
    m: Managed,
    child: ChildProcess,
    code: number | null,
    sig: NodeJS.Signals | null,
  ): void {
    if (m.child !== child) return;
    queueMicrotask(() => this.onChange());
    m.child = undefined;
    const lastExit = { code, signal: sig, at: new Date().toISOString() };
    const { pid: _pid, startTime: _st, ...rest } = m.rec;
    m.rec = { ...rest, lastExit };
    rmSync(daemonPidPath(this.cluster, m.spec.name), { force: true });
    const fd = openSync(daemonLogPath(this.cluster, m.spec.name), 'a', 0o600);
    writeSync(
      fd,
      `--- ${lastExit.at} supervisor: ${m.spec.name} exited (code ${code}, signal ${sig})\n`,
    );
    closeSync(fd);
    const failed = code !== 0;
    const again =
      !m.stopping &&
      !this.closed &&
      (m.spec.restart === 'always' || (m.spec.restart === 'on-failure' && failed));
    if (!again) {
      if (!m.stopping) m.rec.finished = true;
      writeDaemonRecord(this.cluster, m.spec.name, m.rec);
      this.log.info('daemon exited', { daemon: m.spec.name, code, signal: sig });
      return;
    }
    if (Date.now() - m.startedMs >= STABLE_MS) m.backoffMs = BACKOFF_MIN_MS;
    const delay = m.backoffMs;
    m.backoffMs = Math.min(m.backoffMs * 2, BACKOFF_MAX_MS);
    m.rec.restarts += 1;
    writeDaemonRecord(this.cluster, m.spec.name, m.rec);
    this.log.warn('daemon exited; restarting', {
      daemon: m.spec.name,
      code,
      signal: sig,
      delayMs: delay,
    });
    m.timer = setTimeout(() => this.run(m), delay);
  }

  private async stopDaemon(name: string, forget: boolean): Promise<void> {
    const m = this.daemons.get(name);
    if (!m) return;
    m.stopping = true;
    clearTimeout(m.timer);
    const child = m.child;
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      await terminate(child.pid, m.spec.stopTimeoutMs ?? 5000, m.rec.startTime);
      await m.exited;
    }
    this.daemons.delete(name);
    this.onChange();
    if (forget) {
      rmSync(join(recordsDir(this.cluster), `${name}.json`), { force: true });
      rmSync(daemonPidPath(this.cluster, name), { force: true });
    }
  }
}

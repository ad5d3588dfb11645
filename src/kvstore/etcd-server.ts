/**
 * Runs the `etcd` binary (Debian's etcd-server, 3.4) as a single-member
 * cluster. `etcdArgs` is the pure part: the argv for given options, so a
 * supervisor can run etcd as a daemon itself. `startEtcd` spawns it (in a
 * network namespace when asked), waits until it serves clients, and returns
 * a handle whose `stop()` ends exactly that process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { TendrilError } from '../util/errors.js';

export interface EtcdTLSFiles {
  /** CA that client certificates must chain to (--trusted-ca-file). */
  caFile: string;
  /** Server certificate (--cert-file); its SANs must cover the client URLs' hosts. */
  certFile: string;
  keyFile: string;
  /** Require a client certificate signed by the CA (mutual TLS). */
  clientCertAuth: boolean;
}

export interface EtcdServerOptions {
  /** Member name (also used in --initial-cluster). */
  name: string;
  dataDir: string;
  /** URLs to listen on and advertise, e.g. ["https://172.30.1.10:2379"]; https when tls is set. */
  clientUrls: string[];
  /** Peer port on 127.0.0.1 (single member; default 2380 for etcdArgs, a free port for startEtcd). */
  peerPort?: number;
  tls?: EtcdTLSFiles;
  /** Appended to the argv as given (e.g. ["--auto-compaction-retention=1000", "--auto-compaction-mode=revision"]). */
  extraArgs?: string[];
  /** Where etcd's log goes (appended); default: kept in memory for error reports. */
  logFile?: string;
  /** Run inside /run/netns/<netns> (via nsenter); needs root. */
  netns?: string;
  /** The etcd binary (default "etcd" from PATH). */
  binary?: string;
  /**
   * Backend quota (--quota-backend-bytes, default {@link DEFAULT_ETCD_QUOTA_BYTES}):
   * past it etcd raises its NOSPACE alarm and refuses writes instead of filling the disk.
   */
  quotaBackendBytes?: number;
  /**
   * Environment of the etcd process (startEtcd only): these variables on top of
   * this process's environment, e.g. `{ GOGC: '200' }` for the Go runtime.
   */
  env?: Record<string, string>;
}

/** Every etcd Tendril starts has a backend quota: 2 GiB unless its options say otherwise. */
export const DEFAULT_ETCD_QUOTA_BYTES = 2 * 1024 * 1024 * 1024;
/** ...and compaction: keep the last 10,000 revisions unless its extraArgs say otherwise. */
export const DEFAULT_ETCD_COMPACTION = [
  '--auto-compaction-mode=revision',
  '--auto-compaction-retention=10000',
];

/**
 * ...and a backend batch limit of 1,000 writes (etcd's default 10,000) unless
 * its extraArgs say otherwise. etcd 3.4 copies its whole uncommitted-write
 * read buffer for every read transaction (each Txn's compare step, each
 * serializable Range), and that buffer, grown by a bulk load to the batch
 * limit, never shrinks while writes go on: after the mesh-scale full sync
 * (300,000 keys) every small churn Txn copied and zeroed ~16,000 entries,
 * a third of the mesh etcd's CPU in a pprof profile (docs/decisions.md).
 */
export const DEFAULT_ETCD_BACKEND_BATCH_LIMIT = '--backend-batch-limit=1000';

/** A running etcd started by startEtcd. */
export interface EtcdServer {
  pid: number;
  /** The client URLs, for KVStore/etcd3 clients. */
  endpoints: string[];
  /** SIGTERM, then SIGKILL after `timeoutMs` (default 5000); resolves when the process has exited. */
  stop(timeoutMs?: number): Promise<void>;
}

/**
 * The argv (binary first) that runs etcd with these options. Pure.
 * @throws TendrilError ETCD_INVALID_OPTIONS for an empty name, no client URL, or a URL scheme not matching tls.
 */
export function etcdArgs(opts: EtcdServerOptions): string[] {
  validate(opts);
  const peer = `http://127.0.0.1:${opts.peerPort ?? 2380}`;
  const urls = opts.clientUrls.join(',');
  const argv = [
    opts.binary ?? 'etcd',
    `--name=${opts.name}`,
    `--data-dir=${opts.dataDir}`,
    `--listen-client-urls=${urls}`,
    `--advertise-client-urls=${urls}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=${opts.name}=${peer}`,
    '--initial-cluster-state=new',
    '--logger=zap',
    '--log-outputs=stderr',
  ];
  if (opts.tls) {
    argv.push(
      `--cert-file=${opts.tls.certFile}`,
      `--key-file=${opts.tls.keyFile}`,
      `--trusted-ca-file=${opts.tls.caFile}`,
    );
    if (opts.tls.clientCertAuth) argv.push('--client-cert-auth=true');
  }
  const extra = opts.extraArgs ?? [];
  argv.push(...extra);
  if (!extra.some((a) => a.startsWith('--auto-compaction-retention')))
    argv.push(
      ...DEFAULT_ETCD_COMPACTION.filter((a) => !extra.some((e) => e.startsWith(a.split('=')[0]!))),
    );
  if (!extra.some((a) => a.startsWith('--backend-batch-limit')))
    argv.push(DEFAULT_ETCD_BACKEND_BATCH_LIMIT);
  if (!extra.some((a) => a.startsWith('--quota-backend-bytes')))
    argv.push(`--quota-backend-bytes=${opts.quotaBackendBytes ?? DEFAULT_ETCD_QUOTA_BYTES}`);
  if (opts.netns) return ['nsenter', `--net=/run/netns/${opts.netns}`, '--', ...argv];
  return argv;
}

/**
 * Starts etcd and waits until it serves clients (its "serving client traffic"
 * log line for every client URL), at most `timeoutMs` (default 20000).
 * @throws TendrilError ETCD_START_FAILED with etcd's last log lines when it exits or is not ready in time.
 */
export async function startEtcd(
  opts: EtcdServerOptions,
  options: { timeoutMs?: number } = {},
): Promise<EtcdServer> {
  const resolved: EtcdServerOptions = {
    ...opts,
    peerPort: opts.peerPort ?? (opts.netns ? 2380 : await freePort()),
  };
  const argv = etcdArgs(resolved);
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  let logFd: number | undefined;
  let logStart = 0;
  if (opts.logFile) {
    mkdirSync(dirname(opts.logFile), { recursive: true });
    logStart = existsSync(opts.logFile) ? readFileSync(opts.logFile).length : 0;
    logFd = openSync(opts.logFile, 'a');
  }
  let child: ChildProcess;
  try {
    child = spawn(argv[0]!, argv.slice(1), {
      stdio: ['ignore', logFd ?? 'ignore', logFd ?? 'pipe'],
      detached: false,
      ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}),
    });
  } finally {
    if (logFd !== undefined) closeSync(logFd);
  }
  let memLog = '';
  child.stderr?.on('data', (b: Buffer) => {
    memLog = (memLog + b.toString()).slice(-64 * 1024);
  });
  const readLog = () => (opts.logFile ? safeRead(opts.logFile).slice(logStart) : memLog);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitP = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    });
  });
  const spawnErr = new Promise<Error>((resolve) => child.once('error', resolve));

  const fail = (why: string, cause?: unknown) => {
    const tail = readLog().trim().split('\n').slice(-8).map(shortLine).join('\n    ');
    return new TendrilError(
      'ETCD_START_FAILED',
      `start etcd "${opts.name}" (${opts.clientUrls.join(', ')}): ${why}${tail ? `\n  etcd log:\n    ${tail}` : ''}`,
      {
        hint: hintFor(readLog()),
        cause,
      },
    );
  };

  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  let spawnError: Error | undefined;
  void spawnErr.then((e) => (spawnError = e));
  while (true) {
    if (spawnError) throw fail(`cannot run ${argv[0]}: ${spawnError.message}`, spawnError);
    if (exited)
      throw fail(`etcd exited (code ${exited.code}, signal ${exited.signal}) before it was ready`);
    if (servingCount(readLog()) >= opts.clientUrls.length) break;
    if (Date.now() > deadline) {
      await stopChild(child, exitP, () => exited !== undefined, 3000);
      throw fail(`not ready after ${options.timeoutMs ?? 20_000} ms`);
    }
    await sleep(50);
  }
  const pid = child.pid!;
  // Let the parent exit while etcd runs on (without a logFile, etcd writes to our pipe and ends with us).
  child.unref();
  (child.stderr as { unref?: () => void } | null)?.unref?.();
  return {
    pid,
    endpoints: [...opts.clientUrls],
    stop: async (timeoutMs = 5000) => {
      child.ref(); // keep the event loop alive until the exit is seen
      try {
        await stopChild(child, exitP, () => exited !== undefined, timeoutMs);
      } finally {
        child.unref();
      }
    },
  };
}

/** Asks the OS for a free TCP port on 127.0.0.1 (for tests and single-host setups). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function validate(opts: EtcdServerOptions): void {
  const bad = (msg: string) =>
    new TendrilError('ETCD_INVALID_OPTIONS', `etcd options: ${msg}`, {
      hint: 'fix the etcd server options',
    });
  if (!/^[A-Za-z0-9._-]+$/.test(opts.name))
    throw bad(`name ${JSON.stringify(opts.name)} must be letters, digits, '.', '_' or '-'`);
  if (!opts.dataDir) throw bad('dataDir is empty');
  if (opts.clientUrls.length === 0) throw bad('no client URL');
  const scheme = opts.tls ? 'https:' : 'http:';
  for (const u of opts.clientUrls) {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      throw bad(
        `client URL ${JSON.stringify(u)} is not a URL (expected e.g. ${scheme}//127.0.0.1:2379)`,
      );
    }
    if (url.protocol !== scheme)
      throw bad(
        `client URL ${u} must use ${scheme.slice(0, -1)} ${opts.tls ? 'since TLS is configured' : 'since no TLS is configured'}`,
      );
    if (!url.port) throw bad(`client URL ${u} has no port`);
  }
  if (
    opts.peerPort !== undefined &&
    !(Number.isInteger(opts.peerPort) && opts.peerPort > 0 && opts.peerPort < 65536)
  ) {
    throw bad(`peerPort ${opts.peerPort} is not a port number`);
  }
  if (opts.netns !== undefined && !/^[A-Za-z0-9._-]+$/.test(opts.netns))
    throw bad(`netns ${JSON.stringify(opts.netns)} is not a namespace name`);
}

async function stopChild(
  child: ChildProcess,
  exitP: Promise<void>,
  hasExited: () => boolean,
  timeoutMs: number,
): Promise<void> {
  if (hasExited()) return;
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>(
    (r) => (timer = setTimeout(() => r('timeout'), timeoutMs)),
  );
  const outcome = await Promise.race([exitP.then(() => 'exited' as const), timeout]);
  clearTimeout(timer);
  if (outcome === 'timeout' && !hasExited()) {
    child.kill('SIGKILL');
    await exitP;
  }
}

function hintFor(log: string): string {
  if (/address already in use/.test(log))
    return 'another process listens on that port: pick a free port or stop it';
  if (/cannot assign requested address/.test(log))
    return "the client URL host is not an address of this (network namespace's) host";
  if (/lock|resource temporarily unavailable/i.test(log))
    return 'the data directory is in use by another etcd: stop it or use another dataDir';
  if (/permission denied/i.test(log))
    return 'etcd cannot read a file it was given (data dir, certificate or key): check the paths and permissions';
  if (/certificate|x509|tls/i.test(log))
    return 'check the TLS files: certificate, key and CA must be PEM and match';
  return "see the etcd log above; `etcd --version` checks that Debian's etcd-server is installed";
}

/** etcd 3.4 (zap) logs one "serving client traffic ..." line per client URL once it serves. */
function servingCount(log: string): number {
  return (
    log.match(/serving client traffic (?:securely|insecurely)|ready to serve client requests/g) ??
    []
  ).length;
}

function shortLine(line: string): string {
  try {
    const j = JSON.parse(line) as { level?: string; msg?: string; error?: string };
    return `${j.level ?? ''} ${j.msg ?? ''}${j.error ? `: ${j.error}` : ''}`.trim();
  } catch {
    return line.slice(0, 300);
  }
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

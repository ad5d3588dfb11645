/**
 * One change at a time per lab cluster: `install`, `uninstall` and
 * `clustermesh enable|disable|connect|disconnect` take the cluster's lock, a
 * file created with O_EXCL holding the owner's pid, command and a token. A
 * lock whose owner died is taken over; a half-written lock file older than a
 * few seconds too.
 *
 * `acquireInstallLock` refuses at once when the lock is held;
 * `withClusterLocks` waits (up to a timeout) for every cluster it names, in
 * name order (two commands on overlapping clusters cannot deadlock), and is
 * re-entrant along one async call chain (connect may enable a side: enable
 * takes the lock connect already holds) but not between concurrent calls of
 * one process, which it serialises like two processes.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { mkdirSync, openSync, closeSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { TendrilError } from '../util/errors.js';
import { clusterDir } from '../util/paths.js';
import { isAlive } from '../lab/proc.js';

/** Path of a cluster's lock (install, uninstall and the clustermesh commands). */
export function installLockPath(labCluster: string): string {
  return join(clusterDir(labCluster), 'install.lock');
}

/** What a lock file says about its holder. */
export interface LockOwner {
  pid?: number;
  what?: string;
  at?: string;
  token?: string;
}

/** A lock file without a parsable owner is taken over after this long (it was never finished). */
const HALF_WRITTEN_MS = 5000;

/** Takes the lock if free (or stale); returns its release function, or the owner holding it. */
function tryTake(labCluster: string, what: string): (() => void) | { owner: LockOwner } {
  const path = installLockPath(labCluster);
  mkdirSync(clusterDir(labCluster), { recursive: true, mode: 0o700 });
  for (let attempt = 0; attempt < 3; attempt++) {
    const token = randomBytes(8).toString('hex');
    try {
      const fd = openSync(path, 'wx', 0o600);
      try {
        writeSync(
          fd,
          JSON.stringify({ pid: process.pid, what, at: new Date().toISOString(), token }),
        );
      } finally {
        closeSync(fd);
      }
      return () => {
        // only our own lock: never one that was taken over meanwhile
        if (readOwner(path)?.token === token) rmSync(path, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = readOwner(path);
      if (owner === undefined) {
        let age = 0;
        try {
          age = Date.now() - statSync(path).mtimeMs;
        } catch {
          continue; // gone meanwhile
        }
        if (age > HALF_WRITTEN_MS) rmSync(path, { force: true });
        else return { owner: {} };
        continue;
      }
      if (owner.pid === undefined || !isAlive(owner.pid)) {
        rmSync(path, { force: true });
        continue;
      }
      return { owner };
    }
  }
  return { owner: readOwner(path) ?? {} };
}

function readOwner(path: string): LockOwner | undefined {
  try {
    const o = JSON.parse(readFileSync(path, 'utf8')) as LockOwner;
    return typeof o === 'object' && o !== null ? o : undefined;
  } catch {
    return undefined;
  }
}

function lockedError(labCluster: string, owner: LockOwner): TendrilError {
  const path = installLockPath(labCluster);
  return new TendrilError(
    'INSTALL_LOCKED',
    `another \`tendril ${owner.what ?? 'install'}\` (pid ${owner.pid ?? '?'}, since ${owner.at ?? '?'}) holds the lock on cluster ${labCluster}`,
    { hint: `wait, or remove ${path} if that process is gone` },
  );
}

/**
 * Takes the lock at once; returns its release function.
 * @throws TendrilError INSTALL_LOCKED naming the pid and command holding it.
 */
export function acquireInstallLock(labCluster: string, what: string): () => void {
  const r = tryTake(labCluster, what);
  if (typeof r === 'function') return r;
  throw lockedError(labCluster, r.owner);
}

/** Options of {@link withClusterLocks}. */
export interface ClusterLockOptions {
  /** Give up (INSTALL_LOCKED) after waiting this long for one cluster (default 180 s). */
  timeoutMs?: number;
  /** Told once per cluster when the lock is held by someone else and we wait. */
  onWait?: (labCluster: string, owner: LockOwner) => void;
}

const held = new AsyncLocalStorage<ReadonlySet<string>>();

/**
 * Runs `fn` holding the locks of `labClusters` (taken in name order, waited
 * for while another command holds them). Locks this async call chain already
 * holds are not taken again.
 * @throws TendrilError INSTALL_LOCKED when a lock stays held longer than the timeout.
 */
export async function withClusterLocks<T>(
  labClusters: string[],
  what: string,
  fn: () => Promise<T>,
  options: ClusterLockOptions = {},
): Promise<T> {
  const mine = held.getStore() ?? new Set<string>();
  const need = [...new Set(labClusters)].filter((c) => !mine.has(c)).sort();
  const releases: (() => void)[] = [];
  try {
    for (const c of need) {
      const deadline = Date.now() + (options.timeoutMs ?? 180_000);
      let told = false;
      for (;;) {
        const r = tryTake(c, what);
        if (typeof r === 'function') {
          releases.push(r);
          break;
        }
        if (Date.now() > deadline) throw lockedError(c, r.owner);
        if (!told) options.onWait?.(c, r.owner);
        told = true;
        await new Promise((res) => setTimeout(res, 100));
      }
    }
    return await held.run(new Set([...mine, ...need]), fn);
  } finally {
    for (const r of releases.reverse()) r();
  }
}

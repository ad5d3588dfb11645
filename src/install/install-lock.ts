/**
 * One install/uninstall at a time per lab cluster: a lock file created with
 * O_EXCL holding the owner's pid. A lock whose owner died is taken over.
 */
import { mkdirSync, openSync, closeSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { TendrilError } from '../util/errors.js';
import { clusterDir } from '../util/paths.js';
import { isAlive } from '../lab/proc.js';

/** Path of a cluster's install lock. */
export function installLockPath(labCluster: string): string {
  return join(clusterDir(labCluster), 'install.lock');
}

/**
 * Takes the lock; returns its release function.
 * @throws TendrilError install.Locked naming the pid holding it.
 */
export function acquireInstallLock(labCluster: string, what: string): () => void {
  const path = installLockPath(labCluster);
  mkdirSync(clusterDir(labCluster), { recursive: true });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, JSON.stringify({ pid: process.pid, what, at: new Date().toISOString() }));
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let owner: { pid?: number; what?: string; at?: string } = {};
      try {
        owner = JSON.parse(readFileSync(path, 'utf8')) as typeof owner;
      } catch {
        // being written right now, or garbage: treat as held unless old
      }
      if (owner.pid !== undefined && !isAlive(owner.pid)) {
        rmSync(path, { force: true });
        continue;
      }
      throw new TendrilError(
        'INSTALL_LOCKED',
        `another ${owner.what ?? 'install'} of lab cluster ${labCluster} is running (pid ${owner.pid ?? '?'}, since ${owner.at ?? '?'})`,
        {
          hint: `wait for it to finish; if no such process exists, remove ${path}`,
        },
      );
    }
  }
  throw new TendrilError('INSTALL_LOCKED', `could not take the install lock ${path}`, {
    hint: `remove ${path} if no install is running`,
  });
}

/**
 * bpffs: the filesystem where maps, programs and links are pinned. It is not
 * mounted at boot on this machine kind: `ensureBpffs` mounts it when absent.
 * `removePinnedTree` deletes a directory of pins, refusing paths outside bpffs.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { TendrilError } from '../../util/errors.js';
import { BPFFS_ROOT } from '../../util/paths.js';
import { mountFs } from './syscall.js';

/** Mount points of type bpf, from /proc/self/mounts. */
export function bpffsMounts(): string[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[2] === 'bpf')
    .map((f) => f[1]!.replace(/\\040/g, ' '));
}

/** Whether `path` is on a bpffs mount (the mount point itself or below it). */
export function isOnBpffs(path: string): boolean {
  const p = resolve(path);
  return bpffsMounts().some((m) => p === m || p.startsWith(m.endsWith('/') ? m : `${m}/`));
}

/**
 * Mounts bpffs at `path` (default /sys/fs/bpf) unless one is mounted there.
 * Returns true when it mounted. Throws BpfError("mount") (EPERM: needs root).
 */
export function ensureBpffs(path: string = BPFFS_ROOT): boolean {
  const p = resolve(path);
  if (bpffsMounts().includes(p)) return false;
  mkdirSync(p, { recursive: true });
  mountFs('bpf', p, 'bpf');
  return true;
}

/**
 * Removes a pinned object or a directory tree of pins. Refuses paths that are
 * not on bpffs, and a bpffs mount point itself. A missing path is fine.
 */
export function removePinnedTree(path: string): void {
  const p = resolve(path);
  if (!existsSync(p)) return;
  if (!isOnBpffs(p)) {
    throw new TendrilError(
      'BPFFS_NOT_BPFFS',
      `refusing to remove ${p}: it is not on a bpffs mount`,
      {
        hint: 'pins live under /sys/fs/bpf; check the path',
      },
    );
  }
  if (bpffsMounts().includes(p)) {
    throw new TendrilError('BPFFS_ROOT', `refusing to remove the bpffs mount point ${p} itself`, {
      hint: 'remove a directory below it',
    });
  }
  rmSync(p, { recursive: true, force: true });
}

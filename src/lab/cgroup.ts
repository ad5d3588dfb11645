/**
 * cgroup v2 directories of the lab (<cgroup2>/<prefix>/<cluster>/<node>/<podUID>)
 * and their removal: kill the processes in them, then rmdir leaf-first.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { TendrilError } from '../util/errors.js';
import { cgroup2Root } from '../util/paths.js';
import { labPrefix } from './layout.js';
import { signal, sleep } from './proc.js';

/** The lab instance's cgroup directory: <cgroup2>/<prefix>. */
export function labCgroupRoot(): string {
  return join(cgroup2Root(), labPrefix());
}

/** The cluster's cgroup directory: <cgroup2>/<prefix>/<cluster>. */
export function clusterCgroup(cluster: string): string {
  return join(labCgroupRoot(), cluster);
}

/** Creates a cgroup directory (and its parents). */
export function ensureCgroup(dir: string): void {
  mkdirSync(dir, { recursive: true });
}

/** Moves a process into a cgroup. */
export function joinCgroup(dir: string, pid: number): void {
  writeFileSync(join(dir, 'cgroup.procs'), `${pid}\n`);
}

/** The pids in one cgroup directory (not its children). */
export function cgroupPids(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Every cgroup directory under `dir` (included), deepest first. */
export function cgroupTree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) walk(join(d, e.name));
    out.push(d);
  };
  walk(dir);
  return out;
}

/**
 * Kills every process in `dir` and its descendants (SIGKILL; they are pods'
 * or the cluster's own) and removes the directories leaf-first. Idempotent.
 * Throws LAB_CGROUP_BUSY when a directory cannot be removed within timeoutMs.
 */
export async function removeCgroupTree(dir: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const tree = cgroupTree(dir);
    if (tree.length === 0) return;
    let busy = false;
    for (const d of tree) {
      for (const pid of cgroupPids(d)) signal(pid, 'SIGKILL');
    }
    for (const d of tree) {
      try {
        rmdirSync(d);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') continue;
        busy = true;
      }
    }
    if (!busy) return;
    if (Date.now() > deadline) {
      throw new TendrilError(
        'LAB_CGROUP_BUSY',
        `cannot remove cgroup ${dir}: processes remain in it`,
        {
          hint: `see ${dir}/**/cgroup.procs`,
        },
      );
    }
    await sleep(50);
  }
}

/** Removes a directory if it is empty (cgroup or bpffs parents); ignores failure. */
export function rmdirIfEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // not empty, or gone
  }
}

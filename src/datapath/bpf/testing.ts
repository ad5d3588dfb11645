/**
 * Helpers for this package's privileged tests: throwaway network namespaces,
 * cgroups and bpffs directories with unique "tendril" names, each removed by
 * the returned cleanup. Not used by library code.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmdirSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cgroup2Root } from '../../util/paths.js';

let seq = 0;

/** A unique name containing "tendril" for this test process. */
export function uniqueName(tag: string): string {
  const prefix = process.env.TENDRIL_LAB_PREFIX ?? `tendril-t${process.pid}x`;
  return `${prefix}${tag}${seq++}`;
}

/** Runs a command; throws with its stderr on failure. */
export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Creates a network namespace with lo up. */
export function makeNetns(tag = 'ns'): { name: string; path: string; remove(): void } {
  const name = uniqueName(tag);
  sh('ip', ['netns', 'add', name]);
  sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return {
    name,
    path: `/run/netns/${name}`,
    remove: () => {
      try {
        sh('ip', ['netns', 'del', name]);
      } catch {
        /* already gone */
      }
    },
  };
}

/** Creates a cgroup v2 directory under the unified hierarchy. */
export function makeCgroup(tag = 'cg'): { path: string; remove(): void } {
  const path = join(cgroup2Root(), uniqueName(tag));
  mkdirSync(path);
  return {
    path,
    remove: () => {
      // Move any stragglers out first; rmdir fails on a populated cgroup.
      try {
        for (const pid of readFileSync(join(path, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
          try {
            execFileSync('sh', ['-c', `echo ${pid} > ${join(cgroup2Root(), 'cgroup.procs')}`]);
          } catch {
            /* exited */
          }
        }
      } catch {
        /* gone */
      }
      if (existsSync(path)) rmdirSync(path);
    },
  };
}

/** Starts a process, returns it with a promise of its first stdout line matching `ready`. */
export function startProcess(cmd: string, args: string[], ready: RegExp): { child: ChildProcess; ready: Promise<string> } {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const readyP = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${cmd} ${args.join(' ')}: not ready after 10s; stderr: ${err}`)), 10_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = out.match(ready);
      if (m) {
        clearTimeout(timer);
        resolve(m[0]);
      }
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited with ${code} before ready; stderr: ${err}`));
    });
  });
  readyP.catch(() => {});
  return { child, ready: readyP };
}

/** Runs a command to completion; resolves with status, stdout and stderr (no throw). */
export function runProcess(cmd: string, args: string[], timeoutMs = 15_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Kills a child we started (by its pid) and waits for it to exit. */
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  await Promise.race([done, new Promise((r) => setTimeout(r, 3000))]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

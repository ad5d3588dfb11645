/**
 * Process helpers for the lab: liveness that survives pid reuse (a pid plus
 * its start time from /proc/<pid>/stat), signalling and waiting for a process
 * that is not our child.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** The process's start time in clock ticks since boot, or undefined when it does not exist (or is a zombie). */
export function procStartTime(pid: number): number | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (rest[0] === 'Z' || rest[0] === 'X') return undefined;
  const start = Number(rest[19]); // field 22 overall
  return Number.isFinite(start) ? start : undefined;
}

/** True when `pid` is alive and, if `startTime` is given, is the same process that had that start time. */
export function isAlive(pid: number | undefined, startTime?: number): boolean {
  if (pid === undefined) return false;
  const st = procStartTime(pid);
  if (st === undefined) return false;
  return startTime === undefined || st === startTime;
}

/** Sends a signal, ignoring "no such process". Returns whether it was delivered. */
export function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls until `pid` is gone (or no longer the process with `startTime`); resolves true if it went within timeoutMs. */
export async function waitGone(
  pid: number,
  timeoutMs: number,
  startTime?: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid, startTime)) {
    if (Date.now() >= deadline) return false;
    await sleep(25);
  }
  return true;
}

/**
 * Stops a process that is not our child: SIGTERM, then SIGKILL after
 * `graceMs`; waits until it is gone (at most graceMs + 2 s).
 */
export async function terminate(pid: number, graceMs: number, startTime?: number): Promise<void> {
  if (!isAlive(pid, startTime)) return;
  signal(pid, 'SIGTERM');
  if (await waitGone(pid, graceMs, startTime)) return;
  if (isAlive(pid, startTime)) signal(pid, 'SIGKILL');
  await waitGone(pid, 2000, startTime);
}

/** Parent pid and start time of a process (from /proc/<pid>/stat), or undefined. */
function procStat(pid: number): { ppid: number; startTime: number } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(rest[1]), startTime: Number(rest[19]) };
}

/**
 * Every descendant of the given processes (children, grandchildren...), with
 * start times so they can be signalled later without hitting a reused pid.
 */
export function descendants(roots: number[]): { pid: number; startTime: number }[] {
  const children = new Map<number, { pid: number; startTime: number }[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const st = procStat(Number(d));
    if (!st) continue;
    const list = children.get(st.ppid) ?? [];
    list.push({ pid: Number(d), startTime: st.startTime });
    children.set(st.ppid, list);
  }
  const out: { pid: number; startTime: number }[] = [];
  const queue = [...roots];
  const seen = new Set<number>(roots);
  while (queue.length) {
    const p = queue.shift()!;
    for (const c of children.get(p) ?? []) {
      if (seen.has(c.pid)) continue;
      seen.add(c.pid);
      out.push(c);
      queue.push(c.pid);
    }
  }
  return out;
}

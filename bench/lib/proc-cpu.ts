/**
 * CPU accounting for benchmarks, from /proc (Linux): the whole machine's busy
 * time (to wait for a lab to go quiet before timing) and each process's
 * (to say which processes a timed series kept busy).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** Clock ticks per second of /proc's CPU times (USER_HZ, what `getconf CLK_TCK` prints: 100 on Linux). */
const HZ = 100;

/** utime + stime of one process so far, in seconds (/proc/<pid>/stat fields 14 and 15). */
export function processCpuS(pid: number): number {
  return cpuTicks(readFileSync(`/proc/${pid}/stat`, 'utf8')) / HZ;
}

/** utime + stime from a /proc/<pid>/stat line (the command name may hold spaces and ')'). */
function cpuTicks(stat: string): number {
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

/** Busy and total CPU time of the whole machine so far, in ticks (from /proc/stat). */
export function machineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal ...: idle and iowait are not busy
  const total = v.slice(0, 8).reduce((s, x) => s + x, 0);
  return { busy: total - v[3]! - v[4]!, total };
}

/** How much of one core the machine kept busy since `since` (0.5 = half a core). */
export function coresBusySince(since: { busy: number; total: number }, cores: number): number {
  const now = machineTicks();
  const total = now.total - since.total;
  return total > 0 ? ((now.busy - since.busy) / total) * cores : 0;
}

/**
 * Waits until the machine keeps less than `maxCores` cores busy over a whole
 * `windowMs` window, or `timeoutMs` has passed. Returns how long it waited and
 * the busy level of the last window (in cores).
 */
export async function waitForQuiet(options: {
  cores: number;
  maxCores: number;
  windowMs?: number;
  timeoutMs?: number;
}): Promise<{ waitedMs: number; cores: number; quiet: boolean }> {
  const windowMs = options.windowMs ?? 2000;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const t0 = performance.now();
  for (;;) {
    const since = machineTicks();
    await sleep(windowMs);
    const busy = coresBusySince(since, options.cores);
    const waitedMs = performance.now() - t0;
    if (busy < options.maxCores) return { waitedMs, cores: busy, quiet: true };
    if (waitedMs >= timeoutMs) return { waitedMs, cores: busy, quiet: false };
  }
}

/** CPU time (user + system, ms) of every process by pid, with its command line. */
export interface ProcessCpu {
  pid: number;
  cpuMs: number;
  cmdline: string;
}

/** A snapshot of every process's CPU time so far. */
export function processCpu(): Map<number, ProcessCpu> {
  const out = new Map<number, ProcessCpu>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const cpuMs = (cpuTicks(stat) * 1000) / HZ;
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').filter(Boolean);
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      out.set(Number(d), { pid: Number(d), cpuMs, cmdline: cmd.join(' ') || `[${comm}]` });
    } catch {
      // the process ended between readdir and read
    }
  }
  return out;
}

/** Each process's CPU time between two snapshots, largest first (processes that used none left out). */
export function cpuBetween(
  before: Map<number, ProcessCpu>,
  after: Map<number, ProcessCpu>,
): ProcessCpu[] {
  const rows: ProcessCpu[] = [];
  for (const [pid, a] of after) {
    const d = a.cpuMs - (before.get(pid)?.cpuMs ?? 0);
    if (d > 0) rows.push({ pid, cpuMs: d, cmdline: a.cmdline });
  }
  return rows.sort((x, y) => y.cpuMs - x.cpuMs);
}

/**
 * A short name for a Tendril daemon's command line: its cluster, its entry
 * point and its node (`cluster2 agent cluster2-worker`); etcd as `etcd <data dir's parent>`;
 * other processes by their program's name.
 */
export function daemonLabel(cmdline: string, self = process.pid, pid = 0): string {
  if (pid === self) return 'this benchmark';
  const cluster =
    /\/clusters\/([\w-]+)\//.exec(cmdline)?.[1] ?? /--cluster[= ]([\w-]+)/.exec(cmdline)?.[1];
  const entry = /src\/([\w/-]+)\/[\w-]+\.ts/.exec(cmdline)?.[1];
  const node = /--node-name[= ](\S+)/.exec(cmdline)?.[1];
  if (entry) return [cluster, entry, node].filter(Boolean).join(' ');
  const prog = cmdline.split(' ', 1)[0]!.replace(/^.*\//, '');
  if (prog === 'etcd') {
    const dir = /--data-dir[= ](\S+)/.exec(cmdline)?.[1] ?? '';
    return `etcd ${dir.split('/').slice(-2).join('/')}`;
  }
  return prog;
}

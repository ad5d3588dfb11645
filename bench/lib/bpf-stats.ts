/**
 * Per-program run counts and run times of the BPF programs attached to a
 * cgroup, over one piece of work: the evidence that the socket load
 * balancer's programs run per connection, not per packet or per sendmsg()
 * (bench/datapath records them for one TCP iperf3 run).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const STATS_SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';

/** Runs of one program over the work measured. */
export interface ProgramRuns {
  id: number;
  name: string;
  attachType: string;
  runs: number;
  ns: number;
}

interface ProgInfo {
  id: number;
  name?: string;
  run_cnt?: number;
  run_time_ns?: number;
}

/** The programs attached to CGROUP (its own, not inherited): id, name, attach type. */
export function cgroupPrograms(
  cgroup: string,
): Array<{ id: number; name: string; attachType: string }> {
  const out = execFileSync('bpftool', ['-j', 'cgroup', 'show', cgroup], { encoding: 'utf8' });
  const progs = JSON.parse(out || '[]') as Array<{
    id: number;
    name?: string;
    attach_type: string;
  }>;
  return progs.map((p) => ({ id: p.id, name: p.name ?? '', attachType: p.attach_type }));
}

function progCounters(id: number): { runs: number; ns: number } {
  const p = JSON.parse(
    execFileSync('bpftool', ['-j', 'prog', 'show', 'id', String(id)], { encoding: 'utf8' }),
  ) as ProgInfo;
  return { runs: p.run_cnt ?? 0, ns: p.run_time_ns ?? 0 };
}

/**
 * Turns on kernel.bpf_stats_enabled, runs WORK, and returns how often and for
 * how long each program attached to CGROUP ran meanwhile, with WORK's
 * result. The sysctl is set back to its previous value afterwards (it costs
 * every BPF program on the machine a little while it is on).
 */
export async function programRunsDuring<T>(
  cgroup: string,
  work: () => T | Promise<T>,
): Promise<{ value: T; programs: ProgramRuns[] }> {
  const progs = cgroupPrograms(cgroup);
  const before = readFileSync(STATS_SYSCTL, 'utf8').trim();
  writeFileSync(STATS_SYSCTL, '1');
  try {
    const start = progs.map((p) => progCounters(p.id));
    const value = await work();
    const end = progs.map((p) => progCounters(p.id));
    return {
      value,
      programs: progs.map((p, i) => ({
        ...p,
        runs: end[i]!.runs - start[i]!.runs,
        ns: end[i]!.ns - start[i]!.ns,
      })),
    };
  } finally {
    writeFileSync(STATS_SYSCTL, before);
  }
}

/**
 * Hubble (flow observability) benchmark, datapath-events part (issue 12).
 *
 *   events_per_s_one_core     synthetic ring-buffer records (a realistic mix: policy verdicts,
 *                             traces, drops, socket translations) decoded and enriched into
 *                             Flows and pushed to a 4095-flow ring, on this one thread
 *   agent_rss_ring_4095_mib   RSS of a child process holding the agent's flow metadata and a
 *   agent_rss_ring_16383_mib  full ring of that many flows (minus nothing: the whole process)
 *   policy_prog_ns_established_{off,on}, hubble_prog_on_vs_off
 *                             kernel time per packet of an established TCP connection through
 *                             the policy program without and with events (BPF_PROG_TEST_RUN,
 *                             repeat 1,000,000; root only), interleaved rounds, medians;
 *                             the ratio is off/on (1.0 = no cost)
 *
 *   hubble_on_vs_off_rps/_cps, event_to_observe_p99_ms
 *                             the lab part (root only; bench/hubble/service.ts): the datapath
 *                             benchmark's service path with Hubble on vs off, and a packet to
 *                             its flow printed by `tendril hubble observe -f` through the relay
 *
 * Run: npm run bench -- hubble [--rounds N (20)] [--seconds S (1)] [--probes N (200)]
 *      [--no-lab] [--events-only]
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { report, type Figure } from '../lib/report.js';
import { FlowBuilder } from '../../src/agent/flows.js';
import { FlowRing } from '../../src/observe/ring.js';
import { metadata, records } from './fixtures.js';

/** Child mode: fill a ring of N and print RSS in MiB. */
if (process.argv[2] === '--rss') {
  const n = Number(process.argv[3]);
  const ring = new FlowRing(n);
  const b = new FlowBuilder(metadata(), ring);
  for (const r of records(n * 2)) b.ingest(r);
  globalThis.gc?.();
  console.log(
    JSON.stringify({ rss: process.memoryUsage().rss / 2 ** 20, held: ring.snapshot().length }),
  );
  process.exit(0);
}

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '20' },
    seconds: { type: 'string', default: '1' },
    probes: { type: 'string', default: '200' },
    'no-lab': { type: 'boolean', default: false },
    'events-only': { type: 'boolean', default: false },
  },
});
/** The value of option NAME as a whole number >= MIN, or exit with a message naming the option. */
function intOption(name: 'rounds' | 'seconds' | 'probes', min: number): number {
  const v = Number(opts[name]);
  if (!Number.isInteger(v) || v < min) {
    process.stderr.write(`--${name} ${opts[name]}: expected a whole number >= ${min}\n`);
    process.exit(2);
  }
  return v;
}
const rounds = intOption('rounds', 1);
const seconds = intOption('seconds', 1);
const probes = intOption('probes', 0);

const figures: Figure[] = [];
{
  const recs = records(200_000);
  const ring = new FlowRing(4095);
  const b = new FlowBuilder(metadata(), ring);
  for (let i = 0; i < 50_000; i++) b.ingest(recs[i]!); // warm up
  // Rated per second of this thread's CPU time (user + system), so that other work on a
  // shared machine does not count against it; the wall-clock rate is reported beside it.
  const rates: number[] = [];
  const wall: number[] = [];
  for (let round = 0; round < 5; round++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (const r of recs) b.ingest(r);
    const c = process.cpuUsage(c0);
    rates.push(recs.length / ((c.user + c.system) / 1e6));
    wall.push(recs.length / ((performance.now() - t0) / 1000));
  }
  const med = (a: number[]) => a.sort((x, y) => x - y)[a.length >> 1]!;
  figures.push({
    name: 'events_per_s_one_core',
    value: Math.round(med(rates)),
    unit: '/s',
    note: `per CPU-second, median of 5 x 200k; load average ${loadavg()[0]!.toFixed(2)}; target >= 200,000`,
  });
  figures.push({
    name: 'events_per_s_wall',
    value: Math.round(med(wall)),
    unit: '/s',
    note: 'the same rounds by wall clock (shared machine)',
  });
}

{
  // A machine-speed reference in the same run: CPU time of allocating one small object
  // (tens of ns on an idle VM; far more when the machine is oversubscribed).
  const keep = new Array<unknown>(4095);
  const c0 = process.cpuUsage();
  for (let i = 0; i < 1_000_000; i++) keep[i % 4095] = { a: i, b: { c: i } };
  const c = process.cpuUsage(c0);
  figures.push({
    name: 'ref_small_alloc_ns',
    value: Math.round((c.user + c.system) / 1000),
    unit: 'ns',
    note: 'machine reference: CPU ns per tiny allocation',
  });
  figures.push({
    name: 'load_average_1m',
    value: loadavg()[0]!,
    unit: '',
    note: 'at the end of the ingest rounds',
  });
}
if (opts['events-only']) {
  for (const f of figures) console.log(`${f.name} ${f.value} ${f.unit}`); // no results file
  process.exit(0);
}
const self = fileURLToPath(import.meta.url);
for (const n of [4095, 16383]) {
  const r = spawnSync(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', self, '--rss', String(n)],
    {
      encoding: 'utf8',
    },
  );
  const line = r.stdout.trim().split('\n').pop() ?? '{}';
  const { rss, held } = JSON.parse(line) as { rss: number; held: number };
  figures.push({
    name: `agent_rss_ring_${n}_mib`,
    value: rss,
    unit: 'MiB',
    note: `whole process (node + tsx), ${held} flows held; load average ${loadavg()[0]!.toFixed(2)}`,
  });
}

if (process.getuid?.() === 0) {
  const { perPacketNs } = await import('./prog.js');
  const { off, on } = perPacketNs();
  figures.push({
    name: 'policy_prog_ns_established_off',
    value: off,
    unit: 'ns',
    note: 'median, events off',
  });
  figures.push({
    name: 'policy_prog_ns_established_on',
    value: on,
    unit: 'ns',
    note: 'median, events on',
  });
  figures.push({
    name: 'hubble_prog_on_vs_off',
    value: off / on,
    unit: 'ratio',
    note: `kernel time per packet, off/on; load average ${loadavg()[0]!.toFixed(2)}`,
  });
  if (!opts['no-lab']) {
    const { useUniqueLab } = await import('../../test/e2e/lab-fixture.js');
    const { releaseLab } = await import('../lib/lab.js');
    const { hubbleServiceFigures } = await import('./service.js');
    const lab = useUniqueLab('hub', 'bench');
    const log = (s: string) => process.stderr.write(`${s}\n`);
    try {
      figures.push(
        ...(await hubbleServiceFigures({ home: lab.home, rounds, seconds, probes, log })),
      );
    } finally {
      if (await releaseLab(lab, log)) rmSync(lab.home, { recursive: true, force: true });
    }
  }
}
report('hubble', figures);

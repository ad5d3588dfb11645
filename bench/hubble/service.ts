/**
 * The lab part of `npm run bench -- hubble` (root only): the datapath
 * benchmark's service path (bench/lib/service-path.ts) built twice, in lab
 * cluster `hubble-on` (Tendril installed as by default: every agent's
 * programs write flow events, the agent turns them into flows, the relay
 * runs) and in `hubble-off` (`--set hubble.enabled=false`: the programs are
 * assembled without any event code, the agent builds no flows, no relay).
 *
 *   hubble_on_vs_off_rps / _cps  rounds; each round runs wrk from the client
 *       pod (pinned to CPU 0) to the Service's ClusterIP (backend pinned to
 *       CPU 1) in both clusters, ABBA (the order flips every round),
 *       keep-alive (rps) and `Connection: close` (cps). Ratio = median of the
 *       per-round ratios (on / off).
 *   event_to_observe_p99_ms  in `hubble-on`, `tendril hubble observe -f -o
 *       json --from-pod default/bench-client` (the CLI, through the relay)
 *       runs; a node process in the client pod opens one TCP connection per
 *       probe to the backend from a source port of its own and prints the
 *       wall time just before connect(); a sample is the time from there to
 *       the first printed flow with that source port.
 */
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT, inPodCommand, sleep } from '../../test/e2e/lab-fixture.js';
import { wrk } from '../lib/pod.js';
import { createServicePath, type ServicePath } from '../lib/service-path.js';
import { abbaRounds, alternatingAbba, finite, ratioFigure, type Throughput } from '../lib/abba.js';
import { median, percentile, type Figure } from '../lib/report.js';

const CLIENT_CPU = '0';
const SERVER_CPU = '1';
const PORT = 8080;

/** Options of the lab part. */
export interface HubbleServiceOptions {
  home: string;
  rounds: number;
  seconds: number;
  /** Probes for event_to_observe (0: skip). */
  probes: number;
  log: (s: string) => void;
}

/** `1m load average (uptime)` now, for the notes. */
const load = (): string => loadavg()[0]!.toFixed(2);

/** Runs the lab part (in the lab useUniqueLab made current); returns its figures. */
export async function hubbleServiceFigures(o: HubbleServiceOptions): Promise<Figure[]> {
  const paths: { on?: ServicePath; off?: ServicePath } = {};
  try {
    paths.on = await createServicePath({
      name: 'hubble-on',
      home: o.home,
      backendPorts: [PORT],
      log: o.log,
    });
    paths.off = await createServicePath({
      name: 'hubble-off',
      home: o.home,
      set: ['hubble-enabled=false'],
      backendPorts: [PORT],
      log: o.log,
    });
    const on = paths.on;
    const off = paths.off;
    for (const p of [on, off]) p.pinBackend(SERVER_CPU);
    const run = (p: ServicePath, close: boolean) =>
      wrk(p.client, `http://${p.vip}:80/`, { seconds: o.seconds, close, cpu: CLIENT_CPU });
    // warm-up, not recorded
    for (const p of [on, off]) {
      run(p, false);
      run(p, true);
    }
    const figures: Figure[] = [];
    const loadStart = load();
    // a: hubble on, b: hubble off
    const ab = await abbaRounds(
      o.rounds,
      alternatingAbba,
      (state) => {
        const p = state === 'a' ? on : off;
        return { rps: run(p, false), cps: run(p, true) };
      },
      (r, a, b) =>
        o.log(
          `round ${r + 1}/${o.rounds} (load ${load()}): rps off ${b.rps.toFixed(0)} on ${a.rps.toFixed(0)}, cps off ${b.cps.toFixed(0)} on ${a.cps.toFixed(0)}`,
        ),
    );
    const loadEnd = load();
    const loads = `load average ${loadStart} -> ${loadEnd}`;
    const medianOf = (ts: Throughput[], k: keyof Throughput) => median(finite(ts.map((t) => t[k])));
    figures.push(
      ratioFigure('hubble_on_vs_off_rps', ab.rpsRatio, `${loads}; target >= 0.95`),
      ratioFigure('hubble_on_vs_off_cps', ab.cpsRatio, `${loads}; target >= 0.95`),
      {
        name: 'hubble_on_rps',
        value: medianOf(ab.a, 'rps'),
        unit: 'req/s',
        note: 'keep-alive, wrk -c16',
      },
      { name: 'hubble_off_rps', value: medianOf(ab.b, 'rps'), unit: 'req/s', note: 'keep-alive' },
      {
        name: 'hubble_on_cps',
        value: medianOf(ab.a, 'cps'),
        unit: 'req/s',
        note: 'new connection per request',
      },
      {
        name: 'hubble_off_cps',
        value: medianOf(ab.b, 'cps'),
        unit: 'req/s',
        note: 'new connection per request',
      },
      {
        name: 'hubble_on_vs_off_load_start',
        value: Number(loadStart),
        unit: '',
        note: '1m load average when the rounds began',
      },
      {
        name: 'hubble_on_vs_off_load_end',
        value: Number(loadEnd),
        unit: '',
        note: 'when they ended',
      },
    );
    if (o.probes > 0) figures.push(...(await eventToObserve(on, o)));
    return figures;
  } finally {
    paths.on?.close();
    paths.off?.close();
  }
}

/**
 * The probe sender run inside the client pod: for each line "PORT" on stdin it
 * prints "PORT WALL_MS" just before connecting to HOST:8080 from that source port,
 * then closes the connection once it is up (or failed).
 */
const PROBE_SCRIPT = `
const net = require('node:net');
const host = process.argv[1];
require('node:readline').createInterface({ input: process.stdin }).on('line', (l) => {
  const port = Number(l);
  const t = performance.timeOrigin + performance.now();
  const s = net.connect({ host, port: ${PORT}, localPort: port });
  process.stdout.write(port + ' ' + t + '\\n');
  s.on('connect', () => s.destroy());
  s.on('error', () => {});
});
`;

async function eventToObserve(p: ServicePath, o: HubbleServiceOptions): Promise<Figure[]> {
  const observe = spawn(
    process.execPath,
    [
      join(ROOT, 'bin/tendril.mjs'),
      'hubble',
      'observe',
      '--context',
      `lab-${p.cluster.name}`,
      '-f',
      '-o',
      'json',
      '--from-pod',
      'default/bench-client',
    ],
    { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let observeErr = '';
  observe.stderr.setEncoding('utf8').on('data', (d: string) => (observeErr += d));
  const [cmd, args] = inPodCommand(p.client, [process.execPath, '-e', PROBE_SCRIPT, p.backendIP]);
  const sender = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const sent = new Map<number, number>();
  const seen = new Map<number, number>();
  createInterface({ input: sender.stdout! }).on('line', (l) => {
    const [port, t] = l.split(' ').map(Number) as [number, number];
    sent.set(port, t);
  });
  createInterface({ input: observe.stdout }).on('line', (l) => {
    const now = performance.timeOrigin + performance.now();
    const m = /"source_?[pP]ort":\s*(\d+)/.exec(l);
    if (m && !seen.has(Number(m[1]))) seen.set(Number(m[1]), now);
  });
  try {
    // until the observer streams: warm-up probes until one is printed
    const base = 40_000 + (process.pid % 1000) * 10;
    let ready = false;
    for (let i = 0; i < 100 && !ready; i++) {
      sender.stdin!.write(`${base - 1 - i}\n`);
      await sleep(300);
      ready = [...seen.keys()].some((k) => k < base && k >= base - 100);
      if (observe.exitCode !== null)
        throw new Error(`tendril hubble observe exited ${observe.exitCode}: ${observeErr}`);
    }
    if (!ready)
      throw new Error(`tendril hubble observe printed no probe flow in 30 s: ${observeErr}`);
    const loadStart = load();
    const samples: number[] = [];
    let missing = 0;
    for (let i = 0; i < o.probes; i++) {
      const port = base + (i % 9000);
      seen.delete(port);
      sent.delete(port);
      sender.stdin!.write(`${port}\n`);
      const end = Date.now() + 5000;
      while (!(seen.has(port) && sent.has(port)) && Date.now() < end) await sleep(2);
      if (seen.has(port) && sent.has(port)) samples.push(seen.get(port)! - sent.get(port)!);
      else missing++;
      await sleep(20 + (i % 7) * 10); // probes apart, not in phase with any timer
    }
    return [
      {
        name: 'event_to_observe_p99_ms',
        value: percentile(samples, 99),
        unit: 'ms',
        note: `connect() in the client pod -> its flow printed by tendril hubble observe -f (relay), ${samples.length} samples, median ${median(samples).toFixed(1)}, ${missing} not seen in 5 s; load average ${loadStart} -> ${load()}; target <= 100`,
      },
      {
        name: 'event_to_observe_p50_ms',
        value: median(samples),
        unit: 'ms',
        note: 'median of the same samples',
      },
    ];
  } finally {
    sender.stdin!.end();
    sender.kill('SIGTERM');
    observe.kill('SIGTERM');
  }
}

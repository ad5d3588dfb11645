/**
 * `npm run bench -- datapath`: in one lab cluster with Tendril installed, one
 * client pod on one worker and one backend pod (HAProxy answering HTTP 200,
 * and iperf3) on the other, compares four paths, interleaved round by round:
 *   (a) direct      client -> backend pod IP
 *   (b) service     client -> ClusterIP, translated by Tendril's eBPF at the socket
 *   (c) nft         client -> a VIP DNATed by nftables in the client's node (kube-proxy style)
 *   (d) proxy       client -> HAProxy on the client's node (userspace proxy) -> backend
 * For each: requests/s with keep-alive and with a new connection per request
 * (wrk), and TCP throughput (iperf3). Writes bench/results/datapath.json.
 *
 * Method: rounds; each round measures every path twice (wrk keep-alive, wrk
 * with a new connection per request, then iperf3), in a rotated order and
 * then its mirror (ABCD DCBA), so drifts of the shared 2-vCPU machine hit all
 * paths alike. iperf3 runs last S seconds after an omitted first second
 * (`-t S -O 1`), past slow start / BBR's startup. The client (wrk, iperf3 -c,
 * and the node HAProxy of (d)) is pinned to CPU 0 and the backend pod's
 * processes to CPU 1 (taskset), so every path runs with the same placement.
 * Absolute figures are medians over rounds; the ratios are medians of the
 * per-round ratios (A and B from the same round), with their 25th and 75th
 * percentiles for the throughput ratio. Concurrent pairs: each round also
 * runs wrk on the service path and on each other path at once, and iperf3 on
 * the service path and the direct path at once (two iperf3 servers, 5201 and
 * 5202, swapped between the paths every round), so both sides of a ratio see
 * the same machine load. After the rounds, one more iperf3 run on the service
 * and on the direct path counts the runs of the client node's socket-LB
 * programs (bench/lib/bpf-stats.ts): a few per connection, none per packet.
 *
 * Options: --rounds N (20), --seconds S per wrk run (1), --iperf-seconds S
 * (5), --iperf-omit S (1).
 */
import { spawn, execFile, execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { inPod, inPodCommand, useUniqueLab, type LabPod } from '../../test/e2e/lab-fixture.js';
import { releaseLab } from '../lib/lab.js';
import { requestsPerSec, wrkArgv, wrkTimeoutMs } from '../lib/pod.js';
import { createServicePath } from '../lib/service-path.js';
import { programRunsDuring, type ProgramRuns } from '../lib/bpf-stats.js';
import { median, percentile, report, type Figure } from '../lib/report.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '20' },
    seconds: { type: 'string', default: '1' },
    'iperf-seconds': { type: 'string', default: '5' },
    'iperf-omit': { type: 'string', default: '1' },
  },
});
/** The value of option NAME as a whole number >= MIN, or exit with a message naming the option. */
function intOption(name: keyof typeof values, min: number): number {
  const v = Number(values[name]);
  if (!Number.isInteger(v) || v < min) {
    process.stderr.write(`--${name} ${values[name]}: expected a whole number >= ${min}\n`);
    process.exit(2);
  }
  return v;
}
const rounds = intOption('rounds', 1);
const seconds = intOption('seconds', 1);
const iperfSeconds = intOption('iperf-seconds', 1);
const iperfOmit = intOption('iperf-omit', 0);
/** CPUs for the client side and the server side (different cores). */
const CLIENT_CPU = '0';
const SERVER_CPU = '1';

const lab = useUniqueLab('dp', 'bench');
const { home } = lab;

const { nodeCgroup } = await import('../../src/lab/layout.js');

const execFileP = promisify(execFile);
const log = (s: string) => process.stderr.write(`${s}\n`);
const children: Array<{ kill(sig?: NodeJS.Signals): boolean }> = [];

/**
 * The backend answers every path on its own port (service 8080, direct 8081,
 * nft 8082, proxy 8083). With "Connection: close" the backend closes first and
 * keeps the TIME_WAIT; a client port reused on the same 4-tuple is accepted
 * only if its SYN's timestamp is newer, and Linux derives the timestamp offset
 * from the destination the client dialled (the VIP for nft, the pod IP for
 * direct and service). Sharing one port let a path's SYNs land on another
 * path's TIME_WAITs with older-looking timestamps: dropped, and retried a
 * second later. That cost every path, and nft the most (cps 1-2k instead of
 * 7-9k). One port per path keeps each path's TIME_WAITs to itself.
 */
const PORT = { service: 8080, direct: 8081, nft: 8082, proxy: 8083 } as const;

/** wrk from the client pod (wrkArgv, on the client CPU): requests/s; connect errors of keep-alive runs are logged. */
function wrk(pod: LabPod, url: string, close: boolean): number {
  try {
    const out = inPod(
      pod,
      wrkArgv(url, { seconds, close, cpu: CLIENT_CPU }),
      wrkTimeoutMs(seconds),
    );
    const errs = /Non-2xx|Socket errors: connect (\d+)/.exec(out);
    if (errs && /connect [1-9]/.test(out) && !close)
      log(
        `  wrk errors: ${out
          .split('\n')
          .filter((l) => /errors/.test(l))
          .join(' ')}`,
      );
    return requestsPerSec(out);
  } catch (err) {
    log(`  wrk ${url} failed: ${(err as Error).message.split('\n')[0]}`);
    return NaN;
  }
}

/** wrk against two URLs at the same time (both on the client CPU): [a, b] requests/s. */
async function wrkPair(
  pod: LabPod,
  urls: readonly [string, string],
  close: boolean,
): Promise<[number, number]> {
  const one = (url: string) =>
    execFileP(...inPodCommand(pod, wrkArgv(url, { seconds, close, cpu: CLIENT_CPU })), {
      encoding: 'utf8',
      timeout: wrkTimeoutMs(seconds),
    }).then(
      (r) => requestsPerSec(r.stdout),
      () => NaN,
    );
  const [a, b] = await Promise.all([one(urls[0]), one(urls[1])]);
  return [a, b];
}

/** The argv of one iperf3 run from the client CPU: `-t S -O omit`, JSON output. */
function iperfArgv(host: string, port: number): string[] {
  return [
    'taskset',
    '-c',
    CLIENT_CPU,
    'iperf3',
    '-J',
    '-c',
    host,
    '-p',
    String(port),
    '-t',
    String(iperfSeconds),
    '-O',
    String(iperfOmit),
  ];
}

/** How long one iperf3 run may take before it is killed, in ms. */
const iperfTimeoutMs = (iperfSeconds + iperfOmit + 20) * 1000;

/** Gbit/s received in iperf3's JSON output (the omitted seconds excluded). */
function gbitsPerSec(out: string): number {
  return (
    (JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received
      .bits_per_second / 1e9
  );
}

/** iperf3 from the client pod to HOST:PORT: Gbit/s, NaN (logged) when it failed. */
function iperf(pod: LabPod, host: string, port: number): number {
  try {
    return gbitsPerSec(inPod(pod, iperfArgv(host, port), iperfTimeoutMs));
  } catch (err) {
    log(`  iperf3 ${host}:${port} failed: ${(err as Error).message.split('\n')[0]}`);
    return NaN;
  }
}

/** iperf3 against two servers at the same time (both clients on the client CPU): [a, b] Gbit/s. */
async function iperfPair(
  pod: LabPod,
  targets: readonly [readonly [string, number], readonly [string, number]],
): Promise<[number, number]> {
  const one = ([host, port]: readonly [string, number]) =>
    execFileP(...inPodCommand(pod, iperfArgv(host, port)), {
      encoding: 'utf8',
      timeout: iperfTimeoutMs,
    }).then(
      (r) => gbitsPerSec(r.stdout),
      (err: Error) => {
        log(`  iperf3 ${host}:${port} (pair) failed: ${err.message.split('\n')[0]}`);
        return NaN;
      },
    );
  const [a, b] = await Promise.all([one(targets[0]), one(targets[1])]);
  return [a, b];
}

async function main(): Promise<void> {
  const sp = await createServicePath({
    name: 'bench',
    home,
    backendPorts: Object.values(PORT),
    backendExtra: [
      {
        name: 'iperf',
        image: 'local/iperf3',
        command: ['iperf3', '-s', '-p', '5201'],
        ports: [{ containerPort: 5201 }],
      },
      // a second server for the concurrent pair (one iperf3 server runs one test at a time)
      {
        name: 'iperf2',
        image: 'local/iperf3',
        command: ['iperf3', '-s', '-p', '5202'],
        ports: [{ containerPort: 5202 }],
      },
    ],
    servicePorts: [
      { name: 'iperf', port: 5201, targetPort: 5201 },
      { name: 'iperf2', port: 5202, targetPort: 5202 },
    ],
    log,
  }).catch(async (err: unknown) => {
    if (await releaseLab(lab, log)) rmSync(home, { recursive: true, force: true });
    throw err;
  });
  try {
    const { clientNode: w2, client: pod, backendIP: bip, vip } = sp;

    // (c) kube-proxy-style DNAT in the client's node
    const NFT_VIP = '10.96.250.250';
    execFileSync('nsenter', [`--net=/run/netns/${w2.netns}`, 'nft', '-f', '-'], {
      input: `table ip tendril_bench_nat {
  chain prerouting { type nat hook prerouting priority dstnat; policy accept;
    ip daddr ${NFT_VIP} tcp dport 80 dnat to ${bip}:${PORT.nft}
    ip daddr ${NFT_VIP} tcp dport 5201 dnat to ${bip}:5201
  }
}
`,
    });
    // (d) HAProxy on the client's node
    const proxyCfg = join(home, 'node-proxy.cfg');
    writeFileSync(
      proxyCfg,
      `global\n  maxconn 4000\ndefaults\n  timeout client 30s\n  timeout server 30s\n  timeout connect 5s\n` +
        `frontend px\n  mode http\n  bind ${w2.ip}:18080\n  default_backend b\nbackend b\n  mode http\n  server s1 ${bip}:${PORT.proxy}\n` +
        `frontend ipx\n  mode tcp\n  bind ${w2.ip}:15201\n  default_backend ib\nbackend ib\n  mode tcp\n  server s1 ${bip}:5201\n`,
    );
    const proxy = spawn(
      'nsenter',
      [
        `--net=/run/netns/${w2.netns}`,
        'taskset',
        '-c',
        CLIENT_CPU,
        'haproxy',
        '-db',
        '-f',
        proxyCfg,
      ],
      { stdio: 'ignore' },
    );
    children.push(proxy);

    const paths = {
      direct: { http: `http://${bip}:${PORT.direct}/`, iperf: [bip, 5201] as const },
      service: { http: `http://${vip}:80/`, iperf: [vip, 5201] as const },
      nft: { http: `http://${NFT_VIP}:80/`, iperf: [NFT_VIP, 5201] as const },
      proxy: { http: `http://${w2.ip}:18080/`, iperf: [w2.ip, 15201] as const },
    };
    type P = keyof typeof paths;
    // the backend pod's processes (HAProxy, iperf3 -s) on the server CPU
    const pinned = sp.pinBackend(SERVER_CPU);
    log(`pinned ${pinned} backend processes to CPU ${SERVER_CPU}, clients to CPU ${CLIENT_CPU}`);
    // warm-up (first connections, ARP, page cache), not recorded
    for (const p of Object.keys(paths) as P[]) wrk(pod, paths[p].http, false);
    const res: Record<P, { rps: number[]; cps: number[]; gbps: number[] }> = {
      direct: { rps: [], cps: [], gbps: [] },
      service: { rps: [], cps: [], gbps: [] },
      nft: { rps: [], cps: [], gbps: [] },
      proxy: { rps: [], cps: [], gbps: [] },
    };
    const conc = {
      direct: { rps: [] as number[], cps: [] as number[], gbps: [] as number[] },
      nft: { rps: [] as number[], cps: [] as number[] },
      proxy: { rps: [] as number[], cps: [] as number[] },
    };
    const mean2 = (x: number, y: number) =>
      Number.isFinite(x) && Number.isFinite(y) ? (x + y) / 2 : Number.isFinite(x) ? x : y;
    const loadStart = loadavg()[0]!;
    for (let r = 0; r < rounds; r++) {
      // interleaved: each round measures every path twice, in a rotated order and
      // then its mirror (ABCD DCBA), so a drift within the round hits all paths alike
      const order = (Object.keys(paths) as P[]).map((_, i, a) => a[(i + r) % a.length]!);
      const first: Partial<Record<P, { rps: number; cps: number; gbps: number }>> = {};
      /** Each path's two iperf3 runs of this round (first half / mirrored half), for the log. */
      const runs: Partial<Record<P, string>> = {};
      for (const p of order) {
        first[p] = {
          rps: wrk(pod, paths[p].http, false),
          cps: wrk(pod, paths[p].http, true),
          gbps: iperf(pod, paths[p].iperf[0], paths[p].iperf[1]),
        };
      }
      for (const p of [...order].reverse()) {
        res[p].rps.push(mean2(first[p]!.rps, wrk(pod, paths[p].http, false)));
        res[p].cps.push(mean2(first[p]!.cps, wrk(pod, paths[p].http, true)));
        const g2 = iperf(pod, paths[p].iperf[0], paths[p].iperf[1]);
        res[p].gbps.push(mean2(first[p]!.gbps, g2));
        runs[p] = `${first[p]!.gbps.toFixed(2)}/${g2.toFixed(2)}`;
      }
      // concurrent iperf3 pair: service and direct at once, each on its own
      // server; which server (port) goes with which path alternates by round
      const [sp, dp] = r % 2 === 0 ? [5201, 5202] : [5202, 5201];
      const [sg, dg] = await iperfPair(pod, [
        [vip, sp],
        [bip, dp],
      ]);
      conc.direct.gbps.push(sg / dg);
      // concurrent pairs: service and X at the same time, so both see the same machine load
      for (const x of ['direct', 'nft', 'proxy'] as const) {
        for (const close of [false, true]) {
          const [sv, xv] = await wrkPair(pod, [paths.service.http, paths[x].http], close);
          conc[x][close ? 'cps' : 'rps'].push(sv / xv);
        }
      }
      log(
        `round ${r + 1} (load ${loadavg()[0]!.toFixed(1)}): ` +
          order
            .map(
              (p) =>
                `${p} rps ${res[p].rps.at(-1)?.toFixed(0)} cps ${res[p].cps.at(-1)?.toFixed(0)} ${res[p].gbps.at(-1)?.toFixed(2)} Gbit/s (${runs[p]})`,
            )
            .join(' | ') +
          ` | pair service ${sg.toFixed(2)} direct ${dg.toFixed(2)} Gbit/s`,
      );
    }
    const loadEnd = loadavg()[0]!;
    // the client node's socket-LB programs over one TCP iperf3 run per path:
    // connect4 runs per connect() (iperf3 makes two), getpeername4 per call;
    // sendmsg4/recvmsg4 are UDP hooks. Hundreds of thousands of runs here
    // would mean a program running per packet or per sendmsg() on TCP.
    const lbRuns: Partial<Record<'service' | 'direct', ProgramRuns[]>> = {};
    for (const p of ['service', 'direct'] as const) {
      const { value, programs } = await programRunsDuring(nodeCgroup('bench', w2.name), () =>
        iperf(pod, paths[p].iperf[0], paths[p].iperf[1]),
      );
      lbRuns[p] = programs;
      log(
        `${p} iperf3 ${value.toFixed(2)} Gbit/s, socket-LB program runs: ` +
          programs.map((x) => `${x.name} ${x.runs} (${x.ns} ns)`).join(', '),
      );
    }
    const m = (p: P, k: 'rps' | 'cps' | 'gbps') =>
      median(res[p][k].filter((x) => Number.isFinite(x)));
    const figures: Figure[] = [];
    for (const p of Object.keys(paths) as P[]) {
      figures.push({
        name: `${p}_rps`,
        value: m(p, 'rps'),
        unit: 'req/s',
        note: 'keep-alive, wrk -c16',
      });
      figures.push({
        name: `${p}_cps`,
        value: m(p, 'cps'),
        unit: 'req/s',
        note: 'new connection per request',
      });
      figures.push({
        name: `${p}_gbps`,
        value: m(p, 'gbps'),
        unit: 'Gbit/s',
        note: `iperf3 -t ${iperfSeconds} -O ${iperfOmit}, mean of 2 runs per round`,
      });
    }
    /** Median over rounds of a/b measured in the same round. */
    const ratios = (a: P, b: P, k: 'rps' | 'cps' | 'gbps') =>
      res[a][k].map((x, i) => x / res[b][k][i]!).filter((x) => Number.isFinite(x));
    const ratio = (a: P, b: P, k: 'rps' | 'cps' | 'gbps') => median(ratios(a, b, k));
    const note = 'median of per-round ratios';
    figures.push({
      name: 'service_vs_direct_rps',
      value: ratio('service', 'direct', 'rps'),
      unit: 'ratio',
      note: `${note}; target >= 0.95`,
    });
    figures.push({
      name: 'service_vs_direct_cps',
      value: ratio('service', 'direct', 'cps'),
      unit: 'ratio',
      note: `${note}; target >= 0.95`,
    });
    figures.push({
      name: 'service_vs_direct_gbps',
      value: ratio('service', 'direct', 'gbps'),
      unit: 'ratio',
      note: `${note}; target >= 0.97`,
    });
    for (const q of [25, 75])
      figures.push({
        name: `service_vs_direct_gbps_p${q}`,
        value: percentile(ratios('service', 'direct', 'gbps'), q),
        unit: 'ratio',
        note: `${q}th percentile of the per-round ratios`,
      });
    figures.push({
      name: 'service_vs_nft_rps',
      value: ratio('service', 'nft', 'rps'),
      unit: 'ratio',
      note: `${note}; > 1: service ahead`,
    });
    figures.push({
      name: 'service_vs_nft_cps',
      value: ratio('service', 'nft', 'cps'),
      unit: 'ratio',
      note,
    });
    figures.push({
      name: 'service_vs_proxy_rps',
      value: ratio('service', 'proxy', 'rps'),
      unit: 'ratio',
      note,
    });
    figures.push({
      name: 'service_vs_proxy_cps',
      value: ratio('service', 'proxy', 'cps'),
      unit: 'ratio',
      note,
    });
    for (const x of ['direct', 'nft', 'proxy'] as const)
      for (const k of ['rps', 'cps'] as const)
        figures.push({
          name: `service_vs_${x}_${k}_concurrent`,
          value: median(conc[x][k].filter((v) => Number.isFinite(v))),
          unit: 'ratio',
          note: 'median over rounds, both wrk at once on the client CPU',
        });
    const pairG = conc.direct.gbps.filter((v) => Number.isFinite(v));
    figures.push({
      name: 'service_vs_direct_gbps_concurrent',
      value: median(pairG),
      unit: 'ratio',
      note: 'median over rounds, both iperf3 at once on the client CPU',
    });
    for (const q of [25, 75])
      figures.push({
        name: `service_vs_direct_gbps_concurrent_p${q}`,
        value: percentile(pairG, q),
        unit: 'ratio',
        note: `${q}th percentile over rounds`,
      });
    for (const p of ['service', 'direct'] as const) {
      const progs = lbRuns[p] ?? [];
      figures.push({
        name: `${p}_iperf_lb_runs`,
        value: progs.reduce((n, x) => n + x.runs, 0),
        unit: 'runs',
        note: `socket-LB programs over one iperf3 run: ${progs
          .filter((x) => x.runs > 0)
          .map((x) => `${x.name} ${x.runs}`)
          .join(', ')}; per connection, not per packet`,
      });
      figures.push({
        name: `${p}_iperf_lb_us`,
        value: progs.reduce((n, x) => n + x.ns, 0) / 1000,
        unit: 'us',
        note: 'their run time in total (kernel.bpf_stats_enabled)',
      });
    }
    figures.push({ name: 'rounds', value: rounds, unit: '' });
    figures.push({
      name: 'iperf_seconds',
      value: iperfSeconds,
      unit: 's',
      note: `after ${iperfOmit} s omitted`,
    });
    figures.push({ name: 'loadavg_1m', value: loadStart, unit: '', note: 'when the rounds began' });
    figures.push({
      name: 'loadavg_1m_end',
      value: loadEnd,
      unit: '',
      note: 'when the rounds ended',
    });
    report('datapath', figures);
  } finally {
    for (const ch of children) ch.kill('SIGTERM');
    sp.close();
    if (await releaseLab(lab, log)) rmSync(home, { recursive: true, force: true });
  }
}

await main();

/**
 * Chaos benchmark (as root): two meshed lab clusters, a global service `echo`
 * with a backend in each, and cross-cluster HTTP load from a pod of cluster2
 * (bench/chaos/load-client.mjs in the pod's cgroup and netns: a new connection
 * per request and one keep-alive connection, no retries) while every daemon
 * of both clusters is SIGKILLed several times by its pid (the lab supervisor
 * restarts it) and the inter-cluster traffic on the lab's underlay gets delay
 * and loss (tc netem on the underlay bridge ports, matched by the other
 * cluster's node and pod addresses). Meanwhile Secrets are written to
 * cluster1's API server, which is among the killed.
 *
 *   chaos_requests                    requests the load client made
 *   chaos_failed_requests             of those, failed (error, timeout, non-2xx); must be 0
 *   chaos_stale_entries_after_resync  after the faults stop and the mesh resyncs: entries of every
 *                                     node's BPF ipcache and service maps that differ from the state
 *                                     before the faults (extra + missing)
 *   chaos_acknowledged_writes_lost    Secrets whose create got a 2xx and are not there afterwards
 *   chaos_acknowledged_writes         creates that got a 2xx
 *   chaos_kills                       SIGKILLs sent
 *   chaos_netem_faults                link fault phases applied (each on every underlay port of both
 *                                     clusters); netem is not in this kernel: an htb class of low rate
 *                                     (delay by queueing) and a short pfifo (loss by tail drop)
 *   chaos_link_drops                  packets those faults dropped
 *
 * CHAOS_KILLS_PER_DAEMON (default 2), CHAOS_SECONDS (least load duration, default 150).
 *
 * Run: npm run bench -- chaos
 */
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { report, type Figure } from '../lib/report.js';
import {
  cliOk,
  createMeshedPair,
  inPodCommand,
  sleep,
  teardownLab,
  until,
  useUniqueLab,
} from '../../test/e2e/lab-fixture.js';

if (process.getuid?.() !== 0) {
  console.error('bench chaos needs root (lab clusters, BPF maps, tc)');
  process.exit(2);
}
const lab = useUniqueLab('chaos', 'bench');
const { KubeClient } = await import('../../src/k8s/client.js');
const { apiServerURL } = await import('../../src/lab/state.js');
const { listDaemonSpecs, daemonPidPath } = await import('../../src/lab/daemons.js');
const { underlayNetns, nodeBpffsDir } = await import('../../src/lab/layout.js');
const { underlayPortName } = await import('../../src/lab/netns.js');
const { readPinnedServices } = await import('../../src/datapath/linux/lb/index.js');
const { openPinnedIPCache, keyToPrefix, PIN } = await import('../../src/datapath/linux/maps.js');

const KILLS_PER_DAEMON = Number(process.env.CHAOS_KILLS_PER_DAEMON ?? 2);
const LOAD_SECONDS = Number(process.env.CHAOS_SECONDS ?? 150);
const load0 = loadavg()[0]!;
const t0 = Date.now();
const log = (m: string) => console.log(`[chaos ${((Date.now() - t0) / 1000).toFixed(0)}s] ${m}`);

const echo = `apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, labels: {app: echo}}
spec:
  replicas: 1
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      containers:
        - {name: echo, image: mendhak/http-https-echo:28, ports: [{containerPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata:
  name: echo
  annotations: {service.cilium.io/global: "true"}
spec:
  selector: {app: echo}
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080}]
`;

type Pod = {
  metadata: { name: string; uid: string };
  spec: { nodeName: string };
  status?: { phase?: string; podIP?: string };
};

/** Every node's ipcache and service map entries, as strings. */
function mapState(clusters: Array<{ name: string; nodes: Array<{ name: string }> }>): Set<string> {
  const out = new Set<string>();
  for (const c of clusters)
    for (const n of c.nodes) {
      const dir = nodeBpffsDir(c.name, n.name);
      if (existsSync(join(dir, PIN.ipcache))) {
        const m = openPinnedIPCache(dir);
        try {
          for (const [k, v] of m.entries())
            out.add(`${n.name} ipcache ${keyToPrefix(k)} id=${v.identity} tunnel=${v.hostIP}`);
        } finally {
          m.close();
        }
      }
      for (const s of readPinnedServices(dir) ?? [])
        for (const b of s.backends.length ? s.backends : [undefined])
          out.add(
            `${n.name} service ${s.frontend.ip}:${s.frontend.port}/${s.frontend.protocol} -> ${
              b ? `${b.ip}:${b.port} c${b.clusterId} ${b.ready ? 'active' : 'terminating'}` : 'none'
            }`,
          );
    }
  return out;
}
function diff(a: Set<string>, b: Set<string>): string[] {
  return [
    ...[...a].filter((x) => !b.has(x)).map((x) => `missing: ${x}`),
    ...[...b].filter((x) => !a.has(x)).map((x) => `extra:   ${x}`),
  ];
}

const figures: Figure[] = [];
let exitCode = 0;
const netemPorts: string[] = [];
const ulay = () => underlayNetns();
function tc(args: string[]): void {
  execFileSync('ip', ['netns', 'exec', ulay(), 'tc', ...args], { stdio: 'pipe', timeout: 10_000 });
}
/** Adds (or changes) HTB class CLASSID below 1: on PORT at RATE. */
function htbClass(verb: 'add' | 'change', port: string, classid: string, rate: string): void {
  tc(['class', verb, 'dev', port, 'parent', '1:', 'classid', classid, 'htb', 'rate', rate]);
}
/** Adds (or replaces) the pfifo queue 30: of LIMIT packets below the slow class 1:3 on PORT. */
function slowQueue(verb: 'add' | 'replace', port: string, limit: number): void {
  tc([
    'qdisc',
    verb,
    'dev',
    port,
    'parent',
    '1:3',
    'handle',
    '30:',
    'pfifo',
    'limit',
    String(limit),
  ]);
}
function clearNetem(): void {
  for (const p of netemPorts)
    try {
      tc(['qdisc', 'del', 'dev', p, 'root']);
    } catch {
      // none there
    }
}

try {
  log('creating two meshed lab clusters');
  const { c1, c2 } = await createMeshedPair();
  const k1 = new KubeClient({ server: apiServerURL(c1), timeoutMs: 5000 });
  const k2 = new KubeClient({ server: apiServerURL(c2), timeoutMs: 5000 });
  for (const ctx of ['lab-cluster1', 'lab-cluster2'])
    await cliOk(['--context', ctx, 'apply', '-f', '-'], { input: echo });
  const running = async (k: InstanceType<typeof KubeClient>) =>
    (
      (await k.list('v1', 'Pod', { namespace: 'default', labelSelector: 'app=echo' }))
        .items as unknown as Pod[]
    ).filter((p) => p.status?.phase === 'Running' && p.status.podIP);
  const [p1] = await until(
    'echo pod of cluster1',
    async () => {
      const l = await running(k1);
      return l.length ? l : undefined;
    },
    180_000,
  );
  const [p2] = await until(
    'echo pod of cluster2',
    async () => {
      const l = await running(k2);
      return l.length ? l : undefined;
    },
    180_000,
  );
  const vip = (await k2.get('v1', 'Service', 'echo', { namespace: 'default' })).spec
    .clusterIP as string;
  const want = [`${p1!.status!.podIP}:8080`, `${p2!.status!.podIP}:8080`];
  // Both backends in cluster2's worker's service map.
  await until(
    'both clusters\u2019 backends in cluster2\u2019s service map',
    async () => {
      const s = readPinnedServices(nodeBpffsDir('cluster2', p2!.spec.nodeName)) ?? [];
      const be = s
        .filter((x) => x.frontend.ip === vip && x.frontend.port === 80)
        .flatMap((x) => x.backends.map((b) => `${b.ip}:${b.port}`));
      return want.every((w) => be.includes(w)) ? be : undefined;
    },
    120_000,
  );
  await sleep(5000); // let the ipcache settle too
  const before = mapState([c1, c2]);
  log(`baseline: ${before.size} map entries; VIP ${vip}; backends ${want.join(', ')}`);

  // ---- load
  const client = join(fileURLToPath(new URL('.', import.meta.url)), 'load-client.mjs');
  const [cmd, args] = inPodCommand(
    { cluster: 'cluster2', node: p2!.spec.nodeName, uid: p2!.metadata.uid },
    [process.execPath, client, `http://${vip}/`, String(LOAD_SECONDS * 1000), '200000'],
  );
  const loadProc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let loadOut = '';
  let loadErr = '';
  loadProc.stdout.on('data', (c: Buffer) => (loadOut += c));
  loadProc.stderr.on('data', (c: Buffer) => (loadErr += c));
  const loadDone = new Promise<void>((r) => loadProc.on('close', () => r()));

  // ---- writes to cluster1's API server
  let stopWrites = false;
  const acked: string[] = [];
  let writeAttempts = 0;
  const writer = (async () => {
    for (let i = 0; !stopWrites && i < 100_000; i++) {
      const name = `ack-${i}`;
      writeAttempts++;
      try {
        await k1.create({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name, namespace: 'default', labels: { chaos: 'ack' } },
          data: { i: Buffer.from(String(i)).toString('base64') },
        });
        acked.push(name);
      } catch {
        await sleep(100); // refused or not acknowledged: not counted as acknowledged
      }
    }
  })();

  // ---- faults on the inter-cluster link. This kernel has no sch_netem (nor prio, fq, gact):
  // the inter-cluster traffic (matched by u32 on the other cluster's node and pod addresses)
  // goes to an htb class with a low rate (delay by queueing) and a short pfifo (loss by tail
  // drop); the rest of the port's traffic keeps a 10 Gbit/s default class.
  const phases = [
    { rate: '4mbit', limit: 200 },
    { rate: '1mbit', limit: 20 },
    { rate: '256kbit', limit: 5 },
    { rate: '2mbit', limit: 10 },
  ];
  let netemFaults = 0;
  let linkDrops = 0;
  let stopNetem = false;
  const ports: Array<{ port: string; from: string[] }> = [];
  for (const [c, other] of [
    [c1, c2],
    [c2, c1],
  ] as const)
    for (const n of c.nodes)
      ports.push({
        port: underlayPortName(c.index, n.index),
        from: [...other.nodes.map((o) => `${o.ip}/32`), other.podCIDR],
      });
  const dropsNow = (): number => {
    let d = 0;
    for (const { port } of ports)
      try {
        const q = JSON.parse(
          execFileSync(
            'ip',
            ['netns', 'exec', ulay(), 'tc', '-s', '-j', 'qdisc', 'show', 'dev', port],
            {
              encoding: 'utf8',
              timeout: 10_000,
            },
          ),
        ) as Array<{ handle: string; drops?: number }>;
        d += q.find((x) => x.handle === '30:')?.drops ?? 0;
      } catch {
        // gone
      }
    return d;
  };
  const netem = (async () => {
    await sleep(10_000);
    for (const [i, ph] of phases.entries()) {
      if (stopNetem) break;
      for (const { port, from } of ports) {
        if (i === 0) {
          tc(['qdisc', 'add', 'dev', port, 'root', 'handle', '1:', 'htb', 'default', '1']);
          netemPorts.push(port);
          htbClass('add', port, '1:1', '10gbit');
          htbClass('add', port, '1:3', ph.rate);
          slowQueue('add', port, ph.limit);
          for (const src of from)
            tc([
              'filter',
              'add',
              'dev',
              port,
              'parent',
              '1:',
              'protocol',
              'ip',
              'prio',
              '1',
              'u32',
              'match',
              'ip',
              'src',
              src,
              'flowid',
              '1:3',
            ]);
        } else {
          linkDrops += dropsNow();
          htbClass('change', port, '1:3', ph.rate);
          slowQueue('replace', port, ph.limit);
        }
      }
      netemFaults++;
      log(
        `link fault: rate ${ph.rate}, queue ${ph.limit} packets on inter-cluster traffic (${ports.map((p) => p.port).join(', ')})`,
      );
      await sleep(20_000);
    }
    linkDrops += dropsNow();
    clearNetem();
    log(`link faults removed (${linkDrops} packets dropped)`);
  })().catch((err: unknown) => {
    log(`! link faults failed: ${String(err)}`);
    clearNetem();
  });

  // ---- kills
  let kills = 0;
  const killNotes: string[] = [];
  const daemons = [c1, c2].flatMap((c) =>
    // The Tendril daemons and the lab's API server (kubelets are the lab's, not killed).
    listDaemonSpecs(c.name)
      .filter((d) => /apiserver|clustermesh|etcd|agent|dns|operator|kvstoremesh/.test(d.name))
      .map((d) => ({ c: c.name, d: d.name })),
  );
  log(`daemons: ${daemons.map((x) => `${x.c}/${x.d}`).join(' ')}`);
  const pidOf = (c: string, d: string): number | undefined => {
    try {
      const pid = Number(readFileSync(daemonPidPath(c, d), 'utf8').trim());
      if (!pid) return undefined;
      process.kill(pid, 0);
      return pid;
    } catch {
      return undefined;
    }
  };
  for (let round = 0; round < KILLS_PER_DAEMON; round++)
    for (const { c, d } of daemons) {
      const pid = await until(`${c}/${d} running`, async () => pidOf(c, d), 60_000).catch(
        () => undefined,
      );
      if (!pid) {
        killNotes.push(`${c}/${d}: not running, not killed (round ${round})`);
        continue;
      }
      process.kill(pid, 'SIGKILL');
      kills++;
      log(`SIGKILL ${c}/${d} pid ${pid}`);
      await until(
        `${c}/${d} restarted`,
        async () => {
          const p = pidOf(c, d);
          return p && p !== pid ? p : undefined;
        },
        60_000,
      ).catch(() => killNotes.push(`${c}/${d}: not restarted within 60 s of the kill`));
      await sleep(1500);
    }
  log(`kills done (${kills})`);
  await netem;
  await loadDone;
  stopWrites = true;
  await writer;
  stopNetem = true;

  // ---- results
  const load = JSON.parse(loadOut.trim().split('\n').pop() || '{}') as {
    requests?: number;
    failed?: number;
    newConn?: number;
    keepAlive?: number;
    failures?: Array<{ at: string; keepAlive: boolean; err: string }>;
  };
  if (load.requests === undefined) log(`load client gave no result: ${loadErr.slice(-500)}`);
  for (const f of load.failures ?? [])
    log(`request failed ${f.at} ${f.keepAlive ? 'keep-alive' : 'new-conn'}: ${f.err}`);
  for (const n of killNotes) log(`! ${n}`);
  log(
    `load: ${load.requests} requests (${load.newConn} new-connection, ${load.keepAlive} keep-alive), ${load.failed} failed; writes: ${acked.length} acknowledged of ${writeAttempts}`,
  );

  // resync: both meshes connected again, then the maps compared (bounded wait for them to settle)
  for (const ctx of ['lab-cluster1', 'lab-cluster2'])
    await cliOk(['clustermesh', 'status', '--context', ctx, '--wait', '--wait-duration', '120s'], {
      timeoutMs: 150_000,
    });
  let stale: string[] = [];
  for (let i = 0; i < 30; i++) {
    stale = diff(before, mapState([c1, c2]));
    if (stale.length === 0) break;
    await sleep(2000);
  }
  for (const s of stale.slice(0, 30)) log(`stale ${s}`);

  const present = new Set(
    (
      await until(
        'cluster1 secrets',
        async () =>
          (await k1.list('v1', 'Secret', { namespace: 'default', labelSelector: 'chaos=ack' }))
            .items,
        60_000,
      )
    ).map((o) => o.metadata.name),
  );
  const lost = acked.filter((n) => !present.has(n));
  for (const n of lost.slice(0, 20)) log(`acknowledged write lost: ${n}`);

  figures.push(
    {
      name: 'chaos_requests',
      value: load.requests ?? 0,
      unit: 'requests',
      note: `${load.newConn ?? 0} new-connection, ${load.keepAlive ?? 0} keep-alive; ${LOAD_SECONDS} s`,
    },
    {
      name: 'chaos_failed_requests',
      value: load.requests === undefined ? NaN : load.failed!,
      unit: 'requests',
      note: 'no retries; must be 0',
    },
    {
      name: 'chaos_stale_entries_after_resync',
      value: stale.length,
      unit: 'entries',
      note: `of ${before.size} ipcache + service map entries on ${c1.nodes.length + c2.nodes.length} nodes`,
    },
    {
      name: 'chaos_acknowledged_writes',
      value: acked.length,
      unit: 'writes',
      note: `of ${writeAttempts} attempted`,
    },
    {
      name: 'chaos_acknowledged_writes_lost',
      value: lost.length,
      unit: 'writes',
      note: 'must be 0',
    },
    {
      name: 'chaos_kills',
      value: kills,
      unit: 'SIGKILL',
      note: `${daemons.length} daemons x ${KILLS_PER_DAEMON}`,
    },
    {
      name: 'chaos_netem_faults',
      value: netemFaults,
      unit: 'phases',
      note: `htb rate/pfifo limit (no sch_netem in this kernel) on ${ports.length} underlay ports: ${phases.map((p) => `${p.rate}/${p.limit}`).join(', ')}`,
    },
    {
      name: 'chaos_link_drops',
      value: linkDrops,
      unit: 'packets',
      note: 'dropped by the faulted inter-cluster link',
    },
    {
      name: 'chaos_seconds',
      value: (Date.now() - t0) / 1000,
      unit: 's',
      note: 'whole run with lab create',
    },
    { name: 'load_average_1m', value: load0, unit: '', note: 'at start' },
  );
} catch (err) {
  console.error(`chaos run failed: ${(err as Error).stack ?? String(err)}`);
  exitCode = 1;
} finally {
  clearNetem();
  log('tearing the labs down');
  await teardownLab(lab).catch((err) => {
    console.error(`teardown: ${String(err)}`);
    exitCode = 1;
  });
}
if (exitCode === 0) report('chaos', figures);
process.exit(exitCode);

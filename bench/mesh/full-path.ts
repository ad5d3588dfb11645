/**
 * The mesh benchmark's full-path part (root): two lab clusters made with
 * Tendril's own code and CLI (lab create, install, `tendril clustermesh
 * enable` + `connect`), then
 *
 *   propagation_p50_ms / _p99_ms
 *       cluster1: a selector-less global Service `bench-prop` whose
 *       EndpointSlice lists the echo pod; each change flips that endpoint's
 *       `ready` condition false -> true (the write the EndpointSlice
 *       controller makes when a pod becomes ready). Timed from just before the
 *       PATCH to the backend being in an active slot of the service in the
 *       PINNED BPF service map of cluster2's worker (lookups every ~1 ms).
 *       Between changes the endpoint is set not ready and the bench waits for
 *       the backend to leave the map (not timed). After the lab has gone
 *       quiet (the machine < 0.3 cores busy over 2 s) and 1,000 untimed
 *       warm-up changes (--warmup: the daemons' hot paths compiled by V8's
 *       optimizing tier; the first 100 of them are propagation_cold_p50_ms);
 *       measured without the per-hop observers below (three more watchers
 *       woken by every change);
 *   propagation_cpu_ms_per_change
 *       CPU time of every process on the machine during that series, per
 *       endpoint write (ready and not-ready flips both count);
 *   propagation_observed_p50_ms
 *       the same, in a second series with the observers running (what
 *       propagation_p50_ms was before issue 14's split), whose hops follow:
 *   propagation_hop_<hop>_p50_ms / _share_p50_ms
 *       where each change was when, on one clock (performance.timeOrigin +
 *       now in every process): api_ack (the PATCH answered), api_watch (this
 *       process's own watch of the EndpointSlice), etcd1 / etcd2 (a watch of
 *       the service's key in cluster1's mesh etcd and of kvstoremesh's copy in
 *       cluster2's, each from a child in that control plane's netns,
 *       hop-watch.ts), map; _share_ is a hop's own part (the difference to the
 *       hop before it on the path: api_watch -> etcd1 -> etcd2 -> map).
 *   xc_service_vs_direct_rps / _cps
 *       a cluster2 pod -> cluster1's echo pod (HAProxy answering 200) through
 *       the global service's VIP (socket LB in cluster2) vs the same pod by its
 *       pod IP; wrk as bench/datapath runs it, client on CPU 0, server pod on
 *       CPU 1; rounds of AB BA (rotated); medians of per-round ratios.
 *   bulk_sync_10k_s / bulk_sync_rss_mib
 *       cluster2 has 10,000 global Services (default/bulk-s<j>, not shared);
 *       10,000 ClusterServices x 3 backends are written into cluster1's
 *       clustermesh etcd in the apiserver's layout (cilium/state/services/v1/
 *       cluster1/default/bulk-s<j>, as its syncer batches them, root certificate), so
 *       they travel the real path: cluster2's kvstoremesh -> cluster2's etcd ->
 *       the agent's mesh source -> catalog -> socket LB maps. Timed from the
 *       start of the write until ONE agent's (cluster2's worker) pinned maps
 *       hold 3 active backends for each of the 10,000 VIPs; then that agent's
 *       VmRSS (and VmHWM) from /proc/<pid>/status.
 *
 * Knobs for experiments (environment): MESH_BENCH_QUIET_CORES (0.3: the busy
 * level to wait for before timing), MESH_BENCH_GAP_MS (5: the pause between
 * the backend leaving the map and the next timed change; 100 ms was no faster
 * on this VM: idle vCPUs wake slower).
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import {
  cliOk,
  connectMesh,
  inPod,
  podRunning,
  sleep,
  until,
  type UniqueLab,
} from '../../test/e2e/lab-fixture.js';
import { releaseLab } from '../lib/lab.js';
import { backendHaproxyCfg, clientPod, haproxyPod, pinCgroup, wrk } from '../lib/pod.js';
import { median, percentile, type Figure } from '../lib/report.js';
import { cpuBetween, daemonLabel, processCpu, processCpuS, waitForQuiet } from '../lib/proc-cpu.js';

export interface FullPathOptions {
  /** The run's lab (useUniqueLab: already in process.env). */
  lab: UniqueLab;
  changes: number;
  /** Untimed changes before the timed series (the first 100 are the cold figures). */
  warmup: number;
  services: number;
  rounds: number;
  seconds: number;
  /** Only the propagation figures (no throughput, no bulk sync). */
  propagationOnly?: boolean;
  log: (s: string) => void;
}

/**
 * Before the timed changes the machine must keep less than this many cores
 * busy over 2 s (the lab at rest; the wait is bounded and reported).
 */
const QUIET_CORES = envNumber('MESH_BENCH_QUIET_CORES', 0.3);
/** Pause (ms) between the backend leaving the map and the next timed change. */
const GAP_MS = envNumber('MESH_BENCH_GAP_MS', 5);

/** A non-negative number from the environment, or the default; anything else stops the run. */
function envNumber(name: string, dflt: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return dflt;
  const v = Number(text);
  if (!Number.isFinite(v) || v < 0)
    throw new Error(`${name}=${text} is not a number >= 0: unset it for the default (${dflt})`);
  return v;
}

const CLIENT_CPU = '0';
const SERVER_CPU = '1';

/** Runs the full-path measurements on two fresh lab clusters; deletes them on the way out. */
export async function fullPathFigures(o: FullPathOptions): Promise<Figure[]> {
  const { createCluster } = await import('../../src/lab/create.js');
  const { apiServerURL } = await import('../../src/lab/state.js');
  const { podCgroup, nodeBpffsDir } = await import('../../src/lab/layout.js');
  const { projectRoot } = await import('../../src/lab/daemons.js');
  const { install } = await import('../../src/install/install.js');
  const { KubeClient } = await import('../../src/k8s/client.js');
  const { openLBMaps, LB_PIN, lbPinDir, IPPROTO } =
    await import('../../src/datapath/linux/lb/index.js');
  const { readMeshConfig } = await import('../../src/clustermesh/mesh-files.js');
  type KubeObject = import('../../src/k8s/objects.js').KubeObject;
  type Kube = InstanceType<typeof KubeClient>;

  const log = o.log;
  const home = o.lab.home;
  const running = (k: Kube, name: string) => podRunning(k, name, 120_000);

  const figures: Figure[] = [];
  const kubes: Kube[] = [];
  let maps: ReturnType<typeof openLBMaps> | undefined;
  try {
    log('creating lab clusters cluster1, cluster2 ...');
    const c1 = await createCluster({ name: 'cluster1', nodes: 1, wait: true });
    const c2 = await createCluster({ name: 'cluster2', nodes: 1, wait: true });
    const k1 = new KubeClient({ server: apiServerURL(c1) });
    const k2 = new KubeClient({ server: apiServerURL(c2) });
    kubes.push(k1, k2);
    await install({
      context: 'lab-cluster1',
      clusterName: 'cluster1',
      clusterId: 1,
      progress: log,
    });
    await install({
      context: 'lab-cluster2',
      clusterName: 'cluster2',
      clusterId: 2,
      progress: log,
    });
    await connectMesh(180_000);
    for (const c of ['cluster1', 'cluster2'])
      log(
        (
          await cliOk(['clustermesh', 'status', '--context', `lab-${c}`, '--wait'], {
            timeoutMs: 180_000,
          })
        ).out
          .trim()
          .split('\n')
          .slice(-3)
          .join(' | '),
      );
    const w1 = c1.nodes[1]!;
    const w2 = c2.nodes[1]!;

    // cluster1: the echo backend (HAProxy), its global Service, and the propagation Service.
    const cfgPath = join(home, 'backend-haproxy.cfg');
    writeFileSync(cfgPath, backendHaproxyCfg([8080]));
    const svcSpec = (
      name: string,
      selector?: Record<string, string>,
      shared = true,
    ): KubeObject => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name,
        namespace: 'default',
        annotations: {
          'service.cilium.io/global': 'true',
          ...(shared ? {} : { 'service.cilium.io/shared': 'false' }),
        },
      },
      spec: {
        ...(selector ? { selector } : {}),
        ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
      },
    });
    await k1.create(haproxyPod('bench-echo', w1.name, cfgPath));
    // cluster2 first: the client pod and the same global Services (no local
    // backends; not shared, so cluster1's operator does not import them), as in
    // Cilium; then cluster1's, so cluster2's operator has nothing to import.
    await k2.create(clientPod(w2.name));
    const echoSvc2 = await k2.create<KubeObject>(
      svcSpec('bench-echo', { app: 'bench-echo' }, false),
    );
    const propSvc2 = await k2.create<KubeObject>(svcSpec('bench-prop', undefined, false));
    await k1.create(svcSpec('bench-echo', { app: 'bench-echo' }));
    await k1.create(svcSpec('bench-prop'));
    const echo = await running(k1, 'bench-echo');
    const client = await running(k2, 'bench-client');
    const podIP = echo.status.podIP as string;
    const echoVIP = echoSvc2.spec.clusterIP as string;
    const propVIP = propSvc2.spec.clusterIP as string;
    const sliceName = 'bench-prop-1';
    const slice = (ready: boolean) => ({
      endpoints: [
        { addresses: [podIP], conditions: { ready, serving: ready, terminating: false } },
      ],
    });
    await k1.create({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: sliceName,
        namespace: 'default',
        labels: {
          'kubernetes.io/service-name': 'bench-prop',
          'endpointslice.kubernetes.io/managed-by': 'bench.tendril.io',
        },
      },
      addressType: 'IPv4',
      ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
      ...slice(false),
    } as KubeObject);
    log(
      `echo pod ${podIP} on cluster1/${w1.name}; cluster2 VIPs: bench-echo ${echoVIP}, bench-prop ${propVIP}`,
    );

    // cluster2 worker's pinned LB maps
    const bpffs = nodeBpffsDir('cluster2', w2.name);
    await until(
      'cluster2 LB maps',
      () => (existsSync(join(lbPinDir(bpffs), LB_PIN.services)) ? true : undefined),
      60_000,
      300,
    );
    maps = openLBMaps(bpffs);
    const m = maps;
    /** Active backend IPs of VIP:80/TCP in the pinned maps (undefined: no such service). */
    const backendIPs = (vip: string): string[] | undefined => {
      const key = { vip, dport: 80, proto: IPPROTO.TCP };
      const master = m.services.lookup({ ...key, slot: 0 } as never);
      if (!master) return undefined;
      const ips: string[] = [];
      for (let i = 1; i <= master.count; i++) {
        const s = m.services.lookup({ ...key, slot: i } as never);
        const b = s && m.backends.lookup(s.backendId);
        if (b) ips.push(b.ip);
      }
      return ips;
    };
    const activeCount = (vip: string): number => {
      const master = m.services.lookup({ vip, dport: 80, proto: IPPROTO.TCP, slot: 0 } as never);
      return master ? master.count : -1;
    };
    await until(
      'bench-echo in cluster2 map',
      () => (backendIPs(echoVIP)?.includes(podIP) ? true : undefined),
      120_000,
      300,
    );
    await until(
      'bench-prop in cluster2 map',
      () => (backendIPs(propVIP) ? true : undefined),
      60_000,
      300,
    );

    // ---- propagation ----
    const patch = (ready: boolean) =>
      k1.patch('discovery.k8s.io/v1', 'EndpointSlice', sliceName, slice(ready), {
        namespace: 'default',
      });
    const waitMap = async (present: boolean, timeoutMs: number): Promise<number | undefined> => {
      const t = performance.now();
      for (;;) {
        if ((backendIPs(propVIP) ?? []).includes(podIP) === present) return performance.now() - t;
        if (performance.now() - t > timeoutMs) return undefined;
        await sleep(1);
      }
    };
    const now = () => performance.timeOrigin + performance.now();
    const hops = ['api_ack', 'api_watch', 'etcd1', 'etcd2', 'map'] as const;
    type Hop = (typeof hops)[number];
    const firstAfter = (seen: { t: number; has: boolean }[], t0: number) =>
      seen.find((s) => s.t >= t0 && s.has)?.t;
    /**
     * `n` lone changes: not ready (waits for the backend to leave the map),
     * then ready, timed to the backend in the map. With `observers`, per-hop
     * observers on the shared clock (performance.timeOrigin + now): this
     * process's own watch of the EndpointSlice on cluster1's API server (what
     * the clustermesh-apiserver's informer is sent), and a watch of the
     * service's key in cluster1's mesh etcd (the syncer's write) and in
     * cluster2's (kvstoremesh's copy), each from a child process in that
     * control plane's netns. Those are three more watchers woken by every
     * change on a 2-vCPU machine, so the headline figures come from a run
     * without them.
     */
    const runChanges = async (n: number, observers: boolean) => {
      const at: Record<Hop, number[]> = {
        api_ack: [],
        api_watch: [],
        etcd1: [],
        etcd2: [],
        map: [],
      };
      const lat: number[] = [];
      let missed = 0;
      const apiSeen: { t: number; ready: boolean }[] = [];
      const apiWatch = observers
        ? await k1.watch('discovery.k8s.io/v1', 'EndpointSlice', { namespace: 'default' }, (ev) => {
            if (ev.object?.metadata?.name !== sliceName) return;
            const eps = (
              ev.object as unknown as { endpoints?: { conditions?: { ready?: boolean } }[] }
            ).endpoints;
            apiSeen.push({ t: now(), ready: eps?.[0]?.conditions?.ready === true });
          })
        : undefined;
      const { serviceKey, cacheDir } = await import('../../src/clustermesh/keys.js');
      const etcd1 = observers
        ? await hopWatch(
            c1.nodes[0]!.netns,
            'cluster1',
            'root',
            serviceKey('cluster1', 'default', 'bench-prop'),
            podIP,
          )
        : undefined;
      const etcd2 = observers
        ? await hopWatch(
            c2.nodes[0]!.netns,
            'cluster2',
            'agent',
            `${cacheDir('services', 'cluster1')}/default/bench-prop`,
            podIP,
          )
        : undefined;
      try {
        for (let i = 0; i < n; i++) {
          await patch(false);
          if ((await waitMap(false, 10_000)) === undefined)
            throw new Error('backend did not leave the map in 10 s');
          await sleep(GAP_MS);
          const t0abs = now();
          const t0 = performance.now();
          let ack: number | undefined;
          const patched = patch(true).then(() => (ack = performance.now() - t0));
          let seen: number | undefined;
          const poll = (async () => {
            for (;;) {
              if ((backendIPs(propVIP) ?? []).includes(podIP))
                return (seen = performance.now() - t0);
              if (performance.now() - t0 > 10_000) return undefined;
              await sleep(1);
            }
          })();
          await patched;
          await poll;
          if (seen === undefined) {
            missed++;
            lat.push(10_000);
            continue;
          }
          lat.push(seen);
          if (!etcd1 || !etcd2) continue;
          // the watches' events reach this process a little after they happen; wait for them
          await until(
            'the hop watches',
            () => (firstAfter(etcd2.seen, t0abs) !== undefined ? true : undefined),
            5000,
            2,
          ).catch(() => undefined);
          const rel = (t: number | undefined) => (t === undefined ? NaN : t - t0abs);
          at.api_ack.push(ack!);
          at.api_watch.push(rel(apiSeen.find((s) => s.t >= t0abs && s.ready)?.t));
          at.etcd1.push(rel(firstAfter(etcd1.seen, t0abs)));
          at.etcd2.push(rel(firstAfter(etcd2.seen, t0abs)));
          at.map.push(seen);
          if (seen > 30)
            log(
              `  slow change ${i}: ${hops.map((h) => `${h} ${at[h].at(-1)!.toFixed(1)}`).join(', ')}`,
            );
        }
      } finally {
        apiWatch?.close();
        etcd1?.stop();
        etcd2?.stop();
      }
      return { lat, missed, at };
    };
    // The lab's daemons are still busy for a while after the setup (caches,
    // first syncs, the relay): timing then measures their settling, not a
    // change's path. Wait for the machine to go quiet first (bounded).
    const cores = cpus().length;
    const quiet = await waitForQuiet({
      cores,
      maxCores: QUIET_CORES,
      windowMs: 2000,
      timeoutMs: 90_000,
    });
    log(
      `machine ${quiet.quiet ? 'quiet' : 'still busy'} after ${(quiet.waitedMs / 1000).toFixed(1)} s: ${quiet.cores.toFixed(2)} cores busy over the last 2 s`,
    );
    // warm-up (not timed): the first changes after the setup meet cold code paths
    log(`propagation: ${o.warmup} warm-up changes ...`);
    const cold = (await runChanges(o.warmup, false)).lat.slice(0, 100);
    log(`propagation: ${o.changes} changes without observers ...`);
    const cpu0 = processCpu();
    const { lat, missed } = await runChanges(o.changes, false);
    const perProcess = cpuBetween(cpu0, processCpu());
    // each timed change is two writes (not ready, then ready), each travels the path
    const flips = 2 * o.changes;
    const cpuPerFlip = perProcess.reduce((s, p) => s + p.cpuMs, 0) / flips;
    const top = perProcess
      .slice(0, 8)
      .map((p) => `${daemonLabel(p.cmdline, process.pid, p.pid)} ${(p.cpuMs / flips).toFixed(2)}`)
      .join(', ');
    log(`CPU per endpoint change (ms, every process): ${cpuPerFlip.toFixed(1)}; ${top}`);
    log(`propagation: ${o.changes} changes with the per-hop observers ...`);
    const observed = await runChanges(o.changes, true);
    const at = observed.at;
    figures.push({
      name: 'propagation_p50_ms',
      value: median(lat),
      unit: 'ms',
      note: `${o.changes} ready flips in cluster1 -> backend in cluster2's pinned BPF service map`,
    });
    figures.push({
      name: 'propagation_p99_ms',
      value: percentile(lat, 99),
      unit: 'ms',
      note: 'target <= 30 (issue 14)',
    });
    figures.push({
      name: 'propagation_max_ms',
      value: Math.max(...lat),
      unit: 'ms',
      note: `missed (> 10 s): ${missed}`,
    });
    if (cold.length > 0) {
      figures.push({
        name: 'propagation_cold_p50_ms',
        value: median(cold),
        unit: 'ms',
        note: `the first ${cold.length} changes after the lab is up (the daemons' code not yet optimized; p99 ${percentile(cold, 99).toFixed(1)})`,
      });
    }
    figures.push({
      name: 'propagation_idle_cores_before',
      value: quiet.cores,
      unit: 'cores',
      note: `the machine's busy level over 2 s before the timed changes (waited ${(quiet.waitedMs / 1000).toFixed(0)} s for < ${QUIET_CORES}${quiet.quiet ? '' : ': not reached'})`,
    });
    figures.push({
      name: 'propagation_cpu_ms_per_change',
      value: cpuPerFlip,
      unit: 'ms',
      note: `CPU of every process per endpoint change in the headline series (both flips counted); most: ${top}`,
    });
    figures.push({
      name: 'propagation_observed_p50_ms',
      value: median(observed.lat),
      unit: 'ms',
      note: `the same with the per-hop observers running (3 more watchers per change; p99 ${percentile(observed.lat, 99).toFixed(1)}, missed ${observed.missed})`,
    });
    log(
      `propagation p50 ${median(lat).toFixed(1)} ms p99 ${percentile(lat, 99).toFixed(1)} ms; with the observers p50 ${median(observed.lat).toFixed(1)} ms p99 ${percentile(observed.lat, 99).toFixed(1)} ms`,
    );
    // Per-hop: the time from the PATCH at which each hop had the change (cumulative),
    // and the hop's own share (the difference to the previous hop), p50 and p99.
    const fin = (a: number[]) => a.filter((x) => Number.isFinite(x));
    const hopNote: Record<(typeof hops)[number], string> = {
      api_ack: "PATCH answered by cluster1's API server (its storage committed)",
      api_watch: "the EndpointSlice's watch event from cluster1's API server (the informer's hop)",
      etcd1: "the service key in cluster1's mesh etcd (the clustermesh-apiserver's syncer)",
      etcd2: "kvstoremesh's copy in cluster2's mesh etcd",
      map: "the backend in cluster2's pinned BPF service map (the agent)",
    };
    let prev: number[] | undefined;
    for (const h of hops) {
      const cum = at[h];
      const share =
        prev === undefined || h === 'api_watch'
          ? cum
          : cum.map((v, i) => v - (h === 'etcd1' ? at.api_watch[i]! : prev![i]!));
      figures.push({
        name: `propagation_hop_${h}_p50_ms`,
        value: median(fin(cum)),
        unit: 'ms',
        note: `${hopNote[h]}; from the PATCH (p99 ${percentile(fin(cum), 99).toFixed(1)})`,
      });
      if (h !== 'api_ack' && h !== 'api_watch')
        figures.push({
          name: `propagation_hop_${h}_share_p50_ms`,
          value: median(fin(share)),
          unit: 'ms',
          note: `this hop alone (p99 ${percentile(fin(share), 99).toFixed(1)})`,
        });
      if (h !== 'api_ack') prev = cum;
    }
    log(
      `per hop p50 (cumulative ms from the PATCH): ${hops.map((h) => `${h} ${median(fin(at[h])).toFixed(1)}`).join(', ')}`,
    );
    if (o.propagationOnly) return figures;

    // ---- cross-cluster service vs direct ----
    const pod = { cluster: 'cluster2', node: w2.name, uid: client.metadata.uid! };
    const urls = { service: `http://${echoVIP}:80/`, direct: `http://${podIP}:8080/` };
    for (const u of Object.values(urls))
      await until(
        `${u} from cluster2`,
        () => (inPod(pod, ['curl', '-sf', '-m', '2', u], 5000).includes('ok') ? true : undefined),
        60_000,
        500,
      );
    const pinned = pinCgroup(podCgroup('cluster1', w1.name, echo.metadata.uid!), SERVER_CPU);
    log(`pinned ${pinned} server processes to CPU ${SERVER_CPU}; wrk on CPU ${CLIENT_CPU}`);
    for (const u of Object.values(urls))
      wrk(pod, u, { seconds: o.seconds, close: false, cpu: CLIENT_CPU });
    type P = keyof typeof urls;
    const ratios = { rps: [] as number[], cps: [] as number[] };
    const abs: Record<P, { rps: number[]; cps: number[] }> = {
      service: { rps: [], cps: [] },
      direct: { rps: [], cps: [] },
    };
    const mean2 = (x: number, y: number) => (x + y) / 2;
    for (let r = 0; r < o.rounds; r++) {
      const order: P[] = r % 2 === 0 ? ['service', 'direct'] : ['direct', 'service'];
      const got: Record<P, { rps: number[]; cps: number[] }> = {
        service: { rps: [], cps: [] },
        direct: { rps: [], cps: [] },
      };
      for (const p of [...order, ...[...order].reverse()]) {
        got[p].rps.push(wrk(pod, urls[p], { seconds: o.seconds, close: false, cpu: CLIENT_CPU }));
        got[p].cps.push(wrk(pod, urls[p], { seconds: o.seconds, close: true, cpu: CLIENT_CPU }));
      }
      for (const k of ['rps', 'cps'] as const) {
        const s = mean2(got.service[k][0]!, got.service[k][1]!);
        const d = mean2(got.direct[k][0]!, got.direct[k][1]!);
        abs.service[k].push(s);
        abs.direct[k].push(d);
        ratios[k].push(s / d);
      }
      log(
        `round ${r + 1}: rps service ${abs.service.rps.at(-1)!.toFixed(0)} direct ${abs.direct.rps.at(-1)!.toFixed(0)} | cps service ${abs.service.cps.at(-1)!.toFixed(0)} direct ${abs.direct.cps.at(-1)!.toFixed(0)}`,
      );
    }
    for (const k of ['rps', 'cps'] as const) {
      figures.push({
        name: `xc_service_vs_direct_${k}`,
        value: median(fin(ratios[k])),
        unit: 'ratio',
        note: `median of ${fin(ratios[k]).length}/${o.rounds} per-round ratios; target >= 0.95`,
      });
      figures.push({
        name: `xc_service_${k}`,
        value: median(fin(abs.service[k])),
        unit: 'req/s',
        note: k === 'rps' ? 'keep-alive, wrk -c16' : 'new connection per request',
      });
      figures.push({ name: `xc_direct_${k}`, value: median(fin(abs.direct[k])), unit: 'req/s' });
    }

    // ---- bulk sync ----
    const agentPid = findAgentPid(home, 'cluster2', w2.name);
    const status = () => readFileSync(`/proc/${agentPid}/status`, 'utf8');
    const kib = (field: string) =>
      Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status())?.[1] ?? NaN);
    log(`bulk: creating ${o.services} global Services in cluster2 ...`);
    const vips: string[] = new Array(o.services);
    let next = 0;
    const tSetup = Date.now();
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let j = next++; j < o.services; j = next++) {
          const s = svcSpec(`bulk-s${j}`, undefined, false);
          // retried: the shared machine's API server may time out under load
          const made = await until(
            `service default/bulk-s${j}`,
            () =>
              k2.create<KubeObject>(s).catch(async (e: unknown) => {
                if (!/already exists/.test(String(e))) throw e;
                return k2.get<KubeObject>('v1', 'Service', `bulk-s${j}`, { namespace: 'default' });
              }),
            30_000,
            200,
          );
          vips[j] = made.spec.clusterIP as string;
        }
      }),
    );
    await until(
      'the bulk Services in the agent map',
      () => (vips.every((v) => activeCount(v) >= 0) ? true : undefined),
      600_000,
      1000,
    );
    log(
      `bulk: ${o.services} local Services in the map after ${((Date.now() - tSetup) / 1000).toFixed(1)} s`,
    );
    await sleep(3000);
    const rssBefore = kib('VmRSS');
    const cpuS = () => processCpuS(agentPid);
    const cpuBefore = cpuS();
    const cp1 = c1.nodes[0]!;
    const mesh1 = readMeshConfig('cluster1');
    if (!mesh1) throw new Error('cluster1 has no mesh config');
    const t0 = performance.now();
    const child = spawn(
      'nsenter',
      [
        `--net=/run/netns/${cp1.netns}`,
        process.execPath,
        '--import',
        'tsx',
        join(projectRoot(), 'bench/mesh/bulk-export.ts'),
        '--lab',
        'cluster1',
        '--cluster',
        'cluster1',
        '--cluster-id',
        '1',
        '--endpoint',
        mesh1.localEndpoint,
        '--namespace',
        'default',
        '--services',
        String(o.services),
      ],
      { cwd: projectRoot(), env: process.env, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let childOut = '';
    child.stdout.on('data', (d) => (childOut += String(d)));
    const childDone = new Promise<number>((res) => child.on('exit', (code) => res(code ?? 1)));
    let done = 0;
    let bulkS = NaN;
    /** Progress timeline: [seconds since the write started, services complete, agent CPU s]. */
    const timeline: [number, number, number][] = [];
    let lastMark = -1;
    try {
      for (;;) {
        done = 0;
        for (const v of vips) if (activeCount(v) === 3) done++;
        const el = (performance.now() - t0) / 1000;
        if (Math.floor(el) > lastMark) {
          lastMark = Math.floor(el);
          timeline.push([+el.toFixed(2), done, +(cpuS() - cpuBefore).toFixed(2)]);
        }
        if (done === o.services) {
          bulkS = (performance.now() - t0) / 1000;
          break;
        }
        if (performance.now() - t0 > 180_000) break;
        await sleep(100);
      }
    } finally {
      if (child.exitCode === null) child.kill('SIGTERM');
    }
    const agentCpu = cpuS() - cpuBefore;
    log(`bulk timeline [s, complete, agent cpu s]: ${JSON.stringify(timeline)}`);
    const firstAt = timeline.find(([, d]) => d > 0)?.[0] ?? NaN;
    const code = await childDone;
    const written = childOut
      ? (JSON.parse(childOut.trim().split('\n').at(-1)!) as { ms: number })
      : undefined;
    log(
      `bulk: ${done}/${o.services} complete after ${((performance.now() - t0) / 1000).toFixed(1)} s (writer exit ${code}, write ${written?.ms.toFixed(0)} ms)`,
    );
    figures.push({
      name: 'bulk_sync_10k_s',
      value: bulkS,
      unit: 's',
      note: `${o.services} x 3 backends: write into cluster1's etcd -> all in one cluster2 agent's BPF maps (${done} complete); target <= 10`,
    });
    figures.push({
      name: 'bulk_sync_first_complete_s',
      value: firstAt,
      unit: 's',
      note: "first 1-s sample with any service complete in that agent's maps",
    });
    figures.push({
      name: 'bulk_sync_agent_cpu_s',
      value: agentCpu,
      unit: 's',
      note: "that agent's CPU time (user+system) during bulk_sync_10k_s",
    });
    figures.push({
      name: 'bulk_sync_rss_mib',
      value: kib('VmRSS') / 1024,
      unit: 'MiB',
      note: "that agent's VmRSS afterwards; target <= 300",
    });
    figures.push({
      name: 'bulk_sync_agent_hwm_mib',
      value: kib('VmHWM') / 1024,
      unit: 'MiB',
      note: "that agent's peak RSS (VmHWM)",
    });
    figures.push({
      name: 'bulk_sync_agent_rss_before_mib',
      value: rssBefore / 1024,
      unit: 'MiB',
      note: `with the ${o.services} local Services, before the remote write`,
    });
    figures.push({
      name: 'bulk_export_etcd_write_s',
      value: (written?.ms ?? NaN) / 1000,
      unit: 's',
      note: 'the writer alone (part of bulk_sync_10k_s)',
    });
    return figures;
  } finally {
    maps?.services.close();
    maps?.backends.close();
    maps?.revnat.close();
    maps?.maglev.close();
    for (const k of kubes) k.close();
    await releaseLab(o.lab, log);
  }
}

/** A hop-watch.ts child in a control plane's netns: the changes of `key` in that cluster's mesh etcd. */
async function hopWatch(
  netns: string,
  cluster: string,
  cert: 'root' | 'agent',
  key: string,
  ip: string,
): Promise<{ seen: { t: number; has: boolean }[]; stop: () => void }> {
  const { readMeshConfig } = await import('../../src/clustermesh/mesh-files.js');
  const { projectRoot } = await import('../../src/lab/daemons.js');
  const mesh = readMeshConfig(cluster);
  if (!mesh) throw new Error(`${cluster} has no mesh config`);
  const child = spawn(
    'nsenter',
    [
      `--net=/run/netns/${netns}`,
      process.execPath,
      '--import',
      'tsx',
      join(projectRoot(), 'bench/mesh/hop-watch.ts'),
      '--lab',
      cluster,
      '--endpoint',
      mesh.localEndpoint,
      '--cert',
      cert,
      '--prefix',
      key,
      '--ip',
      ip,
    ],
    { cwd: projectRoot(), env: process.env, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const seen: { t: number; has: boolean }[] = [];
  let buf = '';
  const ready = new Promise<void>((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`hop watch of ${cluster} exited (${code})`)));
    child.stdout.on('data', (d) => {
      buf += String(d);
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = JSON.parse(buf.slice(0, nl)) as { ready?: boolean; t: number; has: boolean };
        buf = buf.slice(nl + 1);
        if (line.ready) resolve();
        else seen.push({ t: line.t, has: line.has });
      }
    });
  });
  await ready;
  return { seen, stop: () => void child.kill('SIGTERM') };
}

/** The pid of the agent of `cluster`/`node` started under TENDRIL_HOME=home. Throws when none. */
function findAgentPid(home: string, cluster: string, node: string): number {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (!argv.some((a) => a.endsWith('src/agent/main.ts'))) continue;
      // the agent's argv since the install wing: --config-dir <clusters/<cluster>/...> --node-name <node>
      const i = argv.indexOf('--node-name');
      const c = argv.indexOf('--config-dir');
      if (argv[i + 1] !== node || !argv[c + 1]?.includes(`/clusters/${cluster}/`)) continue;
      const env = readFileSync(`/proc/${d}/environ`, 'utf8').split('\0');
      if (
        !env.includes(`TENDRIL_HOME=${home}`) &&
        !env.includes(`TENDRIL_LAB_PREFIX=${process.env.TENDRIL_LAB_PREFIX}`)
      )
        continue;
      return Number(d);
    } catch {
      // gone
    }
  }
  throw new Error(`no agent process of ${cluster}/${node} under TENDRIL_HOME=${home}`);
}

/**
 * The lab part of `npm run bench -- policy` (root only): two meshed lab
 * clusters (test/e2e/lab-fixture.ts's createMeshedPair), in cluster1 a client
 * pod (busybox, wrk run in it pinned to CPU 0) and an HAProxy server pod
 * answering 200 (its processes pinned to CPU 1), both on cluster1's worker.
 *
 *   policy_vs_nopolicy_rps / _cps  rounds; each round measures the pair with an
 *       L3/L4 allow policy on both pods (client egress to the server on TCP 8080,
 *       server ingress from the client on TCP 8080) and without any policy
 *       selecting them, in ABBA order (the order flips every round); wrk
 *       keep-alive (rps) and `Connection: close` (cps). Ratio = median of the
 *       per-round ratios (policy / no policy). Between states the bench waits
 *       until the server's BPF map holds (or no longer holds) the policy's entry.
 *   policy_apply_to_enforced_p99_ms  create a CNP allowing a new port on the
 *       server -> that port's entry in the server's pinned BPF policy map
 *       (polled every 2 ms); N samples, p99 (= max for N < 100).
 *   remote_pod_to_allowed_p99_ms  a CNP in cluster1 allows app=remote with any
 *       cluster; each sample creates a pod in cluster2 with app=remote and a
 *       label of its own (so a new identity); from the moment the pod is seen
 *       Running (polled every 20 ms) to its identity's allow entry in the
 *       server's map in cluster1 (clamped at 0 when the entry came first).
 */
import { openPinnedMap } from '../../src/datapath/bpf/map.js';
import { policyKey, policyValue, policyPinDir } from '../../src/datapath/linux/policy/maps.js';
import { join } from 'node:path';
import { existsSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import {
  createMeshedPair,
  inPod,
  podRunning,
  sleep,
  type LabPod,
  type UniqueLab,
} from '../../test/e2e/lab-fixture.js';
import { backendHaproxyCfg, clientPod, haproxyPod, pinCgroup, wrk } from '../lib/pod.js';
import { abbaRounds, finite, ratioFigure, type Throughput } from '../lib/abba.js';
import { median, percentile, type Figure } from '../lib/report.js';

const CLIENT_CPU = '0';
const SERVER_CPU = '1';
const PORT = 8080;

/** Options of the lab part. */
export interface PolicyDatapathOptions {
  rounds: number;
  seconds: number;
  samples: number;
  log: (s: string) => void;
}

/** Runs the lab part in LAB (already made current by useUniqueLab); returns its figures. */
export async function policyDatapathFigures(
  lab: UniqueLab,
  o: PolicyDatapathOptions,
): Promise<Figure[]> {
  const { KubeClient } = await import('../../src/k8s/client.js');
  const { apiServerURL } = await import('../../src/lab/state.js');
  const { podCgroup, nodeBpffsDir } = await import('../../src/lab/layout.js');
  const { AgentClient } = await import('../../src/agent/api/client.js');
  const { agentSocketPath } = await import('../../src/install/lab-daemon-config.js');
  type KubeObject = import('../../src/k8s/objects.js').KubeObject;

  o.log('creating two meshed lab clusters ...');
  const { c1, c2 } = await createMeshedPair();
  const k1 = new KubeClient({ server: apiServerURL(c1) });
  const k2 = new KubeClient({ server: apiServerURL(c2) });
  try {
    const w1 = c1.nodes.find((n) => !n.name.endsWith('control-plane'))!;
    const w2 = c2.nodes.find((n) => !n.name.endsWith('control-plane'))!;
    const cfg = join(lab.home, 'backend.cfg');
    writeFileSync(cfg, backendHaproxyCfg([PORT]));
    await k1.create(haproxyPod('bench-server', w1.name, cfg));
    await k1.create(clientPod(w1.name));
    const server = await podRunning(k1, 'bench-server');
    const client = await podRunning(k1, 'bench-client');
    const sip = server.status.podIP as string;
    const pod: LabPod = { cluster: c1.name, node: w1.name, uid: client.metadata.uid! };
    const url = `http://${sip}:${PORT}/`;
    for (let i = 0; ; i++) {
      try {
        inPod(pod, ['curl', '-s', '-m', '2', url], 5000);
        break;
      } catch (err) {
        if (i > 60) throw new Error(`server does not answer: ${(err as Error).message}`);
        await sleep(500);
      }
    }
    pinCgroup(podCgroup(c1.name, w1.name, server.metadata.uid!), SERVER_CPU);

    // the server's endpoint and its pinned policy map
    const agent = new AgentClient(agentSocketPath(c1.name, w1.name), { timeoutMs: 3000 });
    const ep = (await agent.endpoints()).find((e) => e.podName === 'bench-server');
    if (!ep) throw new Error('no endpoint for bench-server');
    const mapPath = join(policyPinDir(nodeBpffsDir(c1.name, w1.name)), `ep_${ep.id}`);
    const deadline = Date.now() + 60_000;
    while (!existsSync(mapPath)) {
      if (Date.now() > deadline) throw new Error(`no policy map ${mapPath}`);
      await sleep(200);
    }
    const map = openPinnedMap(mapPath, { key: policyKey, value: policyValue });
    /** Ingress entries of the server's map as `identity/port`. */
    const ingress = (): Set<string> => {
      const s = new Set<string>();
      for (const [k] of map.entries()) if (k.dir === 0) s.add(`${k.identity}/${k.dport}`);
      return s;
    };
    const hasPort = (port: number) => [...ingress()].some((e) => e.endsWith(`/${port}`));
    const waitFor = async (what: string, f: () => boolean, ms = 30_000) => {
      const end = Date.now() + ms;
      while (!f()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await sleep(2);
      }
    };

    const cnp = (name: string, spec: Record<string, unknown>): KubeObject => ({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name, namespace: 'default' },
      spec,
    });
    const l34 = [
      cnp('server-from-client', {
        endpointSelector: { matchLabels: { app: 'bench-server' } },
        ingress: [
          {
            fromEndpoints: [{ matchLabels: { app: 'bench-client' } }],
            toPorts: [{ ports: [{ port: String(PORT), protocol: 'TCP' }] }],
          },
        ],
      }),
      cnp('client-to-server', {
        endpointSelector: { matchLabels: { app: 'bench-client' } },
        egress: [
          {
            toEndpoints: [{ matchLabels: { app: 'bench-server' } }],
            toPorts: [{ ports: [{ port: String(PORT), protocol: 'TCP' }] }],
          },
        ],
      }),
    ];
    const setPolicy = async (on: boolean) => {
      for (const p of l34)
        if (on) await k1.create(p);
        else await k1.delete(p.apiVersion, p.kind, p.metadata.name!, { namespace: 'default' });
      await waitFor(on ? 'the L3/L4 policy in the map' : 'the policy gone', () =>
        on ? hasPort(PORT) : !hasPort(PORT),
      );
      await sleep(300); // the client's side too
    };
    const run = (close: boolean) => wrk(pod, url, { seconds: o.seconds, close, cpu: CLIENT_CPU });

    // warm-up
    run(false);
    run(true);
    const loadStart = loadavg()[0]!;
    let on = false;
    // a: with the policy, b: without; every round starts and ends without (BAAB)
    const ab = await abbaRounds(
      o.rounds,
      () => ['b', 'a', 'a', 'b'],
      async (state) => {
        if ((state === 'a') !== on) {
          on = state === 'a';
          await setPolicy(on);
        }
        return { rps: run(false), cps: run(true) };
      },
      (r, p, n) =>
        o.log(
          `round ${r + 1}/${o.rounds}: rps ${n.rps.toFixed(0)} -> ${p.rps.toFixed(0)}, cps ${n.cps.toFixed(0)} -> ${p.cps.toFixed(0)}`,
        ),
    );
    if (on) await setPolicy(false);
    const loadEnd = loadavg()[0]!;
    const medianOf = (ts: Throughput[], k: keyof Throughput) => median(finite(ts.map((t) => t[k])));

    // apply -> enforced
    const apply: number[] = [];
    for (let i = 0; i < o.samples; i++) {
      const port = 9000 + i;
      const p = cnp(`apply-${i}`, {
        endpointSelector: { matchLabels: { app: 'bench-server' } },
        ingress: [
          {
            fromEntities: ['all'],
            toPorts: [{ ports: [{ port: String(port), protocol: 'TCP' }] }],
          },
        ],
      });
      const t0 = performance.now();
      await k1.create(p);
      await waitFor(`port ${port} in the map`, () => hasPort(port));
      apply.push(performance.now() - t0);
      await k1.delete(p.apiVersion, p.kind, p.metadata.name!, { namespace: 'default' });
      await waitFor(`port ${port} gone`, () => !hasPort(port));
    }

    // remote pod -> allowed
    await k1.create(
      cnp('from-remote', {
        endpointSelector: { matchLabels: { app: 'bench-server' } },
        ingress: [
          {
            fromEndpoints: [
              {
                matchLabels: { app: 'remote' },
                matchExpressions: [{ key: 'io.cilium.k8s.policy.cluster', operator: 'Exists' }],
              },
            ],
          },
        ],
      }),
    );
    await waitFor('the remote policy', () => ingress().size > 0);
    const remote: number[] = [];
    const created: number[] = [];
    let early = 0;
    for (let i = 0; i < o.samples; i++) {
      const before = new Set([...ingress()].map((e) => e.split('/')[0]));
      const name = `remote-${i}`;
      const tCreate = performance.now();
      await k2.create({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: 'default', labels: { app: 'remote', sample: String(i) } },
        spec: {
          nodeName: w2.name,
          containers: [{ name: 'sleep', image: 'busybox', command: ['sleep', '3600'] }],
        },
      });
      const isNew = () =>
        [...ingress()].some((e) => {
          const id = Number(e.split('/')[0]);
          return ((id >> 16) & 0xff) === 2 && !before.has(String(id));
        });
      let tAllowed: number | undefined;
      let tReady: number | undefined;
      const end = Date.now() + 120_000;
      while (tAllowed === undefined || tReady === undefined) {
        if (Date.now() > end) throw new Error(`remote pod ${name}: not allowed in time`);
        if (tAllowed === undefined && isNew()) tAllowed = performance.now();
        if (tReady === undefined) {
          const p = await k2.getOrUndefined('v1', 'Pod', name, { namespace: 'default' });
          if (p?.status?.phase === 'Running' && p.status.podIP) tReady = performance.now();
        }
        await sleep(20);
      }
      remote.push(Math.max(0, tAllowed - tReady));
      created.push(tAllowed - tCreate);
      if (tAllowed <= tReady) early++;
      await k2.delete('v1', 'Pod', name, { namespace: 'default' });
    }
    map.close();

    const load = `load average ${loadStart.toFixed(1)} -> ${loadEnd.toFixed(1)}`;
    return [
      ratioFigure('policy_vs_nopolicy_rps', ab.rpsRatio, `${load}; target >= 0.97`),
      ratioFigure('policy_vs_nopolicy_cps', ab.cpsRatio, 'target >= 0.95'),
      {
        name: 'policy_rps',
        value: medianOf(ab.a, 'rps'),
        unit: 'req/s',
        note: 'keep-alive, with policy',
      },
      {
        name: 'nopolicy_rps',
        value: medianOf(ab.b, 'rps'),
        unit: 'req/s',
        note: 'keep-alive, without',
      },
      {
        name: 'policy_cps',
        value: medianOf(ab.a, 'cps'),
        unit: 'conn/s',
        note: 'Connection: close, with policy',
      },
      {
        name: 'nopolicy_cps',
        value: medianOf(ab.b, 'cps'),
        unit: 'conn/s',
        note: 'Connection: close, without',
      },
      {
        name: 'policy_apply_to_enforced_p99_ms',
        value: percentile(apply, 99),
        unit: 'ms',
        note: `create -> entry in the node's BPF map, ${apply.length} samples, median ${median(apply).toFixed(0)}; target <= 100`,
      },
      {
        name: 'remote_pod_to_allowed_p99_ms',
        value: percentile(remote, 99),
        unit: 'ms',
        note: `cluster2 pod Running -> its identity allowed in cluster1's map, ${remote.length} samples, median ${median(remote).toFixed(0)}, ${early} allowed before seen Running; target <= 250`,
      },
      {
        name: 'remote_pod_create_to_allowed_p99_ms',
        value: percentile(created, 99),
        unit: 'ms',
        note: `cluster2 pod created -> allowed in cluster1's map, median ${median(created).toFixed(0)}`,
      },
    ];
  } finally {
    k1.close();
    k2.close();
  }
}

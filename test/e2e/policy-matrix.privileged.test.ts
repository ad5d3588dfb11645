/**
 * The network-policy reachability matrix, in the style of the Kubernetes
 * network-policy end-to-end tests: two meshed lab clusters (built once for the
 * whole file), pods x/a, x/b, y/a, z/a in each, every pair probed over TCP and
 * UDP (ports 80 and 81 where the case says so) and compared to the expected
 * matrix, which is printed as a table on mismatch. Each case applies its
 * policies, polls until the observed matrix equals the expected one (then
 * probes once more), deletes them and waits for the all-allowed baseline.
 *
 * Probes: each pod runs one long-lived prober (test/e2e/matrix-prober.mjs,
 * started inside the pod's netns and cgroup) that echoes on TCP and UDP 80/81
 * and probes a list of targets concurrently, so a whole matrix (8 x 7 pairs x
 * protocols) takes about one probe timeout.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import { privilegedTest } from '../helpers/privileged.js';
import {
  createMeshedPair,
  inPodCommand,
  podRunning,
  sleep,
  teardownLab,
  until,
  useUniqueLab,
} from './lab-fixture.js';
import { Prober } from './prober.js';

const lab = useUniqueLab('pmx');
const { KubeClient } = await import('../../src/k8s/client.js');
const { apiServerURL } = await import('../../src/lab/state.js');
const { daemonStatus } = await import('../../src/lab/daemons.js');
const { nodeBpffsDir } = await import('../../src/lab/layout.js');
const { readPinnedPolicy } = await import('../../src/datapath/linux/policy/policy-datapath.js');
const { AgentClient } = await import('../../src/agent/api/client.js');
const { agentSocketPath } = await import('../../src/install/lab-daemon-config.js');
type Kube = InstanceType<typeof KubeClient>;
type Obj = import('../../src/k8s/objects.js').KubeObject;

const PROBER = fileURLToPath(new URL('./matrix-prober.mjs', import.meta.url));
const CLUSTERS = ['cluster1', 'cluster2'] as const;
const NAMESPACES = ['x', 'y', 'z'] as const;
const PODS: readonly { ns: string; pod: string }[] = [
  { ns: 'x', pod: 'a' },
  { ns: 'x', pod: 'b' },
  { ns: 'y', pod: 'a' },
  { ns: 'z', pod: 'a' },
];
const PROBE_TIMEOUT_MS = 2000;

/** One pod of the matrix, with its prober. */
interface MatrixPod {
  /** `1/x/a` */
  id: string;
  cluster: 1 | 2;
  ns: string;
  pod: string;
  ip: string;
  /** Its node's name. */
  node: string;
  prober: Prober;
}

type Proto = 'tcp' | 'udp';
/** Expected outcome of a probe FROM -> TO on PORT/PROTO. */
type Expect = (from: MatrixPod, to: MatrixPod, proto: Proto, port: number) => boolean;

const kubes = new Map<1 | 2, Kube>();
const pods: MatrixPod[] = [];
const children: ChildProcess[] = [];

function podObject(ns: string, pod: string, nodeName: string): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: pod, namespace: ns, labels: { pod } },
    spec: {
      nodeName,
      containers: [
        {
          name: 'sleep',
          image: 'busybox',
          command: ['sleep', '36000'],
          ports: [
            { containerPort: 80, name: 'serve-80-tcp', protocol: 'TCP' },
            { containerPort: 80, name: 'serve-80-udp', protocol: 'UDP' },
            { containerPort: 81, name: 'serve-81-tcp', protocol: 'TCP' },
            { containerPort: 81, name: 'serve-81-udp', protocol: 'UDP' },
          ],
        },
      ],
    },
  };
}

before(
  async () => {
    if (process.getuid?.() !== 0) return;
    const pair = await createMeshedPair();
    const labClusters = { 1: pair.c1, 2: pair.c2 } as const;
    for (const c of [1, 2] as const) {
      const kube = new KubeClient({ server: apiServerURL(labClusters[c]) });
      kubes.set(c, kube);
      for (const ns of NAMESPACES)
        await kube.create({
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name: ns, labels: { ns } },
        });
      const worker = labClusters[c].nodes.find((n) => !n.name.endsWith('control-plane'))!;
      for (const p of PODS) await kube.create(podObject(p.ns, p.pod, worker.name));
    }
    for (const c of [1, 2] as const)
      for (const p of PODS) {
        const obj = await podRunning(kubes.get(c)!, p.pod, 120_000, p.ns);
        const [cmd, args] = inPodCommand(
          { cluster: CLUSTERS[c - 1]!, node: obj.spec.nodeName as string, uid: obj.metadata.uid! },
          [process.execPath, PROBER, '80', '81'],
        );
        const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
        children.push(child);
        const prober = new Prober(child, PROBE_TIMEOUT_MS);
        await prober.ready;
        pods.push({
          id: `${c}/${p.ns}/${p.pod}`,
          cluster: c,
          ns: p.ns,
          pod: p.pod,
          ip: obj.status.podIP as string,
          node: obj.spec.nodeName as string,
          prober,
        });
      }
  },
  { timeout: 600_000 },
);

after(
  async () => {
    for (const c of children) c.kill('SIGKILL');
    for (const k of kubes.values()) k.close();
    if (process.getuid?.() === 0) await teardownLab(lab);
  },
  { timeout: 300_000 },
);

/** Observed matrix: key `from->to proto/port` -> reached. Self pairs (through lo) are not probed. */
async function probeAll(ports: number[], protos: Proto[]): Promise<Map<string, boolean>> {
  const seen = new Map<string, boolean>();
  await Promise.all(
    pods.map(async (from) => {
      const targets: { ip: string; port: number; proto: Proto; key: string }[] = [];
      for (const to of pods)
        if (to !== from)
          for (const port of ports)
            for (const proto of protos)
              targets.push({ ip: to.ip, port, proto, key: cellKey(from, to, proto, port) });
      const r = await from.prober.call({ op: 'probe', targets });
      const results = r.results as boolean[];
      targets.forEach((t, i) => seen.set(t.key, results[i]!));
    }),
  );
  return seen;
}

const cellKey = (from: MatrixPod, to: MatrixPod, proto: Proto, port: number): string =>
  `${from.id}->${to.id} ${proto}/${port}`;

/**
 * The reachability table of one port/protocol, as the Kubernetes netpol e2e
 * prints it: rows are sources, columns destinations; `.` reached, `X` not,
 * a mismatch shows the observed value followed by `!` (expected the other).
 */
function table(
  seen: Map<string, boolean>,
  expect: Expect,
  proto: Proto,
  port: number,
): { text: string; wrong: number } {
  let wrong = 0;
  const w = 7;
  const lines = [`${proto}/${port}`.padEnd(w) + pods.map((p) => p.id.padEnd(w)).join('')];
  for (const from of pods) {
    let row = from.id.padEnd(w);
    for (const to of pods) {
      if (to === from) {
        row += '-'.padEnd(w);
        continue;
      }
      const got = seen.get(cellKey(from, to, proto, port));
      const want = expect(from, to, proto, port);
      const mark = got ? '.' : 'X';
      if (got !== want) wrong++;
      row += (got === want ? mark : `${mark}!`).padEnd(w);
    }
    lines.push(row);
  }
  return { text: lines.join('\n'), wrong };
}

/** Polls the matrix until it equals EXPECT (then probes once more); throws with the tables otherwise. */
async function expectMatrix(
  name: string,
  expect: Expect,
  opts: { ports?: number[]; protos?: Proto[]; timeoutMs?: number } = {},
): Promise<void> {
  const ports = opts.ports ?? [80];
  const protos = opts.protos ?? ['tcp', 'udp'];
  const deadline = Date.now() + (opts.timeoutMs ?? 45_000);
  let confirmed = 0;
  for (;;) {
    const seen = await probeAll(ports, protos);
    const tables = ports.flatMap((port) => protos.map((proto) => table(seen, expect, proto, port)));
    const wrong = tables.reduce((n, t) => n + t.wrong, 0);
    if (wrong === 0) {
      if (++confirmed === 2) return;
      continue;
    }
    confirmed = 0;
    if (Date.now() > deadline)
      assert.fail(
        `${name}: ${wrong} probe(s) differ from the expected reachability ` +
          `(. reached, X not, ! = differs from expected, rows = from, columns = to):\n` +
          tables.map((t) => t.text).join('\n\n'),
      );
    await sleep(500);
  }
}

const all: Expect = () => true;

/** Creates the objects in cluster C. */
async function applyIn(c: 1 | 2, objs: Obj[]): Promise<void> {
  for (const o of objs) await kubes.get(c)!.create(o);
}
/** Deletes the objects from cluster C. */
async function deleteIn(c: 1 | 2, objs: Obj[]): Promise<void> {
  for (const o of objs)
    await kubes
      .get(c)!
      .delete(o.apiVersion, o.kind, o.metadata.name!, { namespace: o.metadata.namespace });
}

const cnp = (ns: string, name: string, spec: Record<string, unknown>): Obj => ({
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumNetworkPolicy',
  metadata: { name, namespace: ns },
  spec,
});
const ccnp = (name: string, spec: Record<string, unknown>): Obj => ({
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumClusterwideNetworkPolicy',
  metadata: { name },
  spec,
});
const netpol = (ns: string, name: string, spec: Record<string, unknown>): Obj => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name, namespace: ns },
  spec,
});

const is = (p: MatrixPod, id: string): boolean => p.id === id;
const inNs = (p: MatrixPod, c: number, ns: string): boolean => p.cluster === c && p.ns === ns;
const NS = 'k8s:io.kubernetes.pod.namespace';
const CLUSTER = 'io.cilium.k8s.policy.cluster';
const EXISTS = [{ key: CLUSTER, operator: 'Exists' }];

interface Case {
  name: string;
  /** Policies per cluster. */
  c1?: Obj[];
  c2?: Obj[];
  expect: Expect;
  ports?: number[];
}

/** The 1/x/a ingress from only what ALLOW says (every other pair open). */
const ingressTo =
  (target: string, allow: (from: MatrixPod, proto: Proto, port: number) => boolean): Expect =>
  (from, to, proto, port) =>
    to.id !== target || allow(from, proto, port);
/** 1/x/a egress to only what ALLOW says. */
const egressFrom =
  (source: string, allow: (to: MatrixPod, proto: Proto, port: number) => boolean): Expect =>
  (from, to, proto, port) =>
    from.id !== source || allow(to, proto, port);

const SEL_A = { matchLabels: { pod: 'a' } };
const CASES: Case[] = [
  {
    name: 'NetworkPolicy default deny ingress in namespace x',
    c1: [netpol('x', 'deny-in', { podSelector: {}, policyTypes: ['Ingress'] })],
    expect: (_f, to) => !inNs(to, 1, 'x'),
  },
  {
    name: 'NetworkPolicy default deny egress in namespace x',
    c1: [netpol('x', 'deny-out', { podSelector: {}, policyTypes: ['Egress'] })],
    expect: (from) => !inNs(from, 1, 'x'),
  },
  {
    name: 'CNP allow by pod labels (local cluster, same namespace)',
    c1: [
      cnp('x', 'a-from-b', {
        endpointSelector: SEL_A,
        ingress: [{ fromEndpoints: [{ matchLabels: { pod: 'b' } }] }],
      }),
    ],
    expect: ingressTo('1/x/a', (f) => is(f, '1/x/b')),
  },
  {
    name: 'CNP allow by namespace (io.kubernetes.pod.namespace)',
    c1: [
      cnp('x', 'a-from-y', {
        endpointSelector: SEL_A,
        ingress: [{ fromEndpoints: [{ matchLabels: { [NS]: 'y' } }] }],
      }),
    ],
    expect: ingressTo('1/x/a', (f) => is(f, '1/y/a')),
  },
  {
    name: 'CNP allow by cluster label (cluster2 pods of namespace x only)',
    c1: [
      cnp('x', 'a-from-c2', {
        endpointSelector: SEL_A,
        ingress: [{ fromEndpoints: [{ matchLabels: { [CLUSTER]: 'cluster2' } }] }],
      }),
    ],
    expect: ingressTo('1/x/a', (f) => inNs(f, 2, 'x')),
  },
  {
    name: 'local-only default: an empty selector matches the local cluster only',
    c1: [cnp('x', 'a-from-x', { endpointSelector: SEL_A, ingress: [{ fromEndpoints: [{}] }] })],
    expect: ingressTo('1/x/a', (f) => inNs(f, 1, 'x')),
  },
  {
    name: 'Exists on the cluster label matches every cluster',
    c1: [
      cnp('x', 'a-from-any-x', {
        endpointSelector: SEL_A,
        ingress: [{ fromEndpoints: [{ matchExpressions: EXISTS }] }],
      }),
    ],
    expect: ingressTo('1/x/a', (f) => f.ns === 'x'),
  },
  {
    name: 'Exists across clusters and namespaces (egress of 1/x/a to z of both clusters)',
    c1: [
      cnp('x', 'a-to-z', {
        endpointSelector: SEL_A,
        egress: [{ toEndpoints: [{ matchLabels: { [NS]: 'z' }, matchExpressions: EXISTS }] }],
      }),
    ],
    expect: egressFrom('1/x/a', (t) => t.ns === 'z'),
  },
  {
    name: 'deny beats allow (ingressDeny from namespace y over an allow from all)',
    c1: [
      cnp('x', 'all-but-y', {
        endpointSelector: SEL_A,
        ingress: [{ fromEntities: ['all'] }],
        ingressDeny: [{ fromEndpoints: [{ matchLabels: { [NS]: 'y' } }] }],
      }),
    ],
    expect: ingressTo('1/x/a', (f) => !is(f, '1/y/a')),
  },
  {
    name: 'egressDeny beats an egress allow to all',
    c1: [
      cnp('x', 'out-but-b', {
        endpointSelector: SEL_A,
        egress: [{ toEntities: ['all'] }],
        egressDeny: [{ toEndpoints: [{ matchLabels: { pod: 'b' } }] }],
      }),
    ],
    expect: egressFrom('1/x/a', (t) => !is(t, '1/x/b')),
  },
  {
    name: 'ports: TCP 80 only',
    c1: [
      cnp('x', 'tcp80', {
        endpointSelector: SEL_A,
        ingress: [
          { fromEntities: ['all'], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] },
        ],
      }),
    ],
    ports: [80, 81],
    expect: ingressTo('1/x/a', (_f, proto, port) => proto === 'tcp' && port === 80),
  },
  {
    name: 'ports: endPort range 81-90 UDP',
    c1: [
      cnp('x', 'udp81-90', {
        endpointSelector: SEL_A,
        ingress: [
          {
            fromEntities: ['all'],
            toPorts: [{ ports: [{ port: '81', endPort: 90, protocol: 'UDP' }] }],
          },
        ],
      }),
    ],
    ports: [80, 81],
    expect: ingressTo('1/x/a', (_f, proto, port) => proto === 'udp' && port === 81),
  },
  {
    name: 'ports: protocol ANY on 81',
    c1: [
      cnp('x', 'any81', {
        endpointSelector: SEL_A,
        ingress: [
          { fromEntities: ['all'], toPorts: [{ ports: [{ port: '81', protocol: 'ANY' }] }] },
        ],
      }),
    ],
    ports: [80, 81],
    expect: ingressTo('1/x/a', (_f, _proto, port) => port === 81),
  },
  {
    name: 'named port serve-81-tcp (ingress)',
    c1: [
      cnp('x', 'named', {
        endpointSelector: SEL_A,
        ingress: [{ fromEntities: ['all'], toPorts: [{ ports: [{ port: 'serve-81-tcp' }] }] }],
      }),
    ],
    ports: [80, 81],
    expect: ingressTo('1/x/a', (_f, proto, port) => proto === 'tcp' && port === 81),
  },
  {
    name: 'entity world: no pod (local or remote) is world',
    c1: [cnp('x', 'world', { endpointSelector: SEL_A, ingress: [{ fromEntities: ['world'] }] })],
    expect: ingressTo('1/x/a', () => false),
  },
  {
    name: 'entity cluster: the local cluster pods only',
    c1: [
      cnp('x', 'cluster', { endpointSelector: SEL_A, ingress: [{ fromEntities: ['cluster'] }] }),
    ],
    expect: ingressTo('1/x/a', (f) => f.cluster === 1),
  },
  {
    name: 'entity host: pods are not the host',
    c1: [cnp('x', 'host', { endpointSelector: SEL_A, ingress: [{ fromEntities: ['host'] }] })],
    expect: ingressTo('1/x/a', () => false),
  },
  {
    name: 'egress toEntities cluster: local pods only',
    c1: [
      cnp('x', 'out-cluster', { endpointSelector: SEL_A, egress: [{ toEntities: ['cluster'] }] }),
    ],
    expect: egressFrom('1/x/a', (t) => t.cluster === 1),
  },
  {
    name: 'CIDR with except: 1/x/a egress to 0.0.0.0/0 except nothing reaches no pod (pods are not CIDR peers)',
    c1: [
      cnp('x', 'cidr', {
        endpointSelector: SEL_A,
        egress: [{ toCIDRSet: [{ cidr: '0.0.0.0/0', except: ['10.0.0.0/8'] }] }],
      }),
    ],
    expect: egressFrom('1/x/a', () => false),
  },
  {
    name: 'NetworkPolicy podSelector + namespaceSelector (kubernetes.io/metadata.name)',
    c1: [
      netpol('x', 'np-from-y', {
        podSelector: SEL_A,
        ingress: [
          {
            from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'y' } } }],
          },
        ],
      }),
    ],
    expect: ingressTo('1/x/a', (f) => is(f, '1/y/a')),
  },
  {
    name: 'NetworkPolicy namespaceSelector on a namespace label (ns=y, local cluster)',
    c1: [
      netpol('x', 'np-ns-label', {
        podSelector: SEL_A,
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }],
      }),
    ],
    expect: ingressTo('1/x/a', (f) => is(f, '1/y/a')),
  },
  {
    name: 'CNP on a namespace label across clusters (io.cilium.k8s.namespace.labels.ns=z, any namespace, Exists on the cluster)',
    c1: [
      cnp('x', 'ns-label-z', {
        endpointSelector: SEL_A,
        ingress: [
          {
            fromEndpoints: [
              {
                matchLabels: { 'io.cilium.k8s.namespace.labels.ns': 'z' },
                matchExpressions: [{ key: NS, operator: 'Exists' }, ...EXISTS],
              },
            ],
          },
        ],
      }),
    ],
    // the remote pods' namespace labels come from cluster2's own namespaces (also ns=z)
    expect: ingressTo('1/x/a', (f) => f.ns === 'z'),
  },
  {
    name: 'NetworkPolicy ports with endPort (UDP 81-85 from namespace x pods)',
    c1: [
      netpol('x', 'np-ports', {
        podSelector: SEL_A,
        ingress: [
          { from: [{ podSelector: {} }], ports: [{ port: 81, endPort: 85, protocol: 'UDP' }] },
        ],
      }),
    ],
    ports: [80, 81],
    expect: ingressTo(
      '1/x/a',
      (f, proto, port) => is(f, '1/x/b') && proto === 'udp' && port === 81,
    ),
  },
  {
    name: 'NetworkPolicy egress to any namespace (local cluster only) and named port',
    c1: [
      netpol('x', 'np-egress', {
        podSelector: SEL_A,
        policyTypes: ['Egress'],
        egress: [{ to: [{ namespaceSelector: {} }], ports: [{ port: 80 }] }],
      }),
    ],
    ports: [80, 81],
    expect: egressFrom(
      '1/x/a',
      (t, proto, port) => t.cluster === 1 && proto === 'tcp' && port === 80,
    ),
  },
  {
    name: 'CiliumClusterwideNetworkPolicy: namespace z from pod=b of any namespace',
    c1: [
      ccnp('z-from-b', {
        endpointSelector: { matchLabels: { [NS]: 'z' } },
        ingress: [{ fromEndpoints: [{ matchLabels: { pod: 'b' } }] }],
      }),
    ],
    expect: (from, to) => !inNs(to, 1, 'z') || is(from, '1/x/b'),
  },
  {
    name: 'a policy in cluster2 governs cluster2 only',
    c2: [
      cnp('x', 'deny-a', {
        endpointSelector: SEL_A,
        ingress: [{ fromEndpoints: [{ matchLabels: { pod: 'none' } }] }],
      }),
    ],
    expect: (_f, to) => to.id !== '2/x/a',
  },
  {
    name: 'cluster2 allows cluster1 by cluster label, egress from cluster1 pods',
    c2: [
      cnp('y', 'from-c1', {
        endpointSelector: {},
        ingress: [{ fromEndpoints: [{ matchLabels: { [CLUSTER]: 'cluster1', [NS]: 'x' } }] }],
      }),
    ],
    expect: (from, to) => !inNs(to, 2, 'y') || inNs(from, 1, 'x'),
  },
];

privilegedTest(
  'privileged: policy reachability matrix across two meshed clusters',
  async (t) => {
    await expectMatrix('baseline without policy', all);
    for (const c of CASES) {
      await t.test(c.name, async () => {
        await applyIn(1, c.c1 ?? []);
        await applyIn(2, c.c2 ?? []);
        try {
          await expectMatrix(c.name, c.expect, { ports: c.ports });
        } finally {
          await deleteIn(1, c.c1 ?? []);
          await deleteIn(2, c.c2 ?? []);
        }
        await expectMatrix(`${c.name}: after delete`, all, { ports: c.ports });
      });
    }
  },
  { timeout: 1_800_000 },
);

privilegedTest(
  'privileged: a policy deleted and re-applied is enforced again',
  async () => {
    const pol = [
      cnp('x', 'again', {
        endpointSelector: SEL_A,
        ingress: [{ fromEndpoints: [{ matchLabels: { pod: 'b' } }] }],
      }),
    ];
    const expect = ingressTo('1/x/a', (f) => is(f, '1/x/b'));
    await applyIn(1, pol);
    await expectMatrix('applied', expect);
    await deleteIn(1, pol);
    await expectMatrix('deleted', all);
    await applyIn(1, pol);
    await expectMatrix('re-applied', expect);
    await deleteIn(1, pol);
    await expectMatrix('deleted again', all);
  },
  { timeout: 600_000 },
);

privilegedTest(
  'privileged: revoking an allow cuts an open connection (local and remote client)',
  async () => {
    const server = pods.find((p) => p.id === '1/x/a')!;
    const clients = [pods.find((p) => p.id === '1/x/b')!, pods.find((p) => p.id === '2/x/b')!];
    const allowB = cnp('x', 'revoke', {
      endpointSelector: SEL_A,
      ingress: [{ fromEndpoints: [{ matchLabels: { pod: 'b' }, matchExpressions: EXISTS }] }],
    });
    await applyIn(1, [allowB]);
    await expectMatrix(
      'allow pod=b of both clusters',
      ingressTo('1/x/a', (f) => f.pod === 'b'),
    );
    const conns: number[] = [];
    for (const c of clients) {
      const r = await c.prober.call({ op: 'open', ip: server.ip, port: 80 });
      assert.equal(r.ok, true, `${c.id} opens a connection to ${server.id}`);
      conns.push(r.conn as number);
    }
    for (const [i, c] of clients.entries())
      assert.equal((await c.prober.call({ op: 'ping', conn: conns[i] })).ok, true);
    // the same policy now allows pod=c only: the established connections must stop
    await kubes.get(1)!.update({
      ...(await kubes
        .get(1)!
        .get('cilium.io/v2', 'CiliumNetworkPolicy', 'revoke', { namespace: 'x' })),
      spec: {
        endpointSelector: SEL_A,
        ingress: [{ fromEndpoints: [{ matchLabels: { pod: 'c' }, matchExpressions: EXISTS }] }],
      },
    });
    for (const [i, c] of clients.entries())
      await until(
        `${c.id}'s open connection is cut`,
        async () => !(await c.prober.call({ op: 'ping', conn: conns[i] })).ok,
        30_000,
        200,
      );
    await expectMatrix(
      'revoked',
      ingressTo('1/x/a', () => false),
    );
    await deleteIn(1, [allowB]);
    for (const [i, c] of clients.entries()) await c.prober.call({ op: 'close', conn: conns[i] });
    await expectMatrix('deleted', all);
  },
  { timeout: 600_000 },
);

privilegedTest(
  "privileged: an agent restart under a policy admitting cluster2's pods keeps admitting them (policy waits for the mesh's identities)",
  async () => {
    const server = pods.find((p) => p.id === '1/x/a')!;
    const remote = pods.find((p) => p.id === '2/x/b')!;
    const deniedFrom = [pods.find((p) => p.id === '2/y/a')!, pods.find((p) => p.id === '1/y/a')!];
    const pol = cnp('x', 'restart', {
      endpointSelector: SEL_A,
      ingress: [{ fromEndpoints: [{ matchLabels: { pod: 'b' }, matchExpressions: EXISTS }] }],
    });
    await applyIn(1, [pol]);
    await expectMatrix(
      'allow pod=b of both clusters',
      ingressTo('1/x/a', (f) => f.pod === 'b'),
    );
    // cluster2's allowed identities in the server node's pinned policy maps
    const bpffs = nodeBpffsDir('cluster1', server.node);
    const remoteAllows = (): Set<string> => {
      const out = new Set<string>();
      for (const ep of readPinnedPolicy(bpffs)?.endpoints ?? [])
        for (const e of ep.entries)
          if (e.direction === 'ingress' && !e.deny && ((e.identity >>> 16) & 0xff) === 2)
            out.add(`endpoint ${ep.id} identity ${e.identity}`);
      return out;
    };
    const before = remoteAllows();
    assert.ok(before.size >= 1, "cluster2's pod=b allowed in the map before the restart");

    let on = true;
    const gone = new Set<string>();
    let polls = 0;
    const watch = (async () => {
      while (on) {
        try {
          const now = remoteAllows();
          polls++;
          for (const k of before) if (!now.has(k)) gone.add(k);
        } catch {
          // a map read racing a write: the next poll
        }
        await sleep(20);
      }
    })();
    const allowed = { ok: 0, failed: 0 };
    const denied = { ok: 0, failed: 0 };
    const loop = async (from: MatrixPod, timeoutMs: number, tally: typeof allowed) => {
      while (on) {
        const r = await from.prober.call({
          op: 'probe',
          timeoutMs,
          targets: [{ ip: server.ip, port: 80, proto: 'tcp' }],
        });
        if ((r.results as boolean[])[0]) tally.ok++;
        else tally.failed++;
      }
    };
    const loops = [
      loop(remote, 10_000, allowed),
      ...deniedFrom.flatMap((p) => [loop(p, 800, denied), loop(p, 800, denied)]),
    ];
    const agentName = `tendril-agent-${server.node}`;
    const agent = () => daemonStatus('cluster1').find((d) => d.name === agentName);
    const was = agent();
    assert.ok(was?.running && was.pid, `${agentName} is running`);
    try {
      await sleep(2000);
      process.kill(was.pid, 'SIGKILL');
      await until(
        `${agentName} restarted by the supervisor`,
        () => {
          const d = agent();
          return d?.running && d.pid && d.pid !== was.pid ? d : undefined;
        },
        60_000,
        200,
      );
      // until its policy is written (no longer held for the sources or the mesh), then more load
      const api = new AgentClient(agentSocketPath('cluster1', server.node), { timeoutMs: 5000 });
      await until(
        'the restarted agent writes policy',
        async () => {
          const st = await api.status();
          return st.policy !== undefined && !st.policy.held?.length;
        },
        120_000,
        500,
      );
      await sleep(5000);
    } finally {
      on = false;
      await Promise.all([watch, ...loops]);
    }
    assert.ok(polls >= 20, `the map was watched: ${polls} polls`);
    assert.deepEqual([...gone], [], "cluster2's allows never left the map during the restart");
    assert.ok(allowed.ok >= 5, `cluster2's client made requests: ${JSON.stringify(allowed)}`);
    assert.equal(allowed.failed, 0, `no allowed request failed: ${JSON.stringify(allowed)}`);
    assert.ok(denied.failed >= 10, `the denied clients kept trying: ${JSON.stringify(denied)}`);
    assert.equal(denied.ok, 0, `no denied request got through: ${JSON.stringify(denied)}`);
    await expectMatrix(
      'after the restart',
      ingressTo('1/x/a', (f) => f.pod === 'b'),
    );
    await deleteIn(1, [pol]);
    await expectMatrix('deleted', all);
  },
  { timeout: 600_000 },
);

/**
 * Policy benchmark (control-plane part): 1,000 policies x 10,000 identities
 * (8,000 of them from 4 remote clusters) computed for 50 local endpoints, and,
 * as root, written to real per-endpoint BPF policy maps.
 *
 *   policy_compute_s       identities + policies into the engine, then every endpoint computed
 *   policy_write_s         the computed entries written to the endpoints' BPF maps (root only)
 *   policy_compute_total_s the two together (the issue's policy_compute_s target: <= 10 s)
 *   policy_recompute_ms    one new remote identity matching rules, then every endpoint recomputed
 *   policy_entries         map entries over all endpoints
 *   agent_rss_mib          this process's RSS after the run (the engine's share of an agent)
 *
 * As root (unless --no-lab), then the datapath figures in two meshed lab clusters
 * (bench/policy/datapath.ts): policy_vs_nopolicy_rps/cps, policy_apply_to_enforced_p99_ms,
 * remote_pod_to_allowed_p99_ms.
 *
 * Run: npm run bench -- policy [--rounds N (12)] [--seconds S (1)] [--samples N (20)] [--no-lab]
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { useUniqueLab } from '../../test/e2e/lab-fixture.js';
import { report, type Figure } from '../lib/report.js';
import { parseLabels } from '../../src/identity/labels.js';
import { PolicyEngine, endpointPolicySpec } from '../../src/policy/engine.js';
import type { KubeObject } from '../../src/k8s/objects.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '12' },
    seconds: { type: 'string', default: '1' },
    samples: { type: 'string', default: '20' },
    'no-lab': { type: 'boolean', default: false },
  },
});
/** The value of option NAME as a whole number >= 1, or exit naming the option. */
function intOption(name: 'rounds' | 'seconds' | 'samples'): number {
  const v = Number(values[name]);
  if (!Number.isInteger(v) || v < 1) {
    process.stderr.write(`--${name} ${values[name]}: expected a whole number >= 1\n`);
    process.exit(2);
  }
  return v;
}
const labOptions = {
  rounds: intOption('rounds'),
  seconds: intOption('seconds'),
  samples: intOption('samples'),
};
const withLab = process.getuid?.() === 0 && !values['no-lab'];
// before any lab module runs: the lab clusters of this run get a prefix and home of their own
const lab = withLab ? useUniqueLab('pol', 'bench') : undefined;

const IDENTITIES = 10_000;
const POLICIES = 1_000;
const ENDPOINTS = 50;
const APPS = 500;
const NAMESPACES = 20;

function identityId(i: number): number {
  // 2,000 local (cluster 1), 8,000 remote (clusters 2..5)
  const cluster = i < 2000 ? 1 : 2 + ((i - 2000) % 4);
  return (cluster << 16) | (256 + i);
}
function identityLabels(i: number) {
  const cluster = (identityId(i) >> 16) & 0xff;
  return parseLabels(
    `k8s:app=app-${i % APPS};k8s:io.kubernetes.pod.namespace=ns-${i % NAMESPACES};k8s:io.cilium.k8s.policy.cluster=cluster${cluster}`,
  );
}
function policy(j: number): KubeObject {
  const spec: Record<string, unknown> = {
    endpointSelector: { matchLabels: { app: `app-${j % APPS}` } },
    ingress: [
      {
        fromEndpoints: [
          {
            matchLabels: { app: `app-${(j * 7) % APPS}` },
            matchExpressions: [{ key: 'io.cilium.k8s.policy.cluster', operator: 'Exists' }],
          },
        ],
        toPorts: [{ ports: [{ port: String(80 + (j % 10)), protocol: 'TCP' }] }],
      },
    ],
  };
  if (j % 10 === 0)
    spec.ingressDeny = [{ fromEndpoints: [{ matchLabels: { app: `app-${(j * 13) % APPS}` } }] }];
  return {
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumNetworkPolicy',
    metadata: { name: `p${j}`, namespace: `ns-${j % NAMESPACES}` },
    spec,
  };
}

const figures: Figure[] = [];
const t0 = performance.now();
const engine = new PolicyEngine({ clusterName: 'cluster1' });
for (let i = 0; i < IDENTITIES; i++) engine.upsertIdentity(identityId(i), identityLabels(i));
for (let j = 0; j < POLICIES; j++) engine.upsertPolicy(policy(j));
// local endpoints: local identities whose app has policies
for (let e = 0; e < ENDPOINTS; e++) engine.upsertEndpoint({ id: e + 1, identity: identityId(e) });
const computed = engine.computeAll();
const specs = [...computed.values()].map(endpointPolicySpec);
const tCompute = (performance.now() - t0) / 1000;
const entries = specs.reduce((n, s) => n + s.ingress.entries.length + s.egress.entries.length, 0);
figures.push({
  name: 'policy_compute_s',
  value: tCompute,
  unit: 's',
  note: `${POLICIES} policies x ${IDENTITIES} identities, ${ENDPOINTS} endpoints`,
});
figures.push({
  name: 'policy_entries',
  value: entries,
  unit: 'entries',
  note: 'over all endpoints',
});

let tWrite = NaN;
if (process.getuid?.() === 0) {
  const { BpfPolicyDatapath } = await import('../../src/datapath/linux/policy/policy-datapath.js');
  const { ensureBpffs, removePinnedTree } = await import('../../src/datapath/bpf/bpffs.js');
  ensureBpffs();
  const dir = join('/sys/fs/bpf', `tendril-b${process.pid}policy`);
  mkdirSync(dir, { recursive: true });
  const dp = BpfPolicyDatapath.open({ bpffsDir: dir });
  try {
    const w0 = performance.now();
    for (const s of specs) dp.writePolicy(s);
    tWrite = (performance.now() - w0) / 1000;
  } finally {
    dp.destroy();
    removePinnedTree(dir);
  }
  figures.push({ name: 'policy_write_s', value: tWrite, unit: 's', note: 'BPF map updates' });
  figures.push({
    name: 'policy_compute_total_s',
    value: tCompute + tWrite,
    unit: 's',
    note: 'target <= 10',
  });
}

const r0 = performance.now();
engine.upsertIdentity((3 << 16) | 60000, identityLabels(7));
engine.computeAll();
figures.push({
  name: 'policy_recompute_ms',
  value: performance.now() - r0,
  unit: 'ms',
  note: 'one new remote identity',
});
figures.push({ name: 'agent_rss_mib', value: process.memoryUsage().rss / 2 ** 20, unit: 'MiB' });
if (lab) {
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const { policyDatapathFigures } = await import('./datapath.js');
  const { releaseLab } = await import('../lib/lab.js');
  try {
    figures.push(...(await policyDatapathFigures(lab, { ...labOptions, log })));
  } finally {
    if (await releaseLab(lab, log)) rmSync(lab.home, { recursive: true, force: true });
  }
}
report('policy', figures);

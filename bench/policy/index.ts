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
 * The datapath figures of issue 11 (policy_vs_nopolicy_rps/cps, apply-to-enforced and
 * remote-pod-to-allowed latencies) need lab clusters and are not measured here yet.
 *
 * Run: npm run bench -- policy
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { report, type Figure } from '../lib/report.js';
import { parseLabels } from '../../src/identity/labels.js';
import { PolicyEngine, endpointPolicySpec } from '../../src/policy/engine.js';
import type { KubeObject } from '../../src/k8s/objects.js';

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
report('policy', figures);

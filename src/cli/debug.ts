/**
 * `tendril debug services|ipcache|endpoints|identities [--node N]`: the
 * kernel's state in human terms, read from the pinned BPF maps of each node
 * (what `cilium-dbg bpf lb list`, `cilium-dbg bpf ipcache list` and
 * `cilium-dbg endpoint list` show), plus the identities in the API server.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TendrilError } from '../util/errors.js';
import { resolveInstallTarget } from '../install/lab-target.js';
import { nodeBpffsDir } from '../lab/layout.js';
import type { LabCluster } from '../lab/state.js';
import { labAdminClientOptions } from '../lab/client.js';
import {
  openPinnedEndpoints,
  openPinnedIPCache,
  keyToPrefix,
  PIN,
} from '../datapath/linux/maps.js';
import { AgentClient } from '../agent/api/client.js';
import { agentSocketPath } from '../install/lab-daemon-config.js';
import { describeIdentity } from '../identity/numeric.js';
import { KubeClient } from '../k8s/client.js';
import { identityObjectLabels } from '../identity/crd-backend.js';
import { readPinnedServices } from '../datapath/linux/lb/index.js';
import { readPinnedPolicy, ruleIdOf } from '../datapath/linux/policy/policy-datapath.js';
import { formatPortPrefix } from '../policy/ports.js';
import type { EndpointPolicyReport } from '../agent/policy.js';

const w = (s: string) => process.stdout.write(s);

function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return (
    rows
      .map((r) =>
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
          .join('   ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

function nodesOf(c: LabCluster, node?: string) {
  if (!node) return c.nodes;
  const n = c.nodes.filter((x) => x.name === node);
  if (n.length === 0) {
    throw new TendrilError('DEBUG_UNKNOWN_NODE', `lab cluster ${c.name} has no node "${node}"`, {
      hint: `its nodes: ${c.nodes.map((x) => x.name).join(', ')}`,
    });
  }
  return n;
}

function noMap(node: string, path: string): string {
  return `  (no pinned map at ${path}: the agent on ${node} has not created it; see \`tendril status\`)\n`;
}

async function ipcache(c: LabCluster, node?: string): Promise<void> {
  for (const n of nodesOf(c, node)) {
    const dir = nodeBpffsDir(c.name, n.name);
    w(`Node ${n.name} — ipcache (${join(dir, PIN.ipcache)}):\n`);
    if (!existsSync(join(dir, PIN.ipcache))) {
      w(noMap(n.name, join(dir, PIN.ipcache)));
      continue;
    }
    const m = openPinnedIPCache(dir);
    try {
      const rows = [...m.entries()]
        .map(([k, v]) => [
          keyToPrefix(k),
          describeIdentity(v.identity),
          v.hostIP === '0.0.0.0' ? '-' : v.hostIP,
        ])
        .sort((a, b) => a[0]!.localeCompare(b[0]!, undefined, { numeric: true }));
      w(table([['PREFIX', 'IDENTITY', 'TUNNEL ENDPOINT'], ...rows]));
    } finally {
      m.close();
    }
  }
}

async function endpoints(c: LabCluster, node?: string): Promise<void> {
  for (const n of nodesOf(c, node)) {
    const dir = nodeBpffsDir(c.name, n.name);
    w(`Node ${n.name} — endpoints (${join(dir, PIN.endpoints)}):\n`);
    if (!existsSync(join(dir, PIN.endpoints))) {
      w(noMap(n.name, join(dir, PIN.endpoints)));
      continue;
    }
    const info = await new AgentClient(agentSocketPath(c.name, n.name), { timeoutMs: 3000 })
      .endpoints()
      .catch(() => []);
    const m = openPinnedEndpoints(dir);
    try {
      const rows = [...m.entries()].map(([ip, v]) => {
        const ep = info.find((e) => e.ip === ip);
        return [
          String(v.id),
          ip,
          describeIdentity(v.identity),
          String(v.ifindex),
          ep ? `${ep.podNamespace}/${ep.podName}` : '?',
          ep?.hostIfName ?? '?',
          ep?.state ?? '(agent down)',
        ];
      });
      rows.sort((a, b) => Number(a[0]) - Number(b[0]));
      w(table([['ENDPOINT', 'IPV4', 'IDENTITY', 'IFINDEX', 'POD', 'HOST IF', 'STATE'], ...rows]));
    } finally {
      m.close();
    }
  }
}

async function identities(c: LabCluster): Promise<void> {
  const kube = new KubeClient(labAdminClientOptions(c, { timeoutMs: 10_000 }));
  try {
    const l = await kube.list('cilium.io/v2', 'CiliumIdentity');
    const rows = l.items
      .map((o) => [
        o.metadata.name ?? '',
        describeIdentity(Number(o.metadata.name)),
        identityObjectLabels(o) ?? '',
      ])
      .sort((a, b) => Number(a[0]) - Number(b[0]));
    w(table([['ID', 'IDENTITY', 'LABELS'], ...rows]));
  } finally {
    kube.close();
  }
}

async function services(c: LabCluster, node?: string): Promise<void> {
  for (const n of nodesOf(c, node)) {
    const dir = nodeBpffsDir(c.name, n.name);
    const pinned = readPinnedServices(dir);
    if (pinned) {
      w(`Node ${n.name} — service maps (${dir}):\n`);
      const rows: string[][] = [];
      for (const s of pinned) {
        const fe = `${s.frontend.ip}:${s.frontend.port}/${s.frontend.protocol}`;
        if (s.backends.length === 0) rows.push([fe, '(no backends: connections are refused)', '']);
        s.backends.forEach((b, i) =>
          rows.push([
            i === 0 ? fe : '',
            `${b.ip}:${b.port}`,
            `${b.ready ? 'active' : 'terminating'}${b.clusterId ? `, cluster ${b.clusterId}` : ''}`,
          ]),
        );
      }
      w(table([['FRONTEND', 'BACKEND', 'STATE'], ...rows]));
      continue;
    }
    w(`Node ${n.name} — no pinned service maps in ${dir}; the agent's desired services:\n`);
    const list = await new AgentClient(agentSocketPath(c.name, n.name), { timeoutMs: 3000 })
      .services()
      .catch(() => undefined);
    if (!list) {
      w('  (agent not answering)\n');
      continue;
    }
    const rows: string[][] = [];
    for (const s of list) {
      const fe = `${s.frontend.ip}:${s.frontend.port}/${s.frontend.protocol}`;
      if (s.backends.length === 0) rows.push([fe, '(no backends)']);
      s.backends.forEach((b, i) =>
        rows.push([i === 0 ? fe : '', `${b.ip}:${b.port} (cluster ${b.clusterId})`]),
      );
    }
    w(table([['FRONTEND', 'BACKEND'], ...rows]));
  }
}

async function policy(c: LabCluster, node?: string): Promise<void> {
  for (const n of nodesOf(c, node)) {
    const dir = nodeBpffsDir(c.name, n.name);
    const state = readPinnedPolicy(dir);
    w(`Node ${n.name} — policy maps (${join(dir, 'policy')}):\n`);
    if (!state) {
      w(noMap(n.name, join(dir, 'policy')));
      continue;
    }
    const client = new AgentClient(agentSocketPath(c.name, n.name), { timeoutMs: 3000 });
    const reports = await client
      .request<EndpointPolicyReport[]>('GET', '/v1/policy')
      .catch(() => [] as EndpointPolicyReport[]);
    const rules = new Map<number, string>();
    for (const r of reports)
      for (const e of [...r.ingress.entries, ...r.egress.entries])
        rules.set(ruleIdOf(e.rule), e.rule);
    for (const ep of state.endpoints) {
      const rep = reports.find((r) => r.endpointId === ep.id);
      w(
        `  endpoint ${ep.id}${rep ? ` (${rep.podNamespace}/${rep.podName}, identity ${rep.identity})` : ''}:\n`,
      );
      const rows = ep.entries
        .sort((a, b) => a.direction.localeCompare(b.direction) || a.identity - b.identity)
        .map((e) => [
          `    ${e.direction}`,
          e.identity === 0 ? 'any' : describeIdentity(e.identity),
          formatPortPrefix(e),
          e.deny ? 'DENY' : 'allow',
          rules.get(e.ruleId) ?? `rule ${e.ruleId.toString(16)}`,
        ]);
      w(table([['    DIRECTION', 'IDENTITY', 'PORT', 'VERDICT', 'RULE'], ...rows]));
    }
    w(
      `  drops: ${Object.entries(state.drops)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}\n`,
    );
  }
}

export function register(program: Command): void {
  const debug = program
    .command('debug')
    .description("print the datapath's kernel state in human terms (like cilium-dbg)");
  const ctx = (cmd: Command) => (cmd.optsWithGlobals() as { context?: string }).context;
  debug
    .command('services')
    .description('services and backends from the BPF service maps')
    .option('--node <node>', 'only this node')
    .action(async (o: { node?: string }, cmd: Command) =>
      services(resolveInstallTarget(ctx(cmd)).cluster, o.node),
    );
  debug
    .command('ipcache')
    .description('IP prefix -> identity from the BPF ipcache map')
    .option('--node <node>', 'only this node')
    .action(async (o: { node?: string }, cmd: Command) =>
      ipcache(resolveInstallTarget(ctx(cmd)).cluster, o.node),
    );
  debug
    .command('endpoints')
    .description("the node's endpoints from the BPF endpoints map, with their pods")
    .option('--node <node>', 'only this node')
    .action(async (o: { node?: string }, cmd: Command) =>
      endpoints(resolveInstallTarget(ctx(cmd)).cluster, o.node),
    );
  debug
    .command('policy')
    .description(
      "each endpoint's BPF policy map (identity, port, allow/deny, rule) and the drop counters",
    )
    .option('--node <node>', 'only this node')
    .action(async (o: { node?: string }, cmd: Command) =>
      policy(resolveInstallTarget(ctx(cmd)).cluster, o.node),
    );
  debug
    .command('identities')
    .description('security identities (CiliumIdentity objects)')
    .action(async (_o: unknown, cmd: Command) =>
      identities(resolveInstallTarget(ctx(cmd)).cluster),
    );
}

/**
 * `tendril status` data: per-node agent health (from each agent's status API
 * on its Unix socket, and the lab supervisor's view of the daemon), the
 * operator (its daemon and status file), the cluster DNS, and the install
 * record; rendered like `cilium status`, or as JSON.
 */
import type { LabCluster } from '../lab/state.js';
import type { AgentStatus, Problem } from '../agent/api/types.js';
import { DAEMON_DNS, DAEMON_OPERATOR, agentDaemonName } from './install.js';
import type { OperatorStatus } from '../operator/operator.js';
import { resolvedLabCluster, resolveCluster, type DaemonState } from './target.js';
import { collectClusterData, type ClusterStatusData, type ComponentName } from './collect.js';
import type { InstallState } from './install-state.js';
import { formatHubbleSummary, type HubbleSummary } from './hubble.js';

export type Health = 'OK' | 'Warning' | 'Error' | 'disabled';

export interface NodeStatus {
  node: string;
  health: Health;
  daemon?: { running: boolean; restarts: number; pid?: number };
  agent?: AgentStatus;
  error?: string;
}

export interface ClusterStatus {
  context: string;
  labCluster: string;
  installed: boolean;
  install?: InstallState;
  tendril: Health;
  operator: Health;
  dns: Health;
  hubble: Health;
  /** The relay's ServerStatus summary (when Hubble is enabled). */
  hubbleStatus?: HubbleSummary;
  clustermesh: Health;
  nodes: NodeStatus[];
  operatorStatus?: OperatorStatus;
  daemons: {
    agents: { desired: number; ready: number };
    operator: { desired: number; ready: number };
    dns: { desired: number; ready: number };
  };
  counts: { endpoints: number; services: number; identities: number; ipcacheEntries: number };
  problems: Problem[];
}

function daemonInfo(d: DaemonState) {
  return { running: d.running, restarts: d.restarts, ...(d.pid ? { pid: d.pid } : {}) };
}

/** The components `tendril status` reads (collect.ts). */
export const STATUS_COMPONENTS: readonly ComponentName[] = ['agents', 'operator', 'hubble'];

/** Collects the status of one lab cluster's Tendril install. */
export async function collectStatus(context?: string): Promise<ClusterStatus> {
  const r = resolveCluster(context);
  try {
    return clusterStatusFromData(await collectClusterData(r, STATUS_COMPONENTS), r.cluster.name);
  } finally {
    r.target.close();
  }
}

/** Collects the status of a lab cluster already known. */
export async function collectClusterStatus(context: string, c: LabCluster): Promise<ClusterStatus> {
  const r = resolvedLabCluster(context, c);
  try {
    return clusterStatusFromData(await collectClusterData(r, STATUS_COMPONENTS), c.name);
  } finally {
    r.target.close();
  }
}

const exitText = (d: DaemonState) =>
  d.lastExit
    ? ` (last exit code ${d.lastExit.code}, signal ${d.lastExit.signal}, ${d.restarts} restart(s))`
    : '';

/**
 * `tendril status`'s report from what the collector saw (pure).
 * `labCluster` names the lab cluster in hints (`tendril lab logs ...`).
 */
export function clusterStatusFromData(data: ClusterStatusData, labCluster: string): ClusterStatus {
  const { context, install, daemons } = data;
  const problems: Problem[] = [];
  const base: ClusterStatus = {
    context,
    labCluster,
    installed: !!install,
    ...(install ? { install: install as InstallState } : {}),
    tendril: 'Error',
    operator: 'Error',
    dns: 'Error',
    hubble: 'disabled',
    clustermesh: data.mesh ? 'OK' : 'disabled',
    nodes: [],
    daemons: {
      agents: { desired: data.nodes.length, ready: 0 },
      operator: { desired: 1, ready: 0 },
      dns: { desired: 1, ready: 0 },
    },
    counts: { endpoints: 0, services: 0, identities: 0, ipcacheEntries: 0 },
    problems,
  };
  if (!install) {
    problems.push({
      component: 'install',
      cause: `Tendril is not installed in lab cluster ${labCluster}`,
      hint: `run: tendril install --context ${context} --cluster-name ${labCluster}`,
    });
    return base;
  }
  const hs = data.components.hubble;
  if (hs) {
    base.hubbleStatus = hs;
    base.hubble = hs.health;
  }
  const readings = new Map((data.components.agents ?? []).map((a) => [a.node, a.status]));
  const nodes = data.nodes.map((node): NodeStatus => {
    const d = daemons.get(agentDaemonName(node));
    const ns: NodeStatus = { node, health: 'Error', ...(d ? { daemon: daemonInfo(d) } : {}) };
    if (!d) {
      ns.error = 'agent daemon is not configured';
      problems.push({
        component: `agent/${node}`,
        cause: ns.error,
        hint: `reinstall: tendril install --context ${context} --cluster-name ${install.clusterName}`,
      });
      return ns;
    }
    const st = readings.get(node) ?? new Error('not collected');
    if (st instanceof Error) {
      ns.error = d.running
        ? `agent not answering: ${st.message}`
        : `agent not running${exitText(d)}`;
      problems.push({
        component: `agent/${node}`,
        cause: ns.error,
        hint: `see its log: tendril lab logs ${labCluster} ${agentDaemonName(node)}`,
      });
    } else {
      ns.agent = st;
      ns.health = st.health;
      for (const p of st.problems)
        problems.push({ ...p, component: `agent/${node}: ${p.component}` });
    }
    return ns;
  });
  base.nodes = nodes;
  base.daemons.agents.ready = nodes.filter((n) => n.agent).length;
  const worst = (hs: Health[]): Health =>
    hs.includes('Error') ? 'Error' : hs.includes('Warning') ? 'Warning' : 'OK';
  base.tendril = worst(nodes.map((n) => n.health));

  const op = daemons.get(DAEMON_OPERATOR);
  const opRead = data.components.operator;
  const opSt: OperatorStatus | undefined = opRead instanceof Error ? undefined : opRead;
  if (opSt) base.operatorStatus = opSt;
  const fresh =
    opSt && op?.running && opSt.pid === op.pid && Date.now() - Date.parse(opSt.updatedAt) < 20_000;
  if (!op?.running) {
    problems.push({
      component: 'operator',
      cause: op ? `not running (${op.restarts} restart(s))` : 'not configured',
      hint: `see its log: tendril lab logs ${labCluster} ${DAEMON_OPERATOR}`,
    });
  } else if (!fresh || !opSt?.synced) {
    base.operator = 'Warning';
    base.daemons.operator.ready = 0;
    problems.push({
      component: 'operator',
      cause: 'running but not synced with the API server yet',
      hint: `wait, or see: tendril lab logs ${labCluster} ${DAEMON_OPERATOR}`,
    });
  } else {
    base.operator = opSt.lastError ? 'Warning' : 'OK';
    base.daemons.operator.ready = 1;
    if (opSt.lastError)
      problems.push({
        component: 'operator',
        cause: opSt.lastError,
        hint: 'the operator retries; see its log',
      });
  }
  const dns = daemons.get(DAEMON_DNS);
  if (
    dns?.running &&
    (dns.restarts === 0 || (dns.startedAt && Date.now() - Date.parse(dns.startedAt) > 5000))
  ) {
    base.dns = 'OK';
    base.daemons.dns.ready = 1;
  } else {
    problems.push({
      component: 'dns',
      cause: dns
        ? `cluster DNS not running${dns.lastExit ? ` (last exit code ${dns.lastExit.code}, ${dns.restarts} restart(s))` : ''}`
        : 'cluster DNS not configured',
      hint: `see its log: tendril lab logs ${labCluster} ${DAEMON_DNS}`,
    });
  }
  const agents = nodes.map((n) => n.agent).filter((a): a is AgentStatus => !!a);
  base.counts = {
    endpoints: agents.reduce((s, a) => s + a.counts.endpoints, 0),
    services: Math.max(0, ...agents.map((a) => a.counts.services)),
    identities: Math.max(opSt?.identities ?? 0, ...agents.map((a) => a.counts.identities)),
    ipcacheEntries: Math.max(0, ...agents.map((a) => a.counts.ipcache)),
  };
  return base;
}

/** True when everything is OK (what `--wait` waits for). */
export function statusReady(s: ClusterStatus): boolean {
  return s.installed && s.tendril === 'OK' && s.operator === 'OK' && s.dns === 'OK';
}

/** `enforcement default, 3/5 endpoints with policy enforced`, from the agents' status. */
function policyLine(s: ClusterStatus): string {
  const agents = s.nodes.flatMap((n) => (n.agent?.policy ? [n.agent.policy] : []));
  const mode = agents[0]?.enforcement ?? s.install?.settings['policy-enforcement'] ?? 'default';
  const sum = (k: 'endpoints' | 'enforced') => agents.reduce((n, p) => n + p[k], 0);
  const held = [...new Set(agents.flatMap((p) => p.held ?? []))];
  return (
    `enforcement ${mode}, ${sum('enforced')}/${sum('endpoints')} endpoints with policy enforced` +
    (held.length ? ` (writes held: waiting for ${held.join(', ')})` : '')
  );
}

/** Renders like `cilium status`. */
export function renderStatus(s: ClusterStatus): string {
  const pad = (x: string, n: number) => x.padEnd(n);
  const lines = [
    `    /¯¯\\`,
    ` /¯¯\\__/¯¯\\    Tendril:          ${s.installed ? s.tendril : 'not installed'}`,
    ` \\__/¯¯\\__/    Operator:         ${s.installed ? s.operator : '-'}`,
    ` /¯¯\\__/¯¯\\    Hubble:           ${formatHubbleSummary(s.hubbleStatus, s.hubble)}`,
    ` \\__/¯¯\\__/    Clustermesh:      ${s.clustermesh}`,
    `    \\__/        DNS:              ${s.installed ? s.dns : '-'}`,
    '',
  ];
  const d = s.daemons;
  const row = (kind: string, name: string, x: { desired: number; ready: number }) =>
    `${pad(kind, 18)}${pad(name, 19)}Desired: ${x.desired}, Ready: ${x.ready}/${x.desired}, Available: ${x.ready}/${x.desired}`;
  lines.push(
    row('DaemonSet', 'tendril-agent', d.agents),
    row('Deployment', 'tendril-operator', d.operator),
    row('Deployment', 'tendril-dns', d.dns),
  );
  if (s.install) {
    const attached = s.nodes.filter((n) => n.agent?.socketLB.attached).length;
    lines.push(
      `${pad('Cluster:', 18)}${s.install.clusterName} (ID ${s.install.clusterId}), lab cluster ${s.labCluster}`,
      `${pad('Routing:', 18)}${s.install.routingMode === 'tunnel' ? 'tunnel (VXLAN)' : 'native (kernel routes over the underlay)'}`,
      `${pad('Datapath:', 18)}eBPF socket load balancing attached on ${attached}/${s.nodes.length} nodes; identities: ${s.install.identityAllocationMode.toUpperCase()}`,
      `${pad('Endpoints:', 18)}${s.counts.endpoints}    Services: ${s.counts.services}    Identities: ${s.counts.identities}    IPCache: ${s.counts.ipcacheEntries}`,
      `${pad('Policy:', 18)}${policyLine(s)}`,
      'Nodes:',
    );
    for (const n of s.nodes) {
      const a = n.agent;
      lines.push(
        `  ${pad(n.node, 28)}${pad(n.health, 9)}` +
          (a
            ? `${pad(a.nodeIP, 14)}pods ${pad(a.podCIDR, 16)}endpoints ${pad(String(a.counts.endpoints), 4)}routes ${a.reconcilers.find((r) => r.name === 'routes')?.desired ?? 0}`
            : (n.error ?? '')),
      );
    }
  }
  if (s.problems.length > 0) {
    lines.push('Errors/Warnings:');
    for (const p of s.problems) {
      lines.push(`  ${p.component}: ${p.cause}`);
      if (p.hint) lines.push(`    hint: ${p.hint}`);
    }
  }
  return lines.join('\n') + '\n';
}

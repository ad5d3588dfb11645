/**
 * `tendril status` data: per-node agent health (from each agent's status API
 * on its Unix socket, and the lab supervisor's view of the daemon), the
 * operator (its daemon and status file), the cluster DNS, and the install
 * record; rendered like `cilium status`, or as JSON.
 */
import { readFileSync } from 'node:fs';
import { daemonStatus, type DaemonStatus } from '../lab/daemons.js';
import type { LabCluster } from '../lab/state.js';
import { meshEnabled } from '../clustermesh/mesh-files.js';
import { readInstallState, type InstallState } from './install-state.js';
import { agentSocketPath } from './lab-daemon-config.js';
import { AgentClient } from '../agent/api/client.js';
import type { AgentStatus, Problem } from '../agent/api/types.js';
import { DAEMON_DNS, DAEMON_OPERATOR, agentDaemonName } from './install.js';
import { resolveInstallTarget } from './lab-target.js';
import { operatorStatusPath } from './lab-daemon-config.js';
import type { OperatorStatus } from '../operator/operator.js';
import { collectHubbleSummary, formatHubbleSummary, type HubbleSummary } from './hubble.js';

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

function daemonInfo(d: DaemonStatus | undefined) {
  return d
    ? { running: d.running, restarts: d.restarts, ...(d.pid ? { pid: d.pid } : {}) }
    : undefined;
}

function readOperatorStatus(labCluster: string): OperatorStatus | undefined {
  try {
    return JSON.parse(readFileSync(operatorStatusPath(labCluster), 'utf8')) as OperatorStatus;
  } catch {
    return undefined;
  }
}

/** Collects the status of one lab cluster's Tendril install. */
export async function collectStatus(context?: string): Promise<ClusterStatus> {
  const t = resolveInstallTarget(context);
  return collectClusterStatus(t.context, t.cluster);
}

export async function collectClusterStatus(context: string, c: LabCluster): Promise<ClusterStatus> {
  const install = readInstallState(c.name);
  const daemons = new Map(daemonStatus(c.name).map((d) => [d.name, d]));
  const problems: Problem[] = [];
  const base: ClusterStatus = {
    context,
    labCluster: c.name,
    installed: !!install,
    ...(install ? { install } : {}),
    tendril: 'Error',
    operator: 'Error',
    dns: 'Error',
    hubble: 'disabled',
    clustermesh: meshEnabled(c.name) ? 'OK' : 'disabled',
    nodes: [],
    daemons: {
      agents: { desired: c.nodes.length, ready: 0 },
      operator: { desired: 1, ready: 0 },
      dns: { desired: 1, ready: 0 },
    },
    counts: { endpoints: 0, services: 0, identities: 0, ipcacheEntries: 0 },
    problems,
  };
  if (!install) {
    problems.push({
      component: 'install',
      cause: `Tendril is not installed in lab cluster ${c.name}`,
      hint: `run: tendril install --context ${context} --cluster-name ${c.name}`,
    });
    return base;
  }
  base.hubbleStatus = await collectHubbleSummary(c.name, install.settings);
  base.hubble = base.hubbleStatus.health;
  const nodes = await Promise.all(
    c.nodes.map(async (n): Promise<NodeStatus> => {
      const d = daemons.get(agentDaemonName(n.name));
      const ns: NodeStatus = {
        node: n.name,
        health: 'Error',
        ...(d ? { daemon: daemonInfo(d)! } : {}),
      };
      if (!d) {
        ns.error = 'agent daemon is not configured';
        problems.push({
          component: `agent/${n.name}`,
          cause: ns.error,
          hint: `reinstall: tendril install --context ${context} --cluster-name ${install.clusterName}`,
        });
        return ns;
      }
      try {
        ns.agent = await new AgentClient(agentSocketPath(c.name, n.name), {
          timeoutMs: 3000,
        }).status();
        ns.health = ns.agent.health;
        for (const p of ns.agent.problems)
          problems.push({ ...p, component: `agent/${n.name}: ${p.component}` });
      } catch (err) {
        ns.error = d.running
          ? `agent not answering: ${(err as Error).message}`
          : `agent not running${d.lastExit ? ` (last exit code ${d.lastExit.code}, signal ${d.lastExit.signal}, ${d.restarts} restart(s))` : ''}`;
        problems.push({
          component: `agent/${n.name}`,
          cause: ns.error,
          hint: `see its log: tendril lab logs ${c.name} ${agentDaemonName(n.name)}`,
        });
      }
      return ns;
    }),
  );
  base.nodes = nodes;
  base.daemons.agents.ready = nodes.filter((n) => n.agent).length;
  const worst = (hs: Health[]): Health =>
    hs.includes('Error') ? 'Error' : hs.includes('Warning') ? 'Warning' : 'OK';
  base.tendril = worst(nodes.map((n) => n.health));

  const op = daemons.get(DAEMON_OPERATOR);
  const opSt = readOperatorStatus(c.name);
  if (opSt) base.operatorStatus = opSt;
  const fresh =
    opSt && op?.running && opSt.pid === op.pid && Date.now() - Date.parse(opSt.updatedAt) < 20_000;
  if (!op?.running) {
    problems.push({
      component: 'operator',
      cause: op ? `not running (${op.restarts} restart(s))` : 'not configured',
      hint: `see its log: tendril lab logs ${c.name} ${DAEMON_OPERATOR}`,
    });
  } else if (!fresh || !opSt?.synced) {
    base.operator = 'Warning';
    base.daemons.operator.ready = 0;
    problems.push({
      component: 'operator',
      cause: 'running but not synced with the API server yet',
      hint: `wait, or see: tendril lab logs ${c.name} ${DAEMON_OPERATOR}`,
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
      hint: `see its log: tendril lab logs ${c.name} ${DAEMON_DNS}`,
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

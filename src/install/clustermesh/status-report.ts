/**
 * `clustermesh status`: gathers the state of a lab cluster's mesh (its
 * daemons, the clustermesh-apiserver's status endpoint, the agents') into a
 * report, decides what is wrong and what to run next, and renders it the way
 * cilium's CLI does.
 */
import { resolveInstallTarget } from '../lab-target.js';
import { readInstallState } from '../install-state.js';
import { agentDaemonName, DAEMON_OPERATOR } from '../install.js';
import { agentSocketPath } from '../lab-daemon-config.js';
import { AgentClient } from '../../agent/api/client.js';
import type { AgentStatus } from '../../agent/api/types.js';
import { daemonStatus } from '../../lab/daemons.js';
import type { LabCluster } from '../../lab/state.js';
import { listRemotes, readMeshConfig } from '../../clustermesh/mesh-files.js';
import { fetchStatus, type MeshDaemonStatus } from '../../clustermesh/status-api.js';
import { meshPaths } from '../../clustermesh/mesh-files.js';
import { DAEMON_MESH_APISERVER, DAEMON_MESH_ETCD } from './enable.js';
import { STATE_KINDS } from '../../clustermesh/keys.js';
import type { RemoteClusterStatus } from '../../clustermesh/kvstoremesh.js';

export type Health = 'OK' | 'Warning' | 'Error' | 'disabled';

/** Something wrong: which part, why, what to run next. */
export interface MeshProblem {
  component: string;
  cause: string;
  hint: string;
}

/** One cluster of the mesh as seen from the local one. */
export interface MeshClusterLine {
  name: string;
  local: boolean;
  clusterId: number | undefined;
  configured: boolean;
  connected: boolean;
  synced: boolean;
  stale: boolean;
  counts: Record<string, number> | undefined;
  lastHeartbeat: string | undefined;
  endpoints: string[];
  error: { reason: string; message: string; hint: string } | undefined;
  /** Records of this remote refused by kvstoremesh (never cached, never reach the kernel). */
  rejected?: { total: number; recent: Array<{ key: string; reason: string; at: string }> };
}

/** The whole report (`-o json` prints it). */
export interface MeshStatusReport {
  context: string;
  labCluster: string;
  clusterName: string | undefined;
  clusterId: number | undefined;
  components: { cilium: Health; operator: Health; hubble: Health; clustermesh: Health };
  enabled: boolean;
  serviceType: string | undefined;
  accessEndpoints: string[];
  kvstoremesh: boolean;
  apiserver: MeshDaemonStatus | undefined;
  nodes: { total: number; connected: number; notConnected: { node: string; why: string }[] };
  clusters: MeshClusterLine[];
  globalServices: { exported: number; remote: number };
  problems: MeshProblem[];
  /** Everything configured is connected and synced, every node too. */
  ready: boolean;
}

async function agentStatus(labCluster: string, node: string): Promise<AgentStatus | Error> {
  try {
    return await new AgentClient(agentSocketPath(labCluster, node), { timeoutMs: 3000 }).status();
  } catch (err) {
    return err as Error;
  }
}

/** Builds the report for a context. @throws TendrilError for an unknown context / not a lab cluster. */
export async function gatherMeshStatus(context?: string): Promise<MeshStatusReport> {
  const t = resolveInstallTarget(context);
  return gatherForCluster(t.context, t.cluster);
}

/** Builds the report for a lab cluster. */
export async function gatherForCluster(context: string, c: LabCluster): Promise<MeshStatusReport> {
  const problems: MeshProblem[] = [];
  const install = readInstallState(c.name);
  const cfg = readMeshConfig(c.name);
  const daemons = new Map(daemonStatus(c.name).map((d) => [d.name, d]));
  const report: MeshStatusReport = {
    context,
    labCluster: c.name,
    clusterName: install?.clusterName,
    clusterId: install?.clusterId,
    components: {
      cilium: 'Error',
      operator: 'Error',
      hubble: 'disabled',
      clustermesh: cfg ? 'Error' : 'disabled',
    },
    enabled: cfg !== undefined,
    serviceType: cfg?.serviceType,
    accessEndpoints: cfg?.accessEndpoints ?? [],
    kvstoremesh: cfg?.kvstoremesh ?? false,
    apiserver: undefined,
    nodes: { total: c.nodes.length, connected: 0, notConnected: [] },
    clusters: [],
    globalServices: { exported: 0, remote: 0 },
    problems,
    ready: false,
  };
  if (!install) {
    problems.push({
      component: 'Tendril',
      cause: `Tendril is not installed on ${context}`,
      hint: `run \`tendril install --context ${context} --cluster-name ${c.name} --cluster-id N\``,
    });
    return report;
  }
  // Agents and operator.
  const agents = await Promise.all(
    c.nodes.map(async (n) => [n.name, await agentStatus(c.name, n.name)] as const),
  );
  const badAgents = agents.filter(([, s]) => s instanceof Error || s.health === 'Error');
  report.components.cilium =
    badAgents.length === 0
      ? agents.some(([, s]) => !(s instanceof Error) && s.health === 'Warning')
        ? 'Warning'
        : 'OK'
      : 'Error';
  for (const [node, s] of badAgents) {
    const d = daemons.get(agentDaemonName(node));
    problems.push({
      component: `Cilium agent on ${node}`,
      cause:
        s instanceof Error
          ? `not answering (${d?.running ? 'running' : 'not running'}): ${s.message}`
          : `unhealthy: ${s.problems.map((p) => p.cause).join('; ')}`,
      hint: `\`tendril lab logs ${c.name} ${agentDaemonName(node)}\`; \`tendril status --context ${context}\``,
    });
  }
  const op = daemons.get(DAEMON_OPERATOR);
  report.components.operator = op?.running ? 'OK' : 'Error';
  if (!op?.running)
    problems.push({
      component: 'Operator',
      cause: 'the operator is not running',
      hint: `\`tendril lab logs ${c.name} ${DAEMON_OPERATOR}\`; re-run \`tendril install --context ${context}\``,
    });
  if (!cfg) {
    report.ready = false;
    return report;
  }

  // The clustermesh-apiserver.
  let api: MeshDaemonStatus | undefined;
  try {
    api = await fetchStatus(meshPaths(c.name).statusSocket, 4000);
    report.apiserver = api;
  } catch (err) {
    const etcdD = daemons.get(DAEMON_MESH_ETCD);
    const apiD = daemons.get(DAEMON_MESH_APISERVER);
    problems.push({
      component: 'clustermesh-apiserver',
      cause: `not answering (${apiD?.running ? 'process running' : 'process not running'}; etcd ${etcdD?.running ? 'running' : 'not running'}): ${(err as Error).message}`,
      hint: `\`tendril lab logs ${c.name} ${DAEMON_MESH_APISERVER}\` and \`tendril lab logs ${c.name} ${DAEMON_MESH_ETCD}\`; re-run \`tendril clustermesh enable --context ${context}\``,
    });
  }
  if (api && !api.etcd.ok) {
    problems.push({
      component: 'clustermesh-apiserver etcd',
      cause: `etcd is not healthy: ${api.etcd.error ?? 'unknown'}`,
      hint: `\`tendril lab logs ${c.name} ${DAEMON_MESH_ETCD}\``,
    });
  }
  if (api?.syncer) {
    const pending = STATE_KINDS.filter((k) => !api!.syncer!.synced[k]);
    if (pending.length > 0) {
      const src = Object.entries(api.syncer.sourceErrors)
        .map(([k, v]) => `${k}: ${v}`)
        .join('; ');
      problems.push({
        component: 'clustermesh-apiserver syncer',
        cause: `this cluster's ${pending.join(', ')} are not exported yet${src ? ` (${src})` : ''}${api.syncer.lastWriteError ? ` (etcd: ${api.syncer.lastWriteError})` : ''}`,
        hint: `wait with --wait; if it persists, \`tendril lab logs ${c.name} ${DAEMON_MESH_APISERVER}\``,
      });
    }
    report.globalServices.exported = api.syncer.counts.services;
  }
  for (const p of api?.problems ?? [])
    problems.push({
      component: 'clustermesh-apiserver',
      cause: p,
      hint: 're-run `tendril clustermesh connect` for that cluster',
    });

  // Clusters.
  report.clusters.push({
    name: install.clusterName,
    local: true,
    clusterId: install.clusterId,
    configured: true,
    connected: true,
    synced: api?.syncer ? STATE_KINDS.every((k) => api!.syncer!.synced[k]) : false,
    stale: false,
    counts: api?.syncer?.counts,
    lastHeartbeat: api?.syncer?.lastHeartbeat,
    endpoints: cfg.accessEndpoints,
    error: undefined,
  });
  const remotes: RemoteClusterStatus[] = api?.kvstoremesh.remotes ?? [];
  // Name the remote's context in hints (connect recorded its lab cluster).
  const recorded = (await listRemotes(c.name)).remotes;
  const labOf = new Map(recorded.map((x) => [x.name, x.labCluster]));
  const ctxHint = (name: string, hint: string) =>
    hint.replace(
      `<${name}'s context>`,
      labOf.get(name) ? `lab-${labOf.get(name)}` : `<${name}'s context>`,
    );
  // Remotes the apiserver still runs but connect's records no longer list: disconnect removed
  // them and the apiserver has not dropped them yet. Not part of the mesh; --wait waits for them to go.
  const removing = remotes.filter((r) => !recorded.some((x) => x.name === r.name));
  for (const r of removing) {
    problems.push({
      component: `remote cluster ${r.name}`,
      cause: 'disconnected, not yet dropped by the clustermesh-apiserver',
      hint: `wait with \`tendril clustermesh status --context ${context} --wait\``,
    });
  }
  for (const r of remotes) {
    if (removing.includes(r)) continue;
    report.clusters.push({
      name: r.name,
      local: false,
      clusterId: r.clusterId ?? r.expectedClusterId,
      configured: true,
      connected: r.connected,
      synced: r.synced,
      stale: r.stale,
      counts: r.counts,
      lastHeartbeat: r.lastHeartbeat,
      endpoints: r.endpoints,
      ...(r.rejected?.total ? { rejected: r.rejected } : {}),
      error:
        r.lastError && !(r.connected && r.synced)
          ? {
              reason: r.lastError.reason,
              message: r.lastError.message,
              hint: ctxHint(r.name, r.lastError.hint),
            }
          : undefined,
    });
    report.globalServices.remote += r.counts.services;
    if (!r.connected || !r.synced) {
      const why = r.lastError ? r.lastError.message : r.connected ? 'not synced yet' : 'connecting';
      problems.push({
        component: `remote cluster ${r.name}`,
        cause: `${r.connected ? 'connected but not synced' : 'not connected'}${r.stale ? ' (its last known state is kept, marked stale)' : ''}: ${why}`,
        hint: r.lastError
          ? ctxHint(r.name, r.lastError.hint)
          : `wait with \`tendril clustermesh status --context ${context} --wait\``,
      });
    }
  }

  // Remotes that connect recorded but the clustermesh-apiserver has not taken up yet (it reloads
  // its remotes shortly after connect): configured, not connected, so --wait keeps waiting.
  const pending = recorded.filter((x) => !remotes.some((r) => r.name === x.name));
  for (const x of pending) {
    report.clusters.push({
      name: x.name,
      local: false,
      clusterId: x.clusterId,
      configured: true,
      connected: false,
      synced: false,
      stale: false,
      counts: undefined,
      lastHeartbeat: undefined,
      endpoints: x.endpoints,
      error: undefined,
    });
    problems.push({
      component: `remote cluster ${x.name}`,
      cause: 'configured by connect, not yet taken up by the clustermesh-apiserver',
      hint: `wait with \`tendril clustermesh status --context ${context} --wait\`; if it stays so, see \`tendril lab logs ${c.name}\``,
    });
  }

  // Nodes: an agent reads the local etcd, where kvstoremesh keeps every remote; it is connected to all
  // clusters when it is healthy and every remote is synced there (or, if the agent reports its own view
  // of the mesh, when that view has every remote ready).
  const remoteReady =
    pending.length === 0 && removing.length === 0 && remotes.every((r) => r.connected && r.synced);
  for (const [node, s] of agents) {
    if (s instanceof Error || s.health === 'Error') {
      report.nodes.notConnected.push({
        node,
        why: s instanceof Error ? 'agent not answering' : 'agent unhealthy',
      });
      continue;
    }
    const meshProblem = s.problems.find((p) => p.component === 'clustermesh');
    if (meshProblem && remotes.length > 0) {
      report.nodes.notConnected.push({ node, why: meshProblem.cause });
      continue;
    }
    const own = (
      s as AgentStatus & { clustermesh?: { clusters?: { name: string; ready: boolean }[] } }
    ).clustermesh?.clusters;
    const notReady = [
      ...(own
        ? remotes.filter((r) => !own.some((x) => x.name === r.name && x.ready)).map((r) => r.name)
        : remoteReady
          ? []
          : remotes.filter((r) => !(r.connected && r.synced)).map((r) => r.name)),
      ...pending.map((x) => x.name),
    ];
    if (notReady.length === 0) report.nodes.connected++;
    else report.nodes.notConnected.push({ node, why: `not connected to ${notReady.join(', ')}` });
  }
  const apiOk = api !== undefined && api.etcd.ok && report.clusters[0]!.synced;
  report.components.clustermesh = !apiOk ? 'Error' : remoteReady ? 'OK' : 'Warning';
  report.ready =
    apiOk &&
    remoteReady &&
    report.nodes.connected === report.nodes.total &&
    report.components.cilium !== 'Error';
  return report;
}

function ago(iso: string | undefined): string {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 60 ? `${s}s ago` : `${Math.round(s / 60)}m ago`;
}

function counts(c: Record<string, number> | undefined): string {
  if (!c) return '';
  return `${c.nodes ?? 0} nodes, ${c.services ?? 0} global services, ${c.identities ?? 0} identities, ${c.ip ?? 0} endpoints`;
}

/** Renders the report like `cilium clustermesh status`. */
export function renderMeshStatus(r: MeshStatusReport): string {
  const L: string[] = [];
  const comp = (label: string, h: Health) => `${label}:`.padEnd(20) + h;
  L.push('    /¯¯\\');
  L.push(` /¯¯\\__/¯¯\\    ${comp('Tendril', r.components.cilium)}`);
  L.push(` \\__/¯¯\\__/    ${comp('Operator', r.components.operator)}`);
  L.push(` /¯¯\\__/¯¯\\    ${comp('Hubble', r.components.hubble)}`);
  L.push(` \\__/¯¯\\__/    ${comp('Clustermesh', r.components.clustermesh)}`);
  L.push('    \\__/');
  L.push('');
  if (!r.enabled) {
    L.push(`❌ Cluster mesh is not enabled on ${r.context}`);
    L.push(
      `   ↳ run \`tendril clustermesh enable --context ${r.context} --service-type NodePort\``,
    );
    for (const p of r.problems) L.push(`❌ ${p.component}: ${p.cause}`, `   ↳ ${p.hint}`);
    return L.join('\n') + '\n';
  }
  L.push(
    `${r.apiserver ? '✅' : '❌'} Service "clustermesh-apiserver" of type "${r.serviceType}" ${r.apiserver ? 'found' : 'not answering'}`,
  );
  L.push('✅ Cluster access information is available:');
  for (const e of r.accessEndpoints) L.push(`  - ${e.replace(/^https:\/\//, '')}`);
  if (r.apiserver) {
    L.push(
      `${r.apiserver.etcd.ok ? '✅' : '❌'} clustermesh-apiserver etcd ${r.apiserver.etcd.ok ? 'is healthy (mutual TLS only)' : `is not healthy: ${r.apiserver.etcd.error}`}`,
    );
    L.push(
      `ℹ️  KVStoreMesh is ${r.kvstoremesh ? 'enabled' : 'disabled'}${r.apiserver.kvstoremesh.cacheTTL ? ` (cache TTL ${r.apiserver.kvstoremesh.cacheTTL})` : ''}`,
    );
  }
  L.push('');
  if (r.nodes.connected === r.nodes.total) {
    L.push(`✅ All ${r.nodes.total} nodes are connected to all clusters`);
  } else {
    L.push(`⚠️  ${r.nodes.connected}/${r.nodes.total} nodes are connected to all clusters`);
    for (const n of r.nodes.notConnected) L.push(`   - ${n.node}: ${n.why}`);
  }
  const ok = r.clusters.filter((c) => c.local || (c.connected && c.synced)).length;
  L.push('');
  L.push(`Cluster Mesh: ${ok}/${r.clusters.length} clusters`);
  for (const c of [...r.clusters].sort((x, y) => x.name.localeCompare(y.name)))
    L.push(`  ${c.name}${c.local ? ' (local)' : ''}`);
  const remotes = r.clusters.filter((c) => !c.local);
  if (remotes.length > 0) {
    L.push('🔌 Cluster Connections:');
    for (const c of remotes) {
      const state = `${c.configured ? 'configured' : 'not configured'}, ${c.connected ? 'connected' : 'not connected'}, ${c.synced ? 'synced' : 'not synced'}${c.stale ? ', stale' : ''}`;
      L.push(
        `  - ${c.name} (ID ${c.clusterId ?? '?'}): ${state} - ${counts(c.counts)}; heartbeat ${ago(c.lastHeartbeat)}`,
      );
      if (c.error)
        L.push(
          `    ❌ ${c.error.reason.replace(/-/g, ' ')}: ${c.error.message}`,
          `       ↳ ${c.error.hint}`,
        );
      if (c.rejected?.total) {
        L.push(
          `    ⚠️  ${c.rejected.recent.length} record(s) refused now (${c.rejected.total} since start), not used:`,
        );
        for (const x of c.rejected.recent.slice(0, 5)) L.push(`       ${x.key}: ${x.reason}`);
        if (c.rejected.recent.length > 5)
          L.push(`       ... (-o json lists up to 100)`);
      }
    }
  } else {
    L.push(
      `ℹ️  No remote cluster is connected: run \`tendril clustermesh connect --context ${r.context} --destination-context OTHER\``,
    );
  }
  L.push(
    `🔀 Global services: ${r.globalServices.exported} exported by ${r.clusterName}, ${r.globalServices.remote} from remote clusters`,
  );
  const other = r.problems.filter((p) => !p.component.startsWith('remote cluster '));
  if (other.length > 0) {
    L.push('');
    for (const p of other) L.push(`❌ ${p.component}: ${p.cause}`, `   ↳ ${p.hint}`);
  }
  return L.join('\n') + '\n';
}

/**
 * `tendril install` / `tendril uninstall` for lab clusters: validates the
 * settings, records install.json, writes the CNI config and plugin into each
 * node, creates the kube-dns Service, and starts the operator, the cluster DNS
 * and one agent per node as lab daemons. Uninstall reverses all of it,
 * including the kernel state the agents left pinned (maps, links, routes).
 */
import { labAdminClientOptions } from '../lab/client.js';
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TendrilError, isNotFound } from '../util/errors.js';
import { clusterDir } from '../util/paths.js';
import {
  DAEMON_HUBBLE_RELAY,
  hubbleEnabled,
  hubbleNodeTLSPaths,
  hubbleRelayDaemon,
  issueHubbleCertificates,
  syncHubbleRemoteRelays,
} from './hubble.js';
import {
  addDaemon,
  listDaemonSpecs,
  nodeCommand,
  removeDaemon,
  tsxLoaderURL,
  projectRoot,
  type DaemonSpec,
} from '../lab/daemons.js';
import {
  clusterDNSAddress,
  listClusters,
  nodeCniBinDir,
  nodeCniConfDir,
  type LabCluster,
} from '../lab/state.js';
import { nodeBpffsDir } from '../lab/layout.js';
import { destroyPinnedLB } from '../datapath/linux/lb/index.js';
import { netnsPath } from '../lab/netns.js';
import { KubeClient } from '../k8s/client.js';
import type { KubeObject } from '../k8s/objects.js';
import {
  listInstallStates,
  parseSettings,
  pickClusterId,
  readInstallState,
  removeInstallState,
  validateClusterId,
  validateClusterName,
  writeInstallState,
  type IdentityAllocationMode,
  type InstallState,
} from './install-state.js';
import { acquireInstallLock } from './install-lock.js';
import { resolveInstallTarget } from './lab-target.js';
import { LabTarget, type ClusterTarget } from './target.js';
import {
  agentConfigDir,
  agentSocketPath,
  agentStateDir,
  clusterMeshConfigDir,
  daemonKubeconfigDir,
  daemonKubeconfigPath,
  tendrilConfigDir,
  operatorConfigDir,
  writeDaemonConfigs,
} from './lab-daemon-config.js';
import { NodeRouter, podMtu } from '../datapath/linux/routes.js';
import { labManifestOptions, reflectOf } from './lab-reflection.js';
import type { RoutingMode } from '../datapath/types.js';
import { AGENT_SEMI_SPACE_MIB } from './kubernetes/workloads.js';

export const DAEMON_OPERATOR = 'tendril-operator';
export const DAEMON_DNS = 'tendril-dns';
/** Daemon name of a node's agent. */
export function agentDaemonName(node: string): string {
  return `tendril-agent-${node}`;
}
export const CNI_PLUGIN_NAME = 'tendril-cni';
export const CNI_CONF_FILE = '05-tendril.conflist';
export const KUBE_DNS_SLICE = 'kube-dns-tendril';

export interface InstallOptions {
  context?: string;
  clusterName: string;
  clusterId?: string | number;
  set?: string[];
  routingMode?: string;
  identityAllocationMode?: string;
  enableL7Proxy?: boolean;
  enableCrossClusterIpvs?: boolean;
  force?: boolean;
  /** Wait for the agents to answer (default true). */
  wait?: boolean;
  timeoutMs?: number;
  progress?: (line: string) => void;
}

export interface InstallResult {
  state: InstallState;
  /** False when the same install was already there. */
  changed: boolean;
  /** What was decided on the user's behalf, and flags that do not apply. */
  notes: string[];
}

/** The CNI network config list written into each node. */
export function cniConflist(
  labCluster: string,
  node: string,
  mtu: number,
): Record<string, unknown> {
  return {
    cniVersion: '1.0.0',
    name: 'tendril',
    plugins: [
      {
        type: CNI_PLUGIN_NAME,
        agentSocket: agentSocketPath(labCluster, node),
        mtu,
        logFile: join(agentStateDir(labCluster, node), 'cni.log'),
      },
    ],
  };
}

/** The tendril-cni executable: a shell script running the plugin with this checkout's node and tsx. */
export function cniPluginScript(): string {
  return `#!/bin/sh\nexec '${process.execPath}' --import '${tsxLoaderURL()}' '${join(projectRoot(), 'src/agent/cni/main.ts')}' "$@"\n`;
}

function controlPlane(c: LabCluster) {
  const cp = c.nodes.find((n) => n.role === 'control-plane');
  if (!cp)
    throw new TendrilError(
      'INSTALL_BAD_CLUSTER',
      `lab cluster ${c.name} has no control-plane node`,
    );
  return cp;
}

/**
 * The daemons an install runs, each started as it would be on a Kubernetes
 * node: a config directory, a kubeconfig and the clustermesh config
 * directory (written by writeDaemonConfigs), nothing naming the lab.
 */
export function installDaemons(
  c: LabCluster,
  settings: Record<string, string> = {},
  ids: { clusterName?: string; clusterId?: number } = {},
): DaemonSpec[] {
  const cp = controlPlane(c);
  // each daemon is shown as the manifests' workload in kube-system (src/install/lab-reflection.ts)
  const manifests = labManifestOptions(c, { ...ids, settings });
  const importOff = settings['remote-service-import'] === 'false';
  const kubeconfig = (id: string) => daemonKubeconfigPath(c.name, id);
  const meshConfig = clusterMeshConfigDir(c.name);
  const out: DaemonSpec[] = [
    {
      name: DAEMON_OPERATOR,
      command: nodeCommand('src/operator/main.ts', [
        '--config-dir',
        operatorConfigDir(c.name),
        '--kubeconfig',
        kubeconfig('operator'),
        '--clustermesh-config',
        meshConfig,
      ]),
      netns: cp.netns,
      restart: 'always',
      reflect: reflectOf('operator', manifests),
    },
    {
      name: DAEMON_DNS,
      command: nodeCommand('src/dns/main.ts', [
        '--kubeconfig',
        kubeconfig('dns'),
        '--listen',
        `${cp.ip}:53`,
        ...(importOff ? ['--no-service-imports'] : []),
      ]),
      netns: cp.netns,
      restart: 'always',
      reflect: reflectOf('dns', manifests),
    },
  ];
  if (hubbleEnabled(settings))
    out.push({
      ...hubbleRelayDaemon(c, cp.netns),
      reflect: reflectOf('hubble-relay', manifests),
    });
  for (const n of c.nodes) {
    out.push({
      name: agentDaemonName(n.name),
      // One agent per node: a small young generation keeps each agent's resident
      // memory ~35 MiB lower (V8 commits up to 3 x 16 MiB semi-spaces by default)
      // at the cost of more frequent, cheaper scavenges. See docs/agent.md.
      command: nodeCommand(
        'src/agent/main.ts',
        [
          '--config-dir',
          agentConfigDir(c.name, n.name),
          '--kubeconfig',
          kubeconfig(`agent-${n.name}`),
          '--clustermesh-config',
          meshConfig,
          '--node-name',
          n.name,
        ],
        { nodeFlags: [`--max-semi-space-size=${AGENT_SEMI_SPACE_MIB}`] },
      ),
      netns: n.netns,
      restart: 'always',
      reflect: reflectOf('agent', manifests),
    });
  }
  return out;
}

function sameInstall(a: InstallState, b: Omit<InstallState, 'installedAt'>): boolean {
  return (
    a.clusterName === b.clusterName &&
    a.clusterId === b.clusterId &&
    a.routingMode === b.routingMode &&
    a.identityAllocationMode === b.identityAllocationMode &&
    JSON.stringify(a.settings) === JSON.stringify(b.settings)
  );
}

/**
 * Installs Tendril into a lab cluster.
 * @throws TendrilError install.* for invalid input, a racing install, or a changed cluster ID without --force.
 */
export async function install(o: InstallOptions): Promise<InstallResult> {
  const say = o.progress ?? (() => {});
  const notes: string[] = [];
  const clusterName = validateClusterName(o.clusterName);
  const settings = parseSettings(o.set ?? []);
  const explicitId =
    o.clusterId === undefined
      ? undefined
      : validateClusterId(o.clusterId, Number(settings['max-connected-clusters'] ?? 255));
  if (o.routingMode)
    settings['routing-mode'] = parseSettings([`routing-mode=${o.routingMode}`])['routing-mode']!;
  if (o.identityAllocationMode)
    settings['identity-allocation-mode'] = parseSettings([
      `identity-allocation-mode=${o.identityAllocationMode}`,
    ])['identity-allocation-mode']!;
  if (settings['identity-allocation-mode'] === 'kvstore') {
    throw new TendrilError(
      'INSTALL_UNSUPPORTED',
      'identity allocation mode "kvstore" is not available in lab clusters: they have no cluster etcd for agents (the mesh etcd only exports state)',
      {
        hint: 'use --enable-identity-allocation-mode CRD (the default): identities are CiliumIdentity objects and the mesh exports them',
      },
    );
  }
  if (o.enableL7Proxy)
    notes.push(
      '--enable-l7-proxy: not applicable: this version has no L7 proxy (policy is enforced at L3/L4 by eBPF)',
    );
  if (o.enableCrossClusterIpvs)
    notes.push(
      '--enable-cross-cluster-ipvs: IPVS is not used; cross-cluster load balancing is done by eBPF at the socket, which is always on',
    );
  if (o.identityAllocationMode)
    notes.push(
      `--enable-identity-allocation-mode ${o.identityAllocationMode}: identities are allocated by the operator as CiliumIdentity objects`,
    );

  const target = resolveInstallTarget(o.context);
  const c = target.cluster;
  const release = acquireInstallLock(c.name, 'install');
  // objects and the agents' status through the ClusterTarget
  const lab = new LabTarget(c);
  try {
    const prev = readInstallState(c.name);
    const others = listInstallStates().filter((s) => s.labCluster !== c.name);
    let clusterId: number;
    if (explicitId !== undefined) clusterId = explicitId;
    else if (prev) clusterId = prev.clusterId;
    else {
      clusterId = pickClusterId(others.map((s) => s.clusterId));
      notes.push(
        `cluster ID ${clusterId} picked (no other lab cluster uses it); pass --cluster-id to choose`,
      );
    }
    const clash = others.find((s) => s.clusterId === clusterId);
    if (clash)
      notes.push(
        `warning: cluster ID ${clusterId} is also used by lab cluster ${clash.labCluster} (${clash.clusterName}); the two cannot be meshed`,
      );
    const nameClash = others.find((s) => s.clusterName === clusterName);
    if (nameClash)
      notes.push(
        `warning: cluster name ${clusterName} is also used by lab cluster ${nameClash.labCluster}; the two cannot be meshed`,
      );
    if (prev && prev.clusterId !== clusterId && !o.force) {
      throw new TendrilError(
        'INSTALL_CLUSTER_ID_CHANGED',
        `Tendril is installed in ${c.name} with cluster ID ${prev.clusterId}; refusing to change it to ${clusterId}: security identities embed the cluster ID (bits 16-23), so every identity, endpoint and remote cluster's view of this one would change`,
        {
          hint: `keep --cluster-id ${prev.clusterId}, or pass --force to reinstall with the new ID (identities are re-allocated)`,
        },
      );
    }
    const next: Omit<InstallState, 'installedAt'> = {
      version: 1,
      labCluster: c.name,
      clusterName,
      clusterId,
      routingMode: settings['routing-mode'] as RoutingMode,
      identityAllocationMode: settings['identity-allocation-mode'] as IdentityAllocationMode,
      settings,
    };
    const daemons = installDaemons(c, settings, { clusterName, clusterId });
    const present = new Set(listDaemonSpecs(c.name).map((d) => d.name));
    if (prev && sameInstall(prev, next) && daemons.every((d) => present.has(d.name))) {
      say(
        `Tendril is already installed in ${c.name} (cluster ${clusterName}, ID ${clusterId}) with these settings: unchanged`,
      );
      return { state: prev, changed: false, notes };
    }
    if (prev && prev.clusterId !== clusterId) {
      say(`Reinstalling with cluster ID ${clusterId} (was ${prev.clusterId}) because of --force`);
      // keep the agents' IPAM and endpoints: live pods keep their addresses; their identities are re-allocated
      await removeEverything(c, say, { keepInstallState: false, keepAgentState: true });
    }
    const state: InstallState = {
      ...next,
      installedAt:
        prev && prev.clusterId === clusterId ? prev.installedAt : new Date().toISOString(),
    };
    writeInstallState(state);
    say(
      `Installing Tendril in lab cluster ${c.name}: cluster name ${clusterName}, cluster ID ${clusterId}, routing ${state.routingMode}`,
    );

    const mtu = podMtu(state.routingMode, Number(settings['mtu'] ?? 1500));
    for (const n of c.nodes) {
      mkdirSync(nodeCniBinDir(c.name, n.name), { recursive: true });
      mkdirSync(nodeCniConfDir(c.name, n.name), { recursive: true });
      mkdirSync(agentStateDir(c.name, n.name), { recursive: true });
      const bin = join(nodeCniBinDir(c.name, n.name), CNI_PLUGIN_NAME);
      writeFileSync(bin, cniPluginScript());
      chmodSync(bin, 0o755);
      writeFileSync(
        join(nodeCniConfDir(c.name, n.name), CNI_CONF_FILE),
        JSON.stringify(cniConflist(c.name, n.name, mtu), null, 2) + '\n',
      );
    }
    say(`CNI plugin ${CNI_PLUGIN_NAME} and ${CNI_CONF_FILE} written to ${c.nodes.length} node(s)`);

    if (hubbleEnabled(settings) && (await issueHubbleCertificates(c, clusterName)))
      say(
        `Hubble certificates issued from the cluster CA: ${c.nodes.length} node(s) (:4244) and the relay (:4245)`,
      );
    writeDaemonConfigs(c, state);
    say(`Daemon config written to ${tendrilConfigDir(c.name)} and each node's agent-config/`);
    await syncHubbleRemoteRelays(c.name);

    await ensureKubeDNS(c, say, lab);

    // a changed routing mode must not leave the other mode's routes behind
    if (prev && prev.routingMode !== state.routingMode) {
      for (const n of c.nodes) {
        await new NodeRouter({
          mode: prev.routingMode,
          nodeIP: n.ip,
          podCIDR: n.podCIDR,
          mtu: 1500,
          netns: netnsPath(n.netns),
        })
          .teardown()
          .catch(() => undefined);
      }
    }
    const since = Date.now();
    for (const d of daemons)
      addDaemon(c.name, {
        ...d,
        env: {
          ...(d.env ?? {}),
          TENDRIL_INSTALL_AT: state.installedAt,
          TENDRIL_INSTALL_GEN: String(Date.now()),
        },
      });
    say(
      `Started ${DAEMON_OPERATOR} and ${DAEMON_DNS} on ${controlPlane(c).name}, and ${c.nodes.length} agent(s)`,
    );
    if (o.wait ?? true) await waitAgents(c, o.timeoutMs ?? 60_000, say, since, lab);
    return { state, changed: true, notes };
  } finally {
    lab.close();
    release();
  }
}

/** Waits until every node's agent answers on its socket. @throws TendrilError install.Timeout */
export async function waitAgents(
  c: LabCluster,
  timeoutMs: number,
  say: (l: string) => void,
  startedAfter = 0,
  target: Pick<ClusterTarget, 'agentStatus'> = new LabTarget(c),
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const pending = new Set(c.nodes.map((n) => n.name));
  while (pending.size > 0) {
    for (const n of [...pending]) {
      try {
        const st = await target.agentStatus(n);
        // an agent of the previous install may still answer until the supervisor restarts it
        if (Date.parse(st.startedAt) >= startedAfter - 1000) pending.delete(n);
      } catch {
        // not up yet
      }
    }
    if (pending.size === 0) break;
    if (Date.now() > deadline) {
      throw new TendrilError(
        'INSTALL_TIMEOUT',
        `agents did not come up within ${Math.round(timeoutMs / 1000)}s on: ${[...pending].join(', ')}`,
        {
          hint: `see \`tendril lab logs\` for ${[...pending].map(agentDaemonName).join(', ')} and \`tendril status\``,
        },
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  say(`All ${c.nodes.length} agents are up`);
}

/** Creates (or updates) kube-system/kube-dns at the 10th service address, backed by the control plane's DNS. */
export async function ensureKubeDNS(
  c: LabCluster,
  say: (l: string) => void,
  target: Pick<ClusterTarget, 'read' | 'apply'>,
): Promise<void> {
  const cp = controlPlane(c);
  const dnsIP = clusterDNSAddress(c);
  const svc: KubeObject = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: 'kube-dns',
      namespace: 'kube-system',
      labels: { 'k8s-app': 'kube-dns', 'app.kubernetes.io/managed-by': 'tendril' },
    },
    spec: {
      clusterIP: dnsIP,
      ports: [
        { name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 },
        { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 53 },
      ],
    },
  };
  const slice: KubeObject = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: KUBE_DNS_SLICE,
      namespace: 'kube-system',
      labels: {
        'kubernetes.io/service-name': 'kube-dns',
        'endpointslice.kubernetes.io/managed-by': 'tendril.io',
      },
    },
    addressType: 'IPv4',
    ports: [
      { name: 'dns', port: 53, protocol: 'UDP' },
      { name: 'dns-tcp', port: 53, protocol: 'TCP' },
    ],
    endpoints: [{ addresses: [cp.ip], conditions: { ready: true }, nodeName: cp.name }],
  } as KubeObject;
  await upsert(target, svc);
  await upsert(target, slice);
  say(`Service kube-system/kube-dns at ${dnsIP}:53 (UDP, TCP) -> ${cp.ip}:53`);
}

/** Creates, or updates keeping what the server set (a Service's spec is merged). */
async function upsert(
  target: Pick<ClusterTarget, 'read' | 'apply'>,
  obj: KubeObject,
): Promise<void> {
  const cur = await target.read(
    obj.apiVersion,
    obj.kind,
    obj.metadata.name!,
    obj.metadata.namespace,
  );
  if (!cur) {
    await target.apply([obj]);
    return;
  }
  const merged = {
    ...obj,
    metadata: { ...cur.metadata, ...obj.metadata, resourceVersion: cur.metadata.resourceVersion },
  } as KubeObject;
  if (obj.kind === 'Service') merged.spec = { ...cur.spec, ...obj.spec };
  await target.apply([merged]);
}

export interface UninstallOptions {
  context?: string;
  progress?: (line: string) => void;
}

/** Removes Tendril from a lab cluster. @throws TendrilError install.NotInstalled, install.Locked */
export async function uninstall(o: UninstallOptions): Promise<{ removed: boolean }> {
  const say = o.progress ?? (() => {});
  const target = resolveInstallTarget(o.context);
  const c = target.cluster;
  const release = acquireInstallLock(c.name, 'uninstall');
  try {
    const prev = readInstallState(c.name);
    const ours = listDaemonSpecs(c.name).some(
      (d) => d.name === DAEMON_OPERATOR || d.name.startsWith('tendril-agent-'),
    );
    if (!prev && !ours) {
      say(`Tendril is not installed in ${c.name}: nothing to remove`);
      return { removed: false };
    }
    await removeEverything(c, say, { keepInstallState: false });
    say(`Tendril removed from ${c.name}`);
    return { removed: true };
  } finally {
    release();
  }
}

async function removeEverything(
  c: LabCluster,
  say: (l: string) => void,
  o: { keepInstallState: boolean; keepAgentState?: boolean },
): Promise<void> {
  const names = [
    DAEMON_OPERATOR,
    DAEMON_DNS,
    DAEMON_HUBBLE_RELAY,
    ...c.nodes.map((n) => agentDaemonName(n.name)),
  ];
  await Promise.all(
    names.map((n) =>
      removeDaemon(c.name, n, { wait: true, timeoutMs: 20_000 }).catch(() => undefined),
    ),
  );
  say(`Stopped ${names.length} daemon(s)`);
  for (const n of c.nodes) {
    rmSync(join(nodeCniConfDir(c.name, n.name), CNI_CONF_FILE), { force: true });
    rmSync(join(nodeCniBinDir(c.name, n.name), CNI_PLUGIN_NAME), { force: true });
    if (!o.keepAgentState) rmSync(agentStateDir(c.name, n.name), { recursive: true, force: true });
    rmSync(agentSocketPath(c.name, n.name), { force: true });
    rmSync(agentConfigDir(c.name, n.name), { recursive: true, force: true });
    rmSync(hubbleNodeTLSPaths(c.name, n.name).dir, { recursive: true, force: true });
    // the socket LB detaches its pinned links and removes its pins; then the rest of the node's pins go
    try {
      destroyPinnedLB(nodeBpffsDir(c.name, n.name));
    } catch (err) {
      say(`warning: ${n.name}: could not detach the socket LB cleanly: ${(err as Error).message}`);
    }
    rmSync(nodeBpffsDir(c.name, n.name), { recursive: true, force: true });
    const ns = netnsPath(n.netns);
    if (existsSync(ns)) {
      for (const mode of ['native', 'tunnel'] as const) {
        await new NodeRouter({ mode, nodeIP: n.ip, podCIDR: n.podCIDR, mtu: 1500, netns: ns })
          .teardown()
          .catch(() => undefined);
      }
    }
  }
  say('Removed CNI config, agent state, pinned BPF objects and routes from every node');
  const kube = new KubeClient(labAdminClientOptions(c, { timeoutMs: 10_000 }));
  try {
    for (const [apiVersion, kind, name, namespace] of [
      ['discovery.k8s.io/v1', 'EndpointSlice', KUBE_DNS_SLICE, 'kube-system'],
      ['v1', 'Service', 'kube-dns', 'kube-system'],
    ] as const) {
      await kube.delete(apiVersion, kind, name, { namespace }).catch((e) => ignore404(e));
    }
    for (const kind of ['CiliumEndpoint', 'CiliumIdentity']) {
      const l = await kube.list('cilium.io/v2', kind).catch(() => ({ items: [] as KubeObject[] }));
      for (const obj of l.items) {
        await kube
          .delete(
            'cilium.io/v2',
            kind,
            obj.metadata.name!,
            obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {},
          )
          .catch((e) => ignore404(e));
      }
    }
    say('Removed kube-dns, CiliumEndpoints and CiliumIdentities');
  } catch (err) {
    say(`warning: could not clean API objects: ${(err as Error).message}`);
  } finally {
    kube.close();
  }
  rmSync(join(clusterDir(c.name), 'operator-status.json'), { force: true });
  rmSync(operatorConfigDir(c.name), { recursive: true, force: true });
  rmSync(daemonKubeconfigDir(c.name), { recursive: true, force: true });
  // a reinstall (--force) keeps the mesh's remotes; uninstall drops them
  if (!o.keepAgentState) rmSync(tendrilConfigDir(c.name), { recursive: true, force: true });
  if (!o.keepInstallState) removeInstallState(c.name);
}

function ignore404(e: unknown): void {
  if (!isNotFound(e)) throw e;
}

/** Lab clusters with Tendril installed, by name. */
export function installedClusters(): string[] {
  const names = new Set(listClusters().map((c) => c.name));
  return listInstallStates()
    .map((s) => s.labCluster)
    .filter((n) => names.has(n));
}

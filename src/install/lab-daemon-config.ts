/**
 * How the lab configures Tendril's daemons: as a Kubernetes cluster would,
 * with files, not with the lab's name. At install the lab writes, under
 * $TENDRIL_HOME/clusters/<lab cluster>/:
 *
 *   tendril/kubeconfigs/<identity>.yaml   each daemon's --kubeconfig: the API server as the nodes
 *                                         reach it (https, the lab CA and that daemon's own token:
 *                                         agent-<node>, operator, dns, clustermesh-apiserver)
 *   tendril/operator-config/<key>         the operator's settings (--config-dir; cilium-config's shape)
 *   tendril/clustermesh-config/<cluster>  one etcd config per remote cluster (--clustermesh-config;
 *                                         Cilium's clustermesh-config shape), written by
 *                                         `clustermesh connect`, emptied by disconnect/disable
 *   nodes/<node>/agent-config/<key>       each agent's settings: the cluster's, plus its node's
 *                                         bpf-root, cgroup-root, state-dir, socket-path
 *
 * and starts each daemon with those paths (installDaemons in install.ts).
 */
import { clusterConfigData } from './kubernetes/options.js';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { mkdirSync } from 'node:fs';
import { writeFileAtomicSync } from '../util/atomic-write.js';
import { clusterDir } from '../util/paths.js';
import { writeConfigDir } from '../util/config-dir.js';
import { apiServerNodeURL, nodeDir, type LabCluster } from '../lab/state.js';
import { labKubeconfig } from '../lab/pki.js';
import { nodeBpffsDir, nodeCgroup } from '../lab/layout.js';
import {
  readClusterMeshConfig,
  writeClusterMeshConfig,
  type RemoteEtcdConfig,
} from '../clustermesh/clustermesh-config.js';
import {
  ETCD_CLIENT_PORT,
  listRemotes,
  meshPaths,
  readMeshConfig,
  type MeshConfig,
} from '../clustermesh/mesh-files.js';
import type { InstallState } from './install-state.js';
import { hubbleAgentTLSSettings, hubbleEnabled, syncHubbleRemoteRelays } from './hubble.js';

/** The agent's Unix socket of a lab node. */
export function agentSocketPath(labCluster: string, node: string): string {
  return join(nodeDir(labCluster, node), 'agent.sock');
}

/** The agent's state directory of a lab node. */
export function agentStateDir(labCluster: string, node: string): string {
  return join(nodeDir(labCluster, node), 'agent');
}

/** The agent's config directory of a lab node. */
export function agentConfigDir(labCluster: string, node: string): string {
  return join(nodeDir(labCluster, node), 'agent-config');
}

/**
 * Where the lab keeps Tendril's daemons' shared files (not `daemons/`: that
 * is the lab supervisor's directory of daemon specs).
 */
export function tendrilConfigDir(labCluster: string): string {
  return join(clusterDir(labCluster), 'tendril');
}

/** Where the daemons' kubeconfigs are (one per identity). */
export function daemonKubeconfigDir(labCluster: string): string {
  return join(tendrilConfigDir(labCluster), 'kubeconfigs');
}

/** The kubeconfig of one daemon identity: "agent-<node>", "operator", "dns", "clustermesh-apiserver". */
export function daemonKubeconfigPath(labCluster: string, identity: string): string {
  return join(daemonKubeconfigDir(labCluster), `${identity}.yaml`);
}

/** The identities of a lab cluster's Tendril daemons (each has its own credential). */
export function daemonIdentities(c: Pick<LabCluster, 'nodes'>): string[] {
  return ['operator', 'dns', 'clustermesh-apiserver', ...c.nodes.map((n) => `agent-${n.name}`)];
}

/** The operator's config directory. */
export function operatorConfigDir(labCluster: string): string {
  return join(tendrilConfigDir(labCluster), 'operator-config');
}

/** The clustermesh config directory the agents and the operator follow. */
export function clusterMeshConfigDir(labCluster: string): string {
  return join(tendrilConfigDir(labCluster), 'clustermesh-config');
}

/** Where the lab operator writes its status (for `tendril status`). */
export function operatorStatusPath(labCluster: string): string {
  return join(clusterDir(labCluster), 'operator-status.json');
}

/** The cluster-wide settings every daemon's config directory holds (cilium-config's keys). */
export function clusterSettings(c: LabCluster, st: InstallState): Record<string, string> {
  // the same keys and values the `tendril-config` ConfigMap of a real cluster carries
  const configMap = clusterConfigData({
    clusterName: st.clusterName,
    clusterId: st.clusterId,
    podCIDR: c.podCIDR,
    settings: st.settings,
  });
  return {
    ...configMap,
    'cluster-name': st.clusterName,
    'cluster-id': String(st.clusterId),
    'routing-mode': st.routingMode,
    mtu: st.settings['mtu'] ?? '1500',
    'bpf-lb-algorithm': st.settings['lb-algorithm'] ?? 'random',
    'cluster-pool-ipv4-cidr': c.podCIDR,
    'identity-allocation-mode': st.identityAllocationMode,
    'identity-gc-interval': st.settings['identity-gc-interval'] ?? '30s',
    'remote-service-import': st.settings['remote-service-import'] ?? 'true',
  };
}

/**
 * One daemon's kubeconfig: with the cluster's https API server (clusters made
 * by `lab create` since it has one), the nodes' https URL, the lab CA and the
 * identity's own token (src/lab/pki.ts); otherwise the plain-http URL and no
 * credential.
 */
export function daemonKubeconfig(c: LabCluster, identity: string): string {
  if (c.apiSecureSocket) return labKubeconfig(c, identity);
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'tendril',
    clusters: [{ name: c.name, cluster: { server: apiServerNodeURL(c) } }],
    users: [{ name: 'tendril-daemon', user: {} }],
    contexts: [{ name: 'tendril', context: { cluster: c.name, user: 'tendril-daemon' } }],
  });
}

/** Writes the daemons' kubeconfigs and the operator's and every agent's config directory. */
export function writeDaemonConfigs(c: LabCluster, st: InstallState): void {
  const shared = clusterSettings(c, st);
  mkdirSync(tendrilConfigDir(c.name), { recursive: true });
  for (const id of daemonIdentities(c))
    writeFileAtomicSync(daemonKubeconfigPath(c.name, id), daemonKubeconfig(c, id), {
      mode: 0o600,
      dirMode: 0o700,
    });
  writeConfigDir(operatorConfigDir(c.name), {
    ...shared,
    'operator-status-file': operatorStatusPath(c.name),
  });
  mkdirSync(clusterMeshConfigDir(c.name), { recursive: true });
  for (const n of c.nodes) {
    writeConfigDir(agentConfigDir(c.name, n.name), {
      ...shared,
      'bpf-root': nodeBpffsDir(c.name, n.name),
      'cgroup-root': nodeCgroup(c.name, n.name),
      'state-dir': agentStateDir(c.name, n.name),
      'socket-path': agentSocketPath(c.name, n.name),
      ...(hubbleEnabled(st.settings) ? hubbleAgentTLSSettings(c.name, n.name) : {}),
    });
  }
}

/**
 * One remote's etcd config for this cluster's agents: with kvstoremesh every
 * remote is read from the cluster's own clustermesh etcd, with the
 * local-agent certificate.
 */
export function localMeshEtcdConfig(
  labCluster: string,
  mesh: Pick<MeshConfig, 'listenIP'>,
  remote: string,
): RemoteEtcdConfig {
  const p = meshPaths(labCluster);
  return {
    name: remote,
    endpoints: [`https://${mesh.listenIP}:${ETCD_CLIENT_PORT}`],
    trustedCAFile: p.caCert,
    certFile: p.agentCert,
    keyFile: p.agentKey,
  };
}

/** Sets the remote clusters this cluster's agents and operator follow (an empty list: none). */
export function writeLabClusterMeshConfig(
  labCluster: string,
  mesh: Pick<MeshConfig, 'listenIP'> | undefined,
  remotes: string[],
): void {
  writeClusterMeshConfig(
    clusterMeshConfigDir(labCluster),
    mesh ? remotes.map((r) => localMeshEtcdConfig(labCluster, mesh, r)) : [],
  );
}

/** The remote clusters named in a lab cluster's clustermesh config. */
export function labClusterMeshRemotes(labCluster: string): string[] {
  return readClusterMeshConfig(clusterMeshConfigDir(labCluster)).map((r) => r.name);
}

/**
 * Rewrites a lab cluster's clustermesh config from its mesh files: one file
 * per connected remote when the mesh is enabled, none otherwise. Called after
 * enable, connect, disconnect and disable; the agents and the operator pick
 * the change up on their next read of the directory.
 */
export async function syncLabClusterMeshConfig(labCluster: string): Promise<void> {
  const mesh = readMeshConfig(labCluster);
  const names = mesh ? (await listRemotes(labCluster)).remotes.map((r) => r.name) : [];
  writeLabClusterMeshConfig(labCluster, mesh, names);
  // the relay follows the same connections (other clusters' relays on :4245)
  await syncHubbleRemoteRelays(labCluster);
}

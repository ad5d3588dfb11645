/**
 * How an agent learns its configuration: from the lab (cluster.json +
 * install.json, by lab cluster and node name) or from a JSON file (a real
 * node, or tests with their own namespaces).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TendrilError } from '../util/errors.js';
import { findNode, loadCluster, apiServerNodeURL, nodeDir } from '../lab/state.js';
import { nodeBpffsDir, nodeCgroup } from '../lab/layout.js';
import { readInstallState } from './install-state.js';
import { podMtu } from '../datapath/linux/routes.js';
import type { EnforcementMode } from '../policy/engine.js';
import type { AgentConfig, NodeInfo } from './agent.js';
import type { LBAlgorithm, RoutingMode } from '../datapath/types.js';

/** The agent's Unix socket of a lab node. */
export function agentSocketPath(labCluster: string, node: string): string {
  return join(nodeDir(labCluster, node), 'agent.sock');
}

/** The agent's state directory of a lab node. */
export function agentStateDir(labCluster: string, node: string): string {
  return join(nodeDir(labCluster, node), 'agent');
}

/** Agent configuration plus what a file may add (static nodes when there is no API server). */
export interface AgentFileConfig extends AgentConfig {
  /** Nodes to route to without an API server. */
  staticNodes?: NodeInfo[];
  /** Underlay MTU (podMtu derives from it when not given). */
  mtu?: number;
}

/**
 * Builds a lab node's agent config from cluster.json and install.json.
 * @throws ClusterNotFoundError, TendrilError agent.NotInstalled
 */
export function agentConfigFromLab(labCluster: string, node: string): AgentConfig {
  const cluster = loadCluster(labCluster);
  const n = findNode(cluster, node);
  const inst = readInstallState(labCluster);
  if (!inst) {
    throw new TendrilError(
      'agent.NotInstalled',
      `Tendril is not installed in lab cluster ${labCluster}`,
      {
        hint: `run: tendril install --context lab-${labCluster} --cluster-name ${labCluster}`,
      },
    );
  }
  const mtu = Number(inst.settings['mtu'] ?? 1500);
  return {
    labCluster,
    node,
    nodeIP: n.ip,
    podCIDR: n.podCIDR,
    clusterName: inst.clusterName,
    clusterId: inst.clusterId,
    routingMode: inst.routingMode,
    podMtu: podMtu(inst.routingMode, mtu),
    lbAlgorithm: (inst.settings['lb-algorithm'] ?? 'random') as LBAlgorithm,
    policyEnforcement: (inst.settings['policy-enforcement'] ?? 'default') as EnforcementMode,
    policyDefaultLocalCluster: inst.settings['policy-default-local-cluster'] !== 'false',
    stateDir: agentStateDir(labCluster, node),
    socketPath: agentSocketPath(labCluster, node),
    bpffsDir: nodeBpffsDir(labCluster, node),
    cgroupPath: nodeCgroup(labCluster, node),
    apiServerURL: apiServerNodeURL(cluster),
  };
}

/** Reads an agent config file (JSON with AgentConfig's fields). @throws TendrilError agent.BadConfig */
export function agentConfigFromFile(path: string): AgentFileConfig {
  let c: Partial<AgentFileConfig>;
  try {
    c = JSON.parse(readFileSync(path, 'utf8')) as Partial<AgentFileConfig>;
  } catch (err) {
    throw new TendrilError(
      'agent.BadConfig',
      `read agent config ${path}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  for (const k of [
    'node',
    'nodeIP',
    'podCIDR',
    'stateDir',
    'socketPath',
    'bpffsDir',
    'cgroupPath',
  ] as const) {
    if (typeof c[k] !== 'string' || !c[k])
      throw new TendrilError('agent.BadConfig', `agent config ${path}: "${k}" is required`);
  }
  const mode = (c.routingMode ?? 'native') as RoutingMode;
  return {
    ...(c as AgentFileConfig),
    labCluster: c.labCluster ?? '',
    clusterName: c.clusterName ?? 'default',
    clusterId: c.clusterId ?? 1,
    routingMode: mode,
    podMtu: c.podMtu ?? podMtu(mode, c.mtu ?? 1500),
    lbAlgorithm: c.lbAlgorithm ?? 'random',
  };
}

/**
 * Hubble in a lab cluster: where each agent's Observer socket and the
 * cluster's relay socket are, and the relay daemon (one per cluster, on the
 * control plane like the operator) that `installDaemons` adds unless
 * `--set hubble.enabled=false`.
 */
import { join } from 'node:path';
import { clusterDir } from '../util/paths.js';
import { nodeDir, type LabCluster } from '../lab/state.js';
import { nodeCommand, type DaemonSpec } from '../lab/daemons.js';
import { daemonKubeconfigPath } from './lab-daemon-config.js';

/** The relay's daemon name. */
export const DAEMON_HUBBLE_RELAY = 'hubble-relay';

/** A lab node's Observer socket (the agent's default: hubble.sock beside agent.sock). */
export function hubbleNodeSocketPath(labCluster: string, node: string): string {
  return join(nodeDir(labCluster, node), 'hubble.sock');
}

/** The cluster relay's Unix socket (what `tendril hubble observe` dials). */
export function hubbleRelaySocketPath(labCluster: string): string {
  return join(clusterDir(labCluster), 'hubble-relay.sock');
}

/** Where a lab cluster's relay finds other clusters' relays (one JSON per remote). */
export function hubbleRemoteRelaysDir(labCluster: string): string {
  return join(clusterDir(labCluster), 'tendril', 'hubble-remote-relays');
}

/** True unless the install said `--set hubble.enabled=false`. */
export function hubbleEnabled(settings: Record<string, string>): boolean {
  return settings['hubble-enabled'] !== 'false';
}

/**
 * The relay daemon of a lab cluster: it lists the Nodes from the API server
 * (the operator's credential) and reaches each node's agent on its socket.
 */
export function hubbleRelayDaemon(c: LabCluster, netns: string): DaemonSpec {
  return {
    name: DAEMON_HUBBLE_RELAY,
    command: nodeCommand('src/observe/relay-main.ts', [
      '--kubeconfig',
      daemonKubeconfigPath(c.name, 'operator'),
      '--node-socket',
      hubbleNodeSocketPath(c.name, '{node}'),
      '--socket',
      hubbleRelaySocketPath(c.name),
      '--remote-relays',
      hubbleRemoteRelaysDir(c.name),
      '--name',
      `hubble-relay-${c.name}`,
    ]),
    netns,
    restart: 'always',
  };
}

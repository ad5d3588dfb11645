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

/** What `tendril status` shows about Hubble. */
export interface HubbleSummary {
  health: 'OK' | 'Warning' | 'Error' | 'disabled';
  flowsPerSecond?: number;
  lostEvents?: number;
  connectedNodes?: number;
  unavailableNodes?: string[];
  error?: string;
}

/** Asks the cluster's relay for ServerStatus (2 s), for `tendril status`. */
export async function collectHubbleSummary(
  labCluster: string,
  settings: Record<string, string>,
): Promise<HubbleSummary> {
  if (!hubbleEnabled(settings)) return { health: 'disabled' };
  const { ObserverClient } = await import('../observe/client.js');
  const client = new ObserverClient({
    address: `unix:${hubbleRelaySocketPath(labCluster)}`,
    timeoutMs: 2000,
  });
  try {
    const s = await client.serverStatus();
    const unavailable = s.unavailableNodes;
    return {
      health: unavailable.length ? 'Warning' : 'OK',
      flowsPerSecond: s.flowsRate,
      lostEvents: s.lostEvents,
      connectedNodes: s.numConnectedNodes ?? 0,
      unavailableNodes: unavailable,
    };
  } catch (err) {
    return { health: 'Error', error: (err as Error).message };
  } finally {
    client.close();
  }
}

/** The text after `Hubble:` in `tendril status`. */
export function formatHubbleSummary(h: HubbleSummary | undefined, fallback: string): string {
  if (!h || h.health === 'disabled') return fallback;
  if (h.health === 'Error') return `Error (relay not answering: ${h.error ?? 'unknown'})`;
  const un = h.unavailableNodes?.length ? `, unavailable: ${h.unavailableNodes.join(', ')}` : '';
  return `${h.health} (${(h.flowsPerSecond ?? 0).toFixed(2)} flows/s, ${h.lostEvents ?? 0} lost events, ${h.connectedNodes ?? 0} nodes${un})`;
}

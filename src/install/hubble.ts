/**
 * Hubble in a lab cluster: where each agent's Observer socket and the
 * cluster's relay socket are, the relay daemon (one per cluster, on the
 * control plane like the operator) that `installDaemons` adds unless
 * `--set hubble.enabled=false`, and Hubble's certificates.
 *
 * Certificates (all from the lab cluster's CA, pki/ca.crt, the CA of the rest
 * of the lab's PKI; issued by `tendril install`):
 *
 *   nodes/<node>/hubble-tls/ca.crt server.crt server.key
 *       the node's observer on <node ip>:4244 (server and client use; SANs: the
 *       node's IP, <node>.<cluster name>.hubble-grpc.cilium.io)
 *   tendril/hubble-relay/ca.crt server.crt server.key
 *       the relay: serves <control plane ip>:4245 and dials the nodes with it
 *   tendril/hubble-remote-relays/<cluster>.json, <cluster>/ca.crt client.crt client.key
 *       a connected cluster's relay (written when the mesh connects them): its
 *       address, ITS CA, and a client certificate its CA signed for this relay
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { clusterDir } from '../util/paths.js';
import { loadCA, issueServerCert, issueClientCert, verifyCertificate } from '../util/certs.js';
import type { CertificateAuthority } from '../util/certs.js';
import { writeFileAtomicSync } from '../util/atomic-write.js';
import { nodeDir, tryLoadCluster, type LabCluster } from '../lab/state.js';
import { nodeCommand, type DaemonSpec } from '../lab/daemons.js';
import { pkiPaths } from '../lab/pki.js';
import { daemonKubeconfigPath, tendrilConfigDir } from './lab-daemon-config.js';
import { readInstallState } from './install-state.js';
import { listRemotes } from '../clustermesh/mesh-files.js';

/** Hubble's node port (the observer with mutual TLS). */
export const HUBBLE_NODE_PORT = 4244;
/** Hubble Relay's port. */
export const HUBBLE_RELAY_PORT = 4245;

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

/** The files of one side of Hubble's mutual TLS. */
export interface HubbleTLSPaths {
  dir: string;
  ca: string;
  cert: string;
  key: string;
}

/** A lab node's observer certificate (served on :4244). */
export function hubbleNodeTLSPaths(labCluster: string, node: string): HubbleTLSPaths {
  const dir = join(nodeDir(labCluster, node), 'hubble-tls');
  return {
    dir,
    ca: join(dir, 'ca.crt'),
    cert: join(dir, 'server.crt'),
    key: join(dir, 'server.key'),
  };
}

/** The cluster relay's certificate (served on :4245, presented to the nodes). */
export function hubbleRelayTLSPaths(labCluster: string): HubbleTLSPaths {
  const dir = join(tendrilConfigDir(labCluster), 'hubble-relay');
  return {
    dir,
    ca: join(dir, 'ca.crt'),
    cert: join(dir, 'server.crt'),
    key: join(dir, 'server.key'),
  };
}

/** The files this cluster's relay uses to dial REMOTE's relay. */
export function hubbleRemoteRelayPaths(labCluster: string, remote: string) {
  const dir = join(hubbleRemoteRelaysDir(labCluster), remote);
  return {
    record: join(hubbleRemoteRelaysDir(labCluster), `${remote}.json`),
    dir,
    ca: join(dir, 'ca.crt'),
    cert: join(dir, 'client.crt'),
    key: join(dir, 'client.key'),
  };
}

/**
 * True when the lab cluster has a CA to issue Hubble's certificates (every
 * cluster `lab create` made since the lab has a PKI): its observers then
 * serve :4244 and its relay :4245, both with mutual TLS.
 */
export function hubbleTLSAvailable(labCluster: string): boolean {
  const p = pkiPaths(labCluster);
  return existsSync(p.caCert) && existsSync(p.caKey);
}

async function labCA(labCluster: string): Promise<CertificateAuthority> {
  const p = pkiPaths(labCluster);
  return loadCA(readFileSync(p.caCert, 'utf8'), readFileSync(p.caKey, 'utf8'));
}

/** The control-plane node (the relay runs there). */
function controlPlaneNode(c: LabCluster) {
  return c.nodes.find((n) => n.role === 'control-plane') ?? c.nodes[0]!;
}

/**
 * Issues (again) every Hubble certificate of a lab cluster from its CA: one
 * per node and the relay's. Returns false (nothing issued) when the cluster
 * has no CA. @throws CertificateError when the CA's files do not match.
 */
export async function issueHubbleCertificates(
  c: LabCluster,
  clusterName: string,
): Promise<boolean> {
  if (!hubbleTLSAvailable(c.name)) return false;
  const ca = await labCA(c.name);
  const write = async (
    p: HubbleTLSPaths,
    o: { commonName: string; ips: string[]; dnsNames: string[] },
  ) => {
    const kp = await issueServerCert(ca, o);
    mkdirSync(p.dir, { recursive: true, mode: 0o700 });
    writeFileAtomicSync(p.ca, ca.certPEM);
    writeFileAtomicSync(p.key, kp.keyPEM, { mode: 0o600 });
    writeFileAtomicSync(p.cert, kp.certPEM);
  };
  for (const n of c.nodes) {
    const name = `${n.name}.${clusterName}.hubble-grpc.cilium.io`;
    await write(hubbleNodeTLSPaths(c.name, n.name), {
      commonName: name,
      ips: [n.ip],
      dnsNames: [name],
    });
  }
  const cp = controlPlaneNode(c);
  await write(hubbleRelayTLSPaths(c.name), {
    commonName: `hubble-relay.${clusterName}.hubble-relay.cilium.io`,
    ips: [cp.ip],
    dnsNames: [`hubble-relay.${clusterName}.hubble-relay.cilium.io`, 'hubble-relay'],
  });
  return true;
}

/** The agent config keys that give a node's observer its certificate (none without one). */
export function hubbleAgentTLSSettings(labCluster: string, node: string): Record<string, string> {
  if (!hubbleTLSAvailable(labCluster)) return {};
  const p = hubbleNodeTLSPaths(labCluster, node);
  return {
    'hubble-listen-address': `:${HUBBLE_NODE_PORT}`,
    'hubble-tls-cert-file': p.cert,
    'hubble-tls-key-file': p.key,
    'hubble-tls-client-ca-files': p.ca,
  };
}

/** What a remote relay file says (read by relay-main's --remote-relays). */
export interface RemoteRelayRecord {
  address: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  /** The lab cluster it is (for people reading the file). */
  labCluster?: string;
}

/**
 * Makes LABCLUSTER's relay know the relays of the clusters it is connected
 * to (the remotes of its mesh files): for each, a file naming the remote
 * relay's address (its control plane's IP, :4245), the remote's CA, and a
 * client certificate the REMOTE's CA issues for this relay (kept while it
 * still chains to that CA). Files of clusters no longer connected are
 * removed. The relay reads the directory on every request. Called after
 * every change of the mesh's connections (syncLabClusterMeshConfig).
 */
export async function syncHubbleRemoteRelays(labCluster: string): Promise<string[]> {
  const dir = hubbleRemoteRelaysDir(labCluster);
  const self = readInstallState(labCluster);
  const wanted = new Map<string, LabCluster>();
  if (self && hubbleEnabled(self.settings) && hubbleTLSAvailable(labCluster)) {
    for (const r of (await listRemotes(labCluster)).remotes) {
      if (!r.labCluster) continue;
      const other = tryLoadCluster(r.labCluster);
      const st = readInstallState(r.labCluster);
      if (!other || !st || !hubbleEnabled(st.settings) || !hubbleTLSAvailable(r.labCluster))
        continue;
      wanted.set(r.name, other);
    }
  }
  for (const [name, other] of wanted) {
    const p = hubbleRemoteRelayPaths(labCluster, name);
    const ca = await labCA(other.name);
    let keep = false;
    try {
      verifyCertificate(readFileSync(p.cert, 'utf8'), ca.certPEM);
      keep = readFileSync(p.ca, 'utf8') === ca.certPEM && existsSync(p.key);
    } catch {
      keep = false;
    }
    if (!keep) {
      const kp = await issueClientCert(
        ca,
        `hubble-relay.${self!.clusterName}.hubble-relay.cilium.io`,
      );
      mkdirSync(p.dir, { recursive: true, mode: 0o700 });
      writeFileAtomicSync(p.ca, ca.certPEM);
      writeFileAtomicSync(p.key, kp.keyPEM, { mode: 0o600 });
      writeFileAtomicSync(p.cert, kp.certPEM);
    }
    const rec: RemoteRelayRecord = {
      address: `${controlPlaneNode(other).ip}:${HUBBLE_RELAY_PORT}`,
      caFile: p.ca,
      certFile: p.cert,
      keyFile: p.key,
      labCluster: other.name,
    };
    writeFileAtomicSync(p.record, JSON.stringify(rec, null, 2) + '\n');
  }
  let present: string[] = [];
  try {
    present = readdirSync(dir).filter((f) => f.endsWith('.json'));
  } catch {
    // no directory yet
  }
  for (const f of present) {
    const name = f.slice(0, -'.json'.length);
    if (wanted.has(name)) continue;
    const p = hubbleRemoteRelayPaths(labCluster, name);
    rmSync(p.record, { force: true });
    rmSync(p.dir, { recursive: true, force: true });
  }
  return [...wanted.keys()];
}

/** True unless the install said `--set hubble.enabled=false`. */
export function hubbleEnabled(settings: Record<string, string>): boolean {
  return settings['hubble-enabled'] !== 'false';
}

/**
 * The relay daemon of a lab cluster: it lists the Nodes from the API server
 * (the operator's credential) and reaches each node's observer on
 * <InternalIP>:4244 with mutual TLS, serving <control plane>:4245 (mutual
 * TLS, for other clusters' relays) and a Unix socket for the CLI. A cluster
 * without a CA (made before the lab had a PKI) reaches the node sockets.
 */
export function hubbleRelayDaemon(c: LabCluster, netns: string): DaemonSpec {
  const tls = hubbleTLSAvailable(c.name);
  const p = hubbleRelayTLSPaths(c.name);
  return {
    name: DAEMON_HUBBLE_RELAY,
    command: nodeCommand('src/observe/relay-main.ts', [
      '--kubeconfig',
      daemonKubeconfigPath(c.name, 'operator'),
      ...(tls
        ? [
            '--node-tls-port',
            String(HUBBLE_NODE_PORT),
            '--tls-ca',
            p.ca,
            '--tls-cert',
            p.cert,
            '--tls-key',
            p.key,
            '--listen-address',
            `${controlPlaneNode(c).ip}:${HUBBLE_RELAY_PORT}`,
          ]
        : ['--node-socket', hubbleNodeSocketPath(c.name, '{node}')]),
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

/**
 * `clustermesh enable` / `disable` on lab clusters. Enable runs the
 * cluster's clustermesh-apiserver as two supervised daemons in the control
 * plane's network namespace:
 *
 *   clustermesh-etcd        Debian's etcd, mutual TLS on every client URL:
 *                             https://127.0.0.1:2379        (the apiserver daemon itself)
 *                             https://<control plane>:2379  (this cluster's agents)
 *                             NodePort:     https://<control plane>:32379  (remote clusters)
 *                             LoadBalancer: https://172.30.255.<cluster index>:2379 (an address
 *                                           from the lab's pool, added to the control plane's eth0)
 *                           plain HTTP only for /health and /metrics on 127.0.0.1:2381 in that netns
 *   clustermesh-apiserver   src/clustermesh/apiserver/main.ts (access setup, syncer, kvstoremesh, status)
 */
import { labManifestOptions, reflectOf } from '../lab-reflection.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { TendrilError } from '../../util/errors.js';
import { resolveInstallTarget } from '../lab-target.js';
import { daemonKubeconfigPath, syncLabClusterMeshConfig } from '../lab-daemon-config.js';
import { readInstallState, type InstallState } from '../install-state.js';
import { withClusterLocks, type LockOwner } from '../install-lock.js';
import { addDaemon, nodeCommand, removeDaemon } from '../../lab/daemons.js';
import { apiServerNodeURL, listClusters, type LabCluster, type LabNode } from '../../lab/state.js';
import {
  ETCD_CLIENT_PORT,
  NODEPORT_PORT,
  listRemotes,
  meshEnabled,
  meshCAPaths,
  meshDir,
  meshPaths,
  readMeshConfig,
  remotePaths,
  writeRemote,
  type MeshConfig,
  type ServiceType,
} from '../../clustermesh/mesh-files.js';
import { disconnectDirection, meshEtcdCommand, prepareMesh, removeMeshFiles } from './setup.js';
import { fetchStatus, type MeshDaemonStatus } from '../../clustermesh/status-api.js';
import {
  certificateInfo,
  issueClientCert,
  type CertificateAuthority,
} from '../../clustermesh/certs.js';

const pexec = promisify(execFile);

/** Names of the mesh's daemons in a lab cluster. */
export const DAEMON_MESH_ETCD = 'clustermesh-etcd';
export const DAEMON_MESH_APISERVER = 'clustermesh-apiserver';

/** The lab's LoadBalancer pool: 172.30.255.<cluster index> (never a node address: nodes are 172.30.<1..250>.<10+>). */
export function loadBalancerIP(cluster: Pick<LabCluster, 'index'>): string {
  return `172.30.255.${cluster.index}`;
}

export interface EnableOptions {
  context?: string;
  serviceType?: ServiceType;
  /** Wait until the apiserver reports etcd healthy and its state exported (default true). */
  wait?: boolean;
  timeoutMs?: number;
  /** Progress lines for the user. */
  say?: (line: string) => void;
}

export interface EnableResult {
  labCluster: string;
  config: MeshConfig;
  caCreated: boolean;
  status: MeshDaemonStatus | undefined;
}

/**
 * The CIDR a lab cluster's node addresses are in: the /24 of its control
 * plane's underlay address (nodes are 172.30.<cluster index>.<10+>).
 */
export function nodeCIDROf(c: Pick<LabCluster, 'nodes'>): string {
  const parts = controlPlaneOf(c as LabCluster).ip.split('.');
  return `${parts.slice(0, 3).join('.')}.0/24`;
}

/** The control-plane node of a lab cluster. */
export function controlPlaneOf(c: LabCluster): LabNode {
  const cp = c.nodes.find((n) => n.role === 'control-plane');
  if (!cp)
    throw new TendrilError('LAB_STATE_CORRUPT', `lab cluster ${c.name} has no control-plane node`);
  return cp;
}

/** The install record of a lab cluster, or a clear refusal. @throws TendrilError CLUSTERMESH_NOT_INSTALLED */
export function requireInstall(c: LabCluster, context: string): InstallState {
  const st = readInstallState(c.name);
  if (!st) {
    throw new TendrilError(
      'CLUSTERMESH_NOT_INSTALLED',
      `Tendril is not installed on ${context} (lab cluster ${c.name})`,
      {
        hint: `run \`tendril install --context ${context} --cluster-name ${c.name} --cluster-id N\` first`,
      },
    );
  }
  return st;
}

/**
 * Enables the mesh on a lab cluster (idempotent: re-running re-issues the
 * server certificate and rewrites the daemons' specs, keeping etcd's data
 * and the remotes). @throws TendrilError (not installed, not a lab cluster,
 * bad service type, apiserver not ready in time).
 */
export async function enableClusterMesh(o: EnableOptions): Promise<EnableResult> {
  const say = o.say ?? (() => {});
  const target = resolveInstallTarget(o.context);
  return withClusterLocks(
    [target.cluster.name],
    'clustermesh enable',
    () => enableLocked(o, target),
    { onWait: sayWaiting(say) },
  );
}

/** Tells the user a command waits for another one's lock. */
export function sayWaiting(say: (line: string) => void) {
  return (labCluster: string, owner: LockOwner) =>
    say(
      `⏳ Waiting for another \`tendril ${owner.what ?? '?'}\` (pid ${owner.pid ?? '?'}) on ${labCluster} to finish...`,
    );
}

async function enableLocked(
  o: EnableOptions,
  target: ReturnType<typeof resolveInstallTarget>,
): Promise<EnableResult> {
  const say = o.say ?? (() => {});
  const c = target.cluster;
  const install = requireInstall(c, target.context);
  const serviceType = o.serviceType ?? readMeshConfig(c.name)?.serviceType ?? 'NodePort';
  if (serviceType !== 'NodePort' && serviceType !== 'LoadBalancer') {
    throw new TendrilError(
      'CLUSTERMESH_BAD_SERVICE_TYPE',
      `service type "${String(serviceType)}" is not supported`,
      {
        hint: 'use --service-type NodePort or --service-type LoadBalancer',
      },
    );
  }
  const cp = controlPlaneOf(c);
  const urls = [`https://127.0.0.1:${ETCD_CLIENT_PORT}`, `https://${cp.ip}:${ETCD_CLIENT_PORT}`];
  let access: string;
  let lbIP: string | undefined;
  if (serviceType === 'NodePort') {
    access = `https://${cp.ip}:${NODEPORT_PORT}`;
  } else {
    lbIP = loadBalancerIP(c);
    await pexec('ip', ['-n', cp.netns, 'addr', 'replace', `${lbIP}/32`, 'dev', 'eth0']).catch(
      (err: Error) => {
        throw new TendrilError(
          'CLUSTERMESH_LB_ADDRESS',
          `cannot add the LoadBalancer address ${lbIP} to ${cp.name}: ${err.message}`,
          {
            hint: 'LoadBalancer needs root (it adds an address in the control plane namespace); or use --service-type NodePort',
            cause: err,
          },
        );
      },
    );
    access = `https://${lbIP}:${ETCD_CLIENT_PORT}`;
  }
  urls.push(access);
  const previous = readMeshConfig(c.name);
  if (previous?.loadBalancerIP && previous.loadBalancerIP !== lbIP) {
    await pexec('ip', [
      '-n',
      cp.netns,
      'addr',
      'del',
      `${previous.loadBalancerIP}/32`,
      'dev',
      'eth0',
    ]).catch(() => {});
  }
  say(
    `🔑 ${previous ? 'Re-issuing' : 'Creating'} certificates for ${install.clusterName}'s clustermesh-apiserver...`,
  );
  const { config, caCreated, caRotated, ca } = await prepareMesh({
    labCluster: c.name,
    clusterName: install.clusterName,
    clusterId: install.clusterId,
    serviceType,
    listenIP: cp.ip,
    etcdClientURLs: urls,
    accessEndpoints: [access],
    localEndpoint: urls[0]!,
    apiServerURL: apiServerNodeURL(c),
    loadBalancerIP: lbIP,
    cacheTTL: install.settings['clustermesh-cache-ttl'],
    podCIDRs: [c.podCIDR],
    nodeCIDRs: [nodeCIDROf(c)],
    maxConnectedClusters: Number(install.settings['max-connected-clusters'] ?? 255),
  });
  // the agents and the operator follow the remotes named here (none until connect)
  await syncLabClusterMeshConfig(c.name);
  if (caRotated) {
    // an older version's mesh dir (the shared CA): the readers' certificates were signed by it
    const updated = await updatePeersEndpoints(c.name, config, ca);
    say(
      `🔑 ${install.clusterName} now has its own CA (the shared mesh CA's key was removed from its files)${updated.length > 0 ? `; re-issued the client certificates of ${updated.join(', ')}` : ''}`,
    );
  } else if (previous && previous.accessEndpoints.join(',') !== config.accessEndpoints.join(',')) {
    const updated = await updatePeersEndpoints(c.name, config);
    if (updated.length > 0)
      say(`🔁 Told ${updated.join(', ')} about the new access endpoint ${access}`);
  } else if (previous && previous.clusterId !== config.clusterId) {
    // after `install --cluster-id N --force`: the remotes' records would keep the old ID
    const updated = await updatePeersEndpoints(c.name, config);
    if (updated.length > 0)
      say(`🔁 Told ${updated.join(', ')} about the new cluster ID ${config.clusterId}`);
  }
  if (caCreated)
    say(
      `🔑 Created ${install.clusterName}'s own mesh CA (its key stays in ${meshCAPaths(c.name).dir}; other clusters get only certificates it signs)`,
    );
  say(
    `✨ Deploying clustermesh-apiserver (etcd with mutual TLS, ${serviceType} ${access.replace('https://', '')})...`,
  );
  // shown in kube-system as the manifests' clustermesh-apiserver Deployment (src/install/lab-reflection.ts)
  const manifests = labManifestOptions(c, install);
  addDaemon(c.name, {
    name: DAEMON_MESH_ETCD,
    command: meshEtcdCommand(config),
    netns: cp.netns,
    restart: 'always',
    reflect: reflectOf('mesh-etcd', manifests),
  });
  addDaemon(c.name, {
    name: DAEMON_MESH_APISERVER,
    command: nodeCommand('src/clustermesh/apiserver/main.ts', [
      '--mesh-dir',
      meshDir(c.name),
      // the API server with the lab CA and this daemon's own token (written at install)
      '--kubeconfig',
      daemonKubeconfigPath(c.name, 'clustermesh-apiserver'),
    ]),
    netns: cp.netns,
    restart: 'always',
    env: { TENDRIL_MESH_GEN: config.enabledAt },
    reflect: reflectOf('mesh-apiserver', manifests),
  });
  let status: MeshDaemonStatus | undefined;
  if (o.wait !== false) {
    say('⌛ Waiting for the clustermesh-apiserver to export the cluster state...');
    status = await waitApiServerReady(c.name, o.timeoutMs ?? 90_000);
    say(
      `✅ Cluster mesh enabled on ${target.context}: ${install.clusterName} (ID ${install.clusterId}) at ${access}`,
    );
  }
  return { labCluster: c.name, config, caCreated, status };
}

/** Polls the apiserver's status until etcd is healthy and every kind is exported. @throws TendrilError CLUSTERMESH_NOT_READY */
export async function waitApiServerReady(
  labCluster: string,
  timeoutMs: number,
): Promise<MeshDaemonStatus> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    try {
      const st = await fetchStatus(meshPaths(labCluster).statusSocket, 3000);
      if (st.etcd.ok && st.syncer && Object.values(st.syncer.synced).every(Boolean)) return st;
      last = !st.etcd.ok
        ? `etcd: ${st.etcd.error ?? 'not healthy'}`
        : `syncer: waiting for ${
            Object.entries(st.syncer?.synced ?? {})
              .filter(([, v]) => !v)
              .map(([k]) => k)
              .join(', ') || 'start'
          }`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) {
      throw new TendrilError(
        'CLUSTERMESH_NOT_READY',
        `the clustermesh-apiserver of ${labCluster} is not ready after ${Math.round(timeoutMs / 1000)} s (${last})`,
        {
          hint: `see \`tendril lab logs ${labCluster} ${DAEMON_MESH_APISERVER}\` and \`tendril lab logs ${labCluster} ${DAEMON_MESH_ETCD}\``,
        },
      );
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}

/**
 * Disables the mesh on a lab cluster: disconnects it from every cluster
 * (both directions), stops its daemons and removes its mesh files.
 * @returns the clusters it was disconnected from.
 */
export async function disableClusterMesh(o: {
  context?: string;
  say?: (l: string) => void;
}): Promise<{ labCluster: string; disconnected: string[] }> {
  const say = o.say ?? (() => {});
  const target = resolveInstallTarget(o.context);
  const c = target.cluster;
  // it disconnects from every meshed cluster: lock them all (in name order)
  const all = [
    c.name,
    ...listClusters()
      .filter((x) => meshEnabled(x.name))
      .map((x) => x.name),
  ];
  return withClusterLocks(all, 'clustermesh disable', () => disableLocked(c, target.context, say), {
    onWait: sayWaiting(say),
  });
}

async function disableLocked(
  c: LabCluster,
  context: string,
  say: (l: string) => void,
): Promise<{ labCluster: string; disconnected: string[] }> {
  const target = { context };
  const cfg = readMeshConfig(c.name);
  if (!cfg && !existsSync(meshPaths(c.name).dir)) {
    say(`Cluster mesh is not enabled on ${target.context}; nothing to do`);
    return { labCluster: c.name, disconnected: [] };
  }
  const disconnected: string[] = [];
  for (const other of listClusters()) {
    if (other.name === c.name || !meshEnabled(other.name)) continue;
    const theirs = (await listRemotes(other.name)).remotes.some(
      (r) => r.labCluster === c.name || r.name === cfg?.clusterName,
    );
    const ours = (await listRemotes(c.name)).remotes.some((r) => r.labCluster === other.name);
    if (theirs || ours) {
      await disconnectDirection(other.name, c.name);
      await disconnectDirection(c.name, other.name);
      disconnected.push(other.name);
      say(`🔌 Disconnected from ${other.name}`);
    }
  }
  say('🔥 Removing the clustermesh-apiserver...');
  await removeDaemon(c.name, DAEMON_MESH_APISERVER, { wait: true }).catch(() => {});
  await removeDaemon(c.name, DAEMON_MESH_ETCD, { wait: true }).catch(() => {});
  if (cfg?.loadBalancerIP) {
    const cp = controlPlaneOf(c);
    await pexec('ip', [
      '-n',
      cp.netns,
      'addr',
      'del',
      `${cfg.loadBalancerIP}/32`,
      'dev',
      'eth0',
    ]).catch(() => {});
  }
  await removeMeshFiles(c.name);
  say(`✅ Cluster mesh disabled on ${target.context}`);
  return { labCluster: c.name, disconnected };
}

/**
 * After the access endpoint or the cluster ID of a cluster changed (another
 * service type, or a forced reinstall with another ID), rewrites the remote
 * records of the clusters that read it (endpoints and ID), so their
 * kvstoremesh reconnects to the new address and expects the new ID. With
 * `newCA` (the cluster's CA was replaced) each reader also gets the new CA
 * certificate and a client certificate it signed, for the same etcd user.
 * Returns their lab names.
 */
export async function updatePeersEndpoints(
  labCluster: string,
  config: MeshConfig,
  newCA?: CertificateAuthority,
): Promise<string[]> {
  const updated: string[] = [];
  for (const other of listClusters()) {
    if (other.name === labCluster || !meshEnabled(other.name)) continue;
    for (const r of (await listRemotes(other.name)).remotes) {
      if (r.name !== config.clusterName) continue;
      const p = remotePaths(other.name, r.name);
      let tls = {
        caPEM: await readFile(p.caCert, 'utf8'),
        certPEM: await readFile(p.clientCert, 'utf8'),
        keyPEM: await readFile(p.clientKey, 'utf8'),
      };
      if (newCA) {
        const cn = certificateInfo(tls.certPEM).commonName;
        const kp = await issueClientCert(newCA, cn);
        tls = { caPEM: newCA.certPEM, certPEM: kp.certPEM, keyPEM: kp.keyPEM };
      }
      await writeRemote(
        other.name,
        {
          ...r,
          endpoints: config.accessEndpoints,
          clusterId: config.clusterId,
          ...(config.podCIDRs ? { podCIDRs: config.podCIDRs } : {}),
          ...(config.nodeCIDRs ? { nodeCIDRs: config.nodeCIDRs } : {}),
          connectedAt: new Date().toISOString(),
        },
        tls,
      );
      updated.push(other.name);
    }
  }
  return updated;
}

/**
 * The lab-independent steps of enable/connect/disconnect: certificates and
 * mesh files for a cluster, the etcd command line, and exchanging
 * credentials between two clusters. enable.ts and connect.ts add the lab
 * parts (addresses, daemons, install checks) on top.
 */
import { readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { etcdArgs } from '../../kvstore/etcd-server.js';
import {
  certificateInfo,
  issueClientCert,
  issueServerCert,
  loadCA,
  loadOrCreateMeshCA,
  meshCADir,
  remoteClientCN,
  writeSecretFile,
  type CertificateAuthority,
} from '../../clustermesh/certs.js';
import { LOCAL_AGENT_USER, ROOT_USER } from '../../clustermesh/etcd-access.js';
import {
  makeClusterConfig,
  validateClusterName,
  DEFAULT_MAX_CONNECTED_CLUSTERS,
} from '../../clustermesh/keys.js';
import {
  ETCD_HEALTH_PORT,
  ETCD_PEER_PORT,
  meshPaths,
  readMeshConfig,
  removeReader,
  removeRemote,
  writeMeshConfig,
  writeReader,
  writeRemote,
  type MeshConfig,
  type ServiceType,
} from '../../clustermesh/mesh-files.js';
import { fetchStatus } from '../../clustermesh/status-api.js';
import { TendrilError } from '../../util/errors.js';
import { syncLabClusterMeshConfig } from '../lab-daemon-config.js';

export interface PrepareMeshOptions {
  labCluster: string;
  clusterName: string;
  clusterId: number;
  maxConnectedClusters?: number;
  serviceType: ServiceType;
  listenIP: string;
  etcdClientURLs: string[];
  accessEndpoints: string[];
  localEndpoint: string;
  apiServerURL: string;
  loadBalancerIP?: string;
  kvstoremesh?: boolean;
  cacheTTL?: string;
  /** Where the mesh CA lives (default $TENDRIL_HOME/mesh). */
  caDir?: string;
}

/**
 * Writes a cluster's mesh files: its CA (a copy of the mesh CA, made on the
 * first enable; an existing cluster CA is kept), server certificate covering
 * every listen address, root and agent client certificates, and mesh.json.
 * Idempotent: re-running re-issues the server certificate (addresses may have changed).
 * @throws MeshValueError for a bad name/ID, CertificateError for an unusable CA.
 */
export async function prepareMesh(
  o: PrepareMeshOptions,
): Promise<{ config: MeshConfig; caCreated: boolean; ca: CertificateAuthority }> {
  validateClusterName(o.clusterName);
  makeClusterConfig(o.clusterId, {
    maxConnectedClusters: o.maxConnectedClusters ?? DEFAULT_MAX_CONNECTED_CLUSTERS,
  });
  const p = meshPaths(o.labCluster);
  let ca: CertificateAuthority;
  let caCreated = false;
  if (existsSync(p.caCert) && existsSync(p.caKey)) {
    ca = await loadCA(await readFile(p.caCert, 'utf8'), await readFile(p.caKey, 'utf8'));
  } else {
    const r = await loadOrCreateMeshCA(o.caDir ?? meshCADir());
    ca = r.ca;
    caCreated = r.created;
    await writeSecretFile(p.caKey, ca.keyPEM);
    await writeSecretFile(p.caCert, ca.certPEM, 0o644);
  }
  const hosts = o.etcdClientURLs.map((u) => new URL(u).hostname);
  const server = await issueServerCert(ca, { ips: [...new Set([o.listenIP, ...hosts])] });
  await writeSecretFile(p.serverKey, server.keyPEM);
  await writeSecretFile(p.serverCert, server.certPEM, 0o644);
  for (const [cn, certPath, keyPath] of [
    [ROOT_USER, p.rootCert, p.rootKey],
    [LOCAL_AGENT_USER, p.agentCert, p.agentKey],
  ] as const) {
    if (!existsSync(certPath)) {
      const kp = await issueClientCert(ca, cn);
      await writeSecretFile(keyPath, kp.keyPEM);
      await writeSecretFile(certPath, kp.certPEM, 0o644);
    }
  }
  const config: MeshConfig = {
    version: 1,
    labCluster: o.labCluster,
    clusterName: o.clusterName,
    clusterId: o.clusterId,
    maxConnectedClusters: o.maxConnectedClusters ?? DEFAULT_MAX_CONNECTED_CLUSTERS,
    serviceType: o.serviceType,
    listenIP: o.listenIP,
    etcdClientURLs: o.etcdClientURLs,
    localEndpoint: o.localEndpoint,
    apiServerURL: o.apiServerURL,
    accessEndpoints: o.accessEndpoints,
    kvstoremesh: o.kvstoremesh ?? true,
    caFingerprint: ca.fingerprint,
    enabledAt: new Date().toISOString(),
  };
  if (o.loadBalancerIP) config.loadBalancerIP = o.loadBalancerIP;
  if (o.cacheTTL) config.cacheTTL = o.cacheTTL;
  await writeMeshConfig(config);
  return { config, caCreated, ca };
}

/** etcd's options for a cluster's mesh etcd (mutual TLS on every client URL; plain health on 127.0.0.1 only). */
export function meshEtcdOptions(config: MeshConfig) {
  const p = meshPaths(config.labCluster);
  return {
    name: 'clustermesh',
    dataDir: p.etcdData,
    clientUrls: config.etcdClientURLs,
    peerPort: ETCD_PEER_PORT,
    tls: { caFile: p.caCert, certFile: p.serverCert, keyFile: p.serverKey, clientCertAuth: true },
    extraArgs: [
      `--listen-metrics-urls=http://127.0.0.1:${ETCD_HEALTH_PORT}`,
      '--auto-compaction-mode=revision',
      '--auto-compaction-retention=10000',
    ],
  };
}

/** The argv that runs a cluster's mesh etcd (without netns: the daemon spec carries it). */
export function meshEtcdCommand(config: MeshConfig): string[] {
  return etcdArgs(meshEtcdOptions(config));
}

/** A cluster's CA (from its mesh dir). @throws TendrilError CLUSTERMESH_NOT_ENABLED */
export async function clusterCA(labCluster: string): Promise<CertificateAuthority> {
  return caOf(meshSide(labCluster));
}

async function caOf(side: MeshSide): Promise<CertificateAuthority> {
  const labCluster = side.cluster.name;
  const p = side.meshFiles;
  if (!existsSync(p.caCert) || !existsSync(p.caKey)) {
    throw new TendrilError(
      'CLUSTERMESH_NOT_ENABLED',
      `cluster mesh is not enabled for ${labCluster} (no CA in ${p.dir})`,
      {
        hint: `run \`tendril clustermesh enable --context lab-${labCluster}\``,
      },
    );
  }
  return loadCA(await readFile(p.caCert, 'utf8'), await readFile(p.caKey, 'utf8'));
}

/** One side of a connection, resolved once: its lab cluster, mesh settings and mesh files. */
export interface MeshSide {
  cluster: { name: string };
  mesh: MeshConfig | undefined;
  meshFiles: ReturnType<typeof meshPaths>;
}

/** Resolves a lab cluster's mesh side (for callers that hold only its name). */
export function meshSide(labCluster: string): MeshSide {
  return {
    cluster: { name: labCluster },
    mesh: readMeshConfig(labCluster),
    meshFiles: meshPaths(labCluster),
  };
}

/**
 * Lets cluster `from` read cluster `to` (by lab cluster names; resolves each
 * side once, then connectResolved).
 * @throws TendrilError CLUSTERMESH_NOT_ENABLED when either side is not enabled.
 */
export async function connectDirection(fromLab: string, toLab: string): Promise<void> {
  await connectResolved(meshSide(fromLab), meshSide(toLab));
}

/**
 * Lets cluster `from` read cluster `to`: issues a client certificate
 * (CN remote-<from's name>) signed by `to`'s CA, records `to` (endpoints,
 * ID, CA) in from's remotes/, and admits `from` in to's readers/.
 * @throws TendrilError CLUSTERMESH_NOT_ENABLED when either side is not enabled.
 */
export async function connectResolved(fromSide: MeshSide, toSide: MeshSide): Promise<void> {
  const { mesh: from } = fromSide;
  const { mesh: to } = toSide;
  const fromLab = fromSide.cluster.name;
  const toLab = toSide.cluster.name;
  if (!from || !to) {
    const missing = !from ? fromLab : toLab;
    throw new TendrilError(
      'CLUSTERMESH_NOT_ENABLED',
      `cluster mesh is not enabled for ${missing}`,
      { hint: `run \`tendril clustermesh enable --context lab-${missing}\`` },
    );
  }
  const toCA = await caOf(toSide);
  const cn = remoteClientCN(from.clusterName);
  const kp = await issueClientCert(toCA, cn);
  const now = new Date().toISOString();
  // Admit first, so the reader's user exists by the time the remote dials:
  // the reader record is taken up by toLab's apiserver on its next scan (about
  // a second), and a remote dialling before that is refused ("permission
  // denied") until its next retry.
  await writeReader(toLab, { name: from.clusterName, commonName: cn, addedAt: now });
  await waitForReaderAdmitted(toLab, from.clusterName);
  await writeRemote(
    fromLab,
    {
      name: to.clusterName,
      clusterId: to.clusterId,
      endpoints: to.accessEndpoints,
      labCluster: toLab,
      connectedAt: now,
    },
    { caPEM: toCA.certPEM, certPEM: kp.certPEM, keyPEM: kp.keyPEM },
  );
  await syncLabClusterMeshConfig(fromLab);
}

/**
 * Waits until the clustermesh-apiserver of `labCluster` reports that it has
 * applied etcd access for reader `name` (its status lists the reader).
 * Returns false without waiting when the apiserver does not answer (it is not
 * running: it applies the readers when it starts), and after `timeoutMs` when
 * it answers but has not applied them (its status then says why).
 */
export async function waitForReaderAdmitted(
  labCluster: string,
  name: string,
  timeoutMs = 10_000,
): Promise<boolean> {
  const socket = meshPaths(labCluster).statusSocket;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let readers: string[];
    try {
      readers = (await fetchStatus(socket, 2000)).readers;
    } catch {
      return false;
    }
    if (readers.includes(name)) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Stops `from` reading `to`: removes the remote record and revokes the reader. */
export async function disconnectDirection(fromLab: string, toLab: string): Promise<void> {
  const from = readMeshConfig(fromLab);
  const to = readMeshConfig(toLab);
  if (from && to) {
    await removeRemote(fromLab, to.clusterName);
    await removeReader(toLab, from.clusterName);
  }
  await syncLabClusterMeshConfig(fromLab);
}

/** Removes every mesh file of a cluster (after its daemons are stopped). */
export async function removeMeshFiles(labCluster: string): Promise<void> {
  await rm(meshPaths(labCluster).dir, { recursive: true, force: true });
  await syncLabClusterMeshConfig(labCluster);
}

/** The SHA-256 fingerprint of a cluster's CA certificate. */
export async function caFingerprintOf(labCluster: string): Promise<string> {
  return certificateInfo(await readFile(meshPaths(labCluster).caCert, 'utf8')).fingerprint;
}

/**
 * The lab-independent steps of enable/connect/disconnect: certificates and
 * mesh files for a cluster, the etcd command line, and exchanging
 * credentials between two clusters. enable.ts and connect.ts add the lab
 * parts (addresses, daemons, install checks) on top.
 */
import { readFile, rm } from 'node:fs/promises';
import { existsSync, readFileSync, rmdirSync, rmSync, statfsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, join } from 'node:path';
import { etcdArgs } from '../../kvstore/etcd-server.js';
import { clusterShmDir, SHM_ROOT } from '../../lab/layout.js';
import {
  certificateInfo,
  issueClientCert,
  issueServerCert,
  loadCA,
  loadOrCreateMeshCA,
  remoteClientCN,
  verifyCertificate,
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
  meshCAPaths,
  meshPaths,
  readMeshConfig,
  readReader,
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
import { withClusterLocks } from '../install-lock.js';

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
  /** The cluster's pod CIDRs (declared to connected clusters: their kvstoremesh refuses records outside). */
  podCIDRs?: string[];
  /** The CIDRs of its nodes' addresses (declared likewise). */
  nodeCIDRs?: string[];
}

/**
 * Loads the cluster's own mesh CA from its pki/ (meshCAPaths), or makes one.
 * Never reads another cluster's CA, never writes the key anywhere else.
 * @throws CertificateError for an unreadable CA or a key that does not match.
 */
export async function loadOrCreateClusterCA(
  labCluster: string,
  clusterName: string,
): Promise<{ ca: CertificateAuthority; created: boolean }> {
  const cp = meshCAPaths(labCluster);
  return loadOrCreateMeshCA(
    cp.dir,
    { cert: basename(cp.caCert), key: basename(cp.caKey) },
    { commonName: `Tendril Cluster Mesh CA (${clusterName})` },
  );
}

function signedBy(certPath: string, ca: CertificateAuthority): boolean {
  try {
    verifyCertificate(readFileSync(certPath, 'utf8'), ca.certPEM);
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes a cluster's mesh files: its own CA's certificate (the CA and its key
 * stay in the cluster's pki/, made on the first enable), server certificate
 * covering every listen address, root and agent client certificates, and
 * mesh.json. Idempotent: re-running re-issues the server certificate
 * (addresses may have changed). A mesh dir of an older version (a copy of the
 * shared mesh CA's key in it) gets its own CA: the copied key is deleted and
 * every certificate re-issued (`caRotated`; enable then re-issues the
 * readers' client certificates).
 * @throws MeshValueError for a bad name/ID, CertificateError for an unusable CA.
 */
export async function prepareMesh(o: PrepareMeshOptions): Promise<PreparedMesh> {
  return withClusterLocks([o.labCluster], 'clustermesh enable', () => prepareMeshLocked(o));
}

/** What prepareMesh made. */
export interface PreparedMesh {
  config: MeshConfig;
  caCreated: boolean;
  caRotated: boolean;
  ca: CertificateAuthority;
}

async function prepareMeshLocked(o: PrepareMeshOptions): Promise<PreparedMesh> {
  validateClusterName(o.clusterName);
  makeClusterConfig(o.clusterId, {
    maxConnectedClusters: o.maxConnectedClusters ?? DEFAULT_MAX_CONNECTED_CLUSTERS,
  });
  const p = meshPaths(o.labCluster);
  const { ca, created: caCreated } = await loadOrCreateClusterCA(o.labCluster, o.clusterName);
  let caRotated = false;
  if (existsSync(p.caCert)) {
    caRotated = certificateInfo(await readFile(p.caCert, 'utf8')).fingerprint !== ca.fingerprint;
  }
  await rm(p.legacyCAKey, { force: true });
  await writeSecretFile(p.caCert, ca.certPEM, 0o644);
  const hosts = o.etcdClientURLs.map((u) => new URL(u).hostname);
  const server = await issueServerCert(ca, { ips: [...new Set([o.listenIP, ...hosts])] });
  await writeSecretFile(p.serverKey, server.keyPEM);
  await writeSecretFile(p.serverCert, server.certPEM, 0o644);
  for (const [cn, certPath, keyPath] of [
    [ROOT_USER, p.rootCert, p.rootKey],
    [LOCAL_AGENT_USER, p.agentCert, p.agentKey],
  ] as const) {
    if (!existsSync(certPath) || !existsSync(keyPath) || !signedBy(certPath, ca)) {
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
  if (o.podCIDRs) config.podCIDRs = o.podCIDRs;
  if (o.nodeCIDRs) config.nodeCIDRs = o.nodeCIDRs;
  await writeMeshConfig(config);
  return { config, caCreated, caRotated, ca };
}

/** Linux's TMPFS_MAGIC (statfs f_type of a tmpfs). */
const TMPFS_MAGIC = 0x01021994;

/**
 * The data directory of a lab cluster's mesh etcd: in memory,
 * `<clusterShmDir>/clustermesh-etcd` (/dev/shm), when /dev/shm is a tmpfs
 * (else `<mesh dir>/etcd`). The mesh etcd is a cache that the
 * clustermesh-apiserver's syncer and kvstoremesh rebuild from the Kubernetes
 * API and the remote clusters — Cilium runs it on an in-memory emptyDir — so
 * its commits need no fsync to a disk; on a disk an fsync costs 3-30 ms, twice
 * on the path of every cross-cluster change (docs/decisions.md). The lab API
 * server's own storage stays on disk. Lab delete and clustermesh disable remove it.
 */
export function meshEtcdDataDir(labCluster: string): string {
  try {
    if (statfsSync(SHM_ROOT).type === TMPFS_MAGIC)
      return join(clusterShmDir(labCluster), 'clustermesh-etcd');
  } catch {
    // no /dev/shm: on disk
  }
  return meshPaths(labCluster).etcdData;
}

/** Removes a lab cluster's in-memory mesh etcd data (nothing when it is on disk, in the mesh dir). */
export function removeMeshEtcdData(labCluster: string): void {
  rmSync(join(clusterShmDir(labCluster), 'clustermesh-etcd'), { recursive: true, force: true });
  try {
    rmdirSync(clusterShmDir(labCluster));
  } catch {
    // other data in it, or gone
  }
}

/** etcd's options for a cluster's mesh etcd (mutual TLS on every client URL; plain health on 127.0.0.1 only). */
export function meshEtcdOptions(config: MeshConfig) {
  const p = meshPaths(config.labCluster);
  return {
    name: 'clustermesh',
    // in memory (a cache rebuilt from the API): meshEtcdDataDir says why
    dataDir: meshEtcdDataDir(config.labCluster),
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
  const cp = meshCAPaths(labCluster);
  if (!side.mesh || !existsSync(cp.caCert) || !existsSync(cp.caKey)) {
    throw new TendrilError(
      'CLUSTERMESH_NOT_ENABLED',
      `cluster mesh is not enabled for ${labCluster} (no mesh CA in ${cp.dir})`,
      {
        hint: `run \`tendril clustermesh enable --context lab-${labCluster}\``,
      },
    );
  }
  return loadCA(await readFile(cp.caCert, 'utf8'), await readFile(cp.caKey, 'utf8'));
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
 * Lets cluster `from` read cluster `to`: `to`'s CA issues `from` a client
 * certificate whose CN is a new etcd user (`remote-<from's name>.<grant id>`;
 * a reconnect of a still connected pair keeps the grant), `to`'s readers/
 * admits that user (its etcd grants it read-only access to the mesh
 * prefixes), and `from`'s remotes/ gets `to`'s endpoints, ID, CA certificate
 * (to trust `to`'s server) and the client certificate. No CA key leaves `to`.
 * @throws TendrilError CLUSTERMESH_NOT_ENABLED when either side is not enabled.
 */
export async function connectResolved(fromSide: MeshSide, toSide: MeshSide): Promise<void> {
  const fromLab = fromSide.cluster.name;
  const toLab = toSide.cluster.name;
  // under both clusters' locks, their mesh settings are read again (another command may have changed them)
  await withClusterLocks([fromLab, toLab], 'clustermesh connect', () =>
    connectLocked(meshSide(fromLab), meshSide(toLab)),
  );
}

async function connectLocked(fromSide: MeshSide, toSide: MeshSide): Promise<void> {
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
  const existing = await readReader(toLab, from.clusterName);
  const cn =
    existing && existing.commonName.startsWith(`${remoteClientCN(from.clusterName)}.`)
      ? existing.commonName
      : grantCN(from.clusterName);
  const kp = await issueClientCert(toCA, cn);
  const now = new Date().toISOString();
  // Admit first, so the reader's user exists by the time the remote dials:
  // the reader record is taken up by toLab's apiserver on its next scan (about
  // a second), and a remote dialling before that is refused ("permission
  // denied") until its next retry.
  await writeReader(toLab, { name: from.clusterName, commonName: cn, addedAt: now });
  await waitForReaderApplied(toLab, cn, true);
  await writeRemote(
    fromLab,
    {
      name: to.clusterName,
      clusterId: to.clusterId,
      endpoints: to.accessEndpoints,
      labCluster: toLab,
      connectedAt: now,
      // what `to` declared: its records outside these are refused by from's kvstoremesh
      ...(to.podCIDRs ? { podCIDRs: to.podCIDRs } : {}),
      ...(to.nodeCIDRs ? { nodeCIDRs: to.nodeCIDRs } : {}),
    },
    { caPEM: toCA.certPEM, certPEM: kp.certPEM, keyPEM: kp.keyPEM },
  );
  await syncLabClusterMeshConfig(fromLab);
}

/** A new etcd user name for a read grant to `cluster`: remote-<cluster>.<8 hex> (cluster names have no dots). */
export function grantCN(cluster: string): string {
  return `${remoteClientCN(cluster)}.${randomBytes(4).toString('hex')}`;
}

/**
 * Waits until the clustermesh-apiserver of `labCluster` reports that it has
 * applied (present=true) or removed (present=false) the etcd user `user`.
 * Returns false without waiting when the apiserver does not answer (it is not
 * running: it applies the readers when it starts), and after `timeoutMs` when
 * it answers but has not applied them (its status then says why).
 */
export async function waitForReaderApplied(
  labCluster: string,
  user: string,
  present: boolean,
  timeoutMs = 10_000,
): Promise<boolean> {
  const socket = meshPaths(labCluster).statusSocket;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let users: string[];
    try {
      users = (await fetchStatus(socket, 2000)).readerUsers ?? [];
    } catch {
      return false;
    }
    if (users.includes(user) === present) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Stops `from` reading `to`: removes the remote record (and its client key)
 * and revokes the grant: `to`'s apiserver deletes the etcd user, after which
 * the certificate authenticates as nobody. Waits for that when `to`'s
 * apiserver runs (returns whether the revocation was seen applied; a stopped
 * apiserver applies it when it starts, before serving anything else).
 */
export async function disconnectDirection(
  fromLab: string,
  toLab: string,
): Promise<{ revoked: boolean }> {
  return withClusterLocks([fromLab, toLab], 'clustermesh disconnect', () =>
    disconnectLocked(fromLab, toLab),
  );
}

async function disconnectLocked(fromLab: string, toLab: string): Promise<{ revoked: boolean }> {
  const from = readMeshConfig(fromLab);
  const to = readMeshConfig(toLab);
  let revoked = false;
  if (from && to) {
    await removeRemote(fromLab, to.clusterName);
    const reader = await readReader(toLab, from.clusterName);
    await removeReader(toLab, from.clusterName);
    if (reader) revoked = await waitForReaderApplied(toLab, reader.commonName, false);
  }
  await syncLabClusterMeshConfig(fromLab);
  return { revoked };
}

/**
 * Removes every mesh file of a cluster (after its daemons are stopped) and its
 * mesh CA: a later enable makes a new CA, so no certificate issued before
 * (to remotes that were connected) is trusted again.
 */
export async function removeMeshFiles(labCluster: string): Promise<void> {
  await rm(meshPaths(labCluster).dir, { recursive: true, force: true });
  removeMeshEtcdData(labCluster);
  const cp = meshCAPaths(labCluster);
  await rm(cp.caKey, { force: true });
  await rm(cp.caCert, { force: true });
  await syncLabClusterMeshConfig(labCluster);
}

/** The SHA-256 fingerprint of a cluster's CA certificate. */
export async function caFingerprintOf(labCluster: string): Promise<string> {
  return certificateInfo(await readFile(meshPaths(labCluster).caCert, 'utf8')).fingerprint;
}

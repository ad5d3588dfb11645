/**
 * A cluster's mesh files, in its lab state directory. `clustermesh enable`
 * writes them, `connect` adds remotes and readers, the clustermesh-apiserver
 * daemon reads them (and re-reads remotes/ and readers/ when they change).
 * STABLE layout:
 *
 *   $TENDRIL_HOME/clusters/<lab cluster>/clustermesh/
 *     mesh.json                 MeshConfig (this cluster's mesh settings)
 *     ca.crt                    this cluster's own CA certificate (the only CA its etcd trusts); its key is
 *                               NOT here: it stays in clusters/<lab>/pki/clustermesh-ca.key (meshCAPaths),
 *                               where the CLI issues this cluster's certificates; the daemon never sees it
 *     server.crt server.key     the etcd server certificate
 *     root.crt root.key         client "root": the apiserver's syncer and kvstoremesh
 *     agent.crt agent.key       client "local-agent": agents and operator (read cilium/)
 *     etcd/                     etcd data
 *     remotes/<name>/           a remote cluster this one reads: remote.json, ca.crt (ITS CA: to trust its
 *                               server), client.crt client.key (CN remote-<this cluster>.<grant>, signed by its CA)
 *     readers/<name>.json       a remote cluster allowed to read this etcd (user = the record's commonName)
 *     status.sock               the apiserver's status endpoint (HTTP over a Unix socket)
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { clusterDir } from '../util/paths.js';
import { TendrilError } from '../util/errors.js';
import { writeSecretFile } from './certs.js';

/** How the access endpoint is exposed. */
export type ServiceType = 'NodePort' | 'LoadBalancer';

/** Port etcd's mesh listener uses on the control plane's address (as Cilium's clustermesh-apiserver: 2379). */
export const ETCD_CLIENT_PORT = 2379;
/** NodePort-style port on the control plane node's underlay address. */
export const NODEPORT_PORT = 32379;
/** Plain-HTTP health/metrics listener of etcd, on 127.0.0.1 inside the control plane's netns only. */
export const ETCD_HEALTH_PORT = 2381;
/** Peer port of the single-member etcd (127.0.0.1 inside the netns). */
export const ETCD_PEER_PORT = 2390;

/** This cluster's mesh settings (mesh.json). */
export interface MeshConfig {
  version: 1;
  labCluster: string;
  clusterName: string;
  clusterId: number;
  maxConnectedClusters: number;
  serviceType: ServiceType;
  /** The control-plane address etcd listens on (agents connect to https://<listenIP>:2379). */
  listenIP: string;
  /** Every client URL etcd listens on (all mutual TLS). */
  etcdClientURLs: string[];
  /** The URL the apiserver daemon uses for its own etcd (https://127.0.0.1:2379 inside the control plane's netns). */
  localEndpoint: string;
  /** Where the syncer reads the cluster's API server. */
  apiServerURL: string;
  /** What remote clusters dial: https://<node ip>:32379 (NodePort) or https://<pool ip>:2379 (LoadBalancer). */
  accessEndpoints: string[];
  /** The extra address added to the control plane node for LoadBalancer (undefined for NodePort). */
  loadBalancerIP?: string;
  /** Mirror remote clusters into this etcd (on by default). */
  kvstoremesh: boolean;
  /** Drop a disconnected remote's cache after this (e.g. "5m"); undefined: keep. */
  cacheTTL?: string;
  /** SHA-256 fingerprint of ca.crt. */
  caFingerprint: string;
  /** The cluster's pod CIDRs, declared to the clusters it is connected to. */
  podCIDRs?: string[];
  /** The CIDRs its nodes' addresses are in, declared likewise. */
  nodeCIDRs?: string[];
  enabledAt: string;
}

/** A remote cluster this cluster reads (remotes/<name>/remote.json). */
export interface RemoteRecord {
  name: string;
  clusterId: number;
  endpoints: string[];
  /** The lab cluster it is (for the CLI). */
  labCluster?: string;
  connectedAt: string;
  /** The pod CIDRs it declared when connected (its records must stay inside them). */
  podCIDRs?: string[];
  /** The node (underlay) CIDRs it declared when connected. */
  nodeCIDRs?: string[];
}

/** A remote cluster allowed to read this cluster's etcd (readers/<name>.json). */
export interface ReaderRecord {
  name: string;
  /**
   * etcd user = client certificate CN: `remote-<name>.<grant id>`, a new grant
   * id per connect after a disconnect, so a certificate of an earlier grant
   * stays worthless when the cluster is connected again.
   */
  commonName: string;
  addedAt: string;
}

/** The mesh directory of a lab cluster. */
export function meshDir(labCluster: string): string {
  return join(clusterDir(labCluster), 'clustermesh');
}

/**
 * Which mesh directory: a lab cluster's name (the install wing), or the
 * directory itself (the clustermesh-apiserver daemon, started with --mesh-dir).
 */
export type MeshRef = string | { meshDir: string };

/** The directory a MeshRef names. */
export function meshDirOf(ref: MeshRef): string {
  return typeof ref === 'string' ? meshDir(ref) : ref.meshDir;
}

/** Paths of a cluster's mesh files. */
export function meshPaths(labCluster: MeshRef) {
  const d = meshDirOf(labCluster);
  return {
    dir: d,
    config: join(d, 'mesh.json'),
    caCert: join(d, 'ca.crt'),
    /** Where older versions kept a copy of the shared mesh CA's key; enable removes it. */
    legacyCAKey: join(d, 'ca.key'),
    serverCert: join(d, 'server.crt'),
    serverKey: join(d, 'server.key'),
    rootCert: join(d, 'root.crt'),
    rootKey: join(d, 'root.key'),
    agentCert: join(d, 'agent.crt'),
    agentKey: join(d, 'agent.key'),
    etcdData: join(d, 'etcd'),
    remotes: join(d, 'remotes'),
    readers: join(d, 'readers'),
    statusSocket: join(d, 'status.sock'),
  };
}

/**
 * Where a lab cluster's own mesh CA lives: its state dir's pki/ (0700), key
 * 0600. Only the CLI (enable, connect) reads the key, to issue this cluster's
 * server and client certificates; it is never copied into the mesh dir or to
 * another cluster.
 */
export function meshCAPaths(labCluster: string) {
  const d = join(clusterDir(labCluster), 'pki');
  return { dir: d, caCert: join(d, 'clustermesh-ca.crt'), caKey: join(d, 'clustermesh-ca.key') };
}

/** Paths of one remote's files. */
export function remotePaths(labCluster: MeshRef, remote: string) {
  const d = join(meshPaths(labCluster).remotes, remote);
  return {
    dir: d,
    record: join(d, 'remote.json'),
    caCert: join(d, 'ca.crt'),
    clientCert: join(d, 'client.crt'),
    clientKey: join(d, 'client.key'),
  };
}

/** Reads mesh.json; undefined when the mesh is not enabled. @throws TendrilError CLUSTERMESH_CORRUPT_STATE */
export function readMeshConfig(labCluster: MeshRef): MeshConfig | undefined {
  const p = meshPaths(labCluster).config;
  let text: string;
  try {
    text = readFileSync(p, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const c = JSON.parse(text) as MeshConfig;
    if (c.version !== 1 || typeof c.clusterName !== 'string') throw new Error('missing fields');
    return c;
  } catch (err) {
    throw new TendrilError('CLUSTERMESH_CORRUPT_STATE', `read ${p}: ${(err as Error).message}`, {
      hint: 'run `tendril clustermesh disable` and `enable` for this cluster',
      cause: err,
    });
  }
}

/** Writes mesh.json atomically. */
export async function writeMeshConfig(c: MeshConfig): Promise<void> {
  await writeSecretFile(meshPaths(c.labCluster).config, JSON.stringify(c, null, 2) + '\n', 0o644);
}

/** True if the mesh is enabled for the cluster (mesh.json exists). */
export function meshEnabled(labCluster: string): boolean {
  return existsSync(meshPaths(labCluster).config);
}

/** Every remote this cluster reads, by name (unreadable records are skipped and reported in `errors`). */
export async function listRemotes(
  labCluster: MeshRef,
): Promise<{ remotes: RemoteRecord[]; errors: string[] }> {
  const dir = meshPaths(labCluster).remotes;
  const remotes: RemoteRecord[] = [];
  const errors: string[] = [];
  let names: string[] = [];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  for (const name of names.sort()) {
    const p = remotePaths(labCluster, name).record;
    try {
      remotes.push(JSON.parse(await readFile(p, 'utf8')) as RemoteRecord);
    } catch (err) {
      errors.push(`${p}: ${(err as Error).message}`);
    }
  }
  return { remotes, errors };
}

/** Records a remote with its CA and our client certificate for it. */
export async function writeRemote(
  labCluster: string,
  rec: RemoteRecord,
  tls: { caPEM: string; certPEM: string; keyPEM: string },
): Promise<void> {
  const p = remotePaths(labCluster, rec.name);
  await mkdir(p.dir, { recursive: true, mode: 0o700 });
  await writeSecretFile(p.caCert, tls.caPEM, 0o644);
  await writeSecretFile(p.clientCert, tls.certPEM, 0o644);
  await writeSecretFile(p.clientKey, tls.keyPEM);
  // The record last: the daemon only picks up remotes whose record exists.
  await writeSecretFile(p.record, JSON.stringify(rec, null, 2) + '\n', 0o644);
}

/** Removes a remote (no error if absent). */
export async function removeRemote(labCluster: string, name: string): Promise<void> {
  await rm(remotePaths(labCluster, name).dir, { recursive: true, force: true });
}

/** Remote clusters allowed to read this etcd. */
export async function listReaders(labCluster: MeshRef): Promise<ReaderRecord[]> {
  const dir = meshPaths(labCluster).readers;
  let names: string[] = [];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const out: ReaderRecord[] = [];
  for (const n of names.filter((x) => x.endsWith('.json')).sort()) {
    try {
      out.push(JSON.parse(await readFile(join(dir, n), 'utf8')) as ReaderRecord);
    } catch {
      // half-written; the next scan reads it
    }
  }
  return out;
}

/** Allows a remote cluster to read this etcd. */
export async function writeReader(labCluster: string, rec: ReaderRecord): Promise<void> {
  await writeSecretFile(
    join(meshPaths(labCluster).readers, `${rec.name}.json`),
    JSON.stringify(rec, null, 2) + '\n',
    0o644,
  );
}

/** One reader's record, or undefined. */
export async function readReader(
  labCluster: MeshRef,
  name: string,
): Promise<ReaderRecord | undefined> {
  try {
    return JSON.parse(
      await readFile(join(meshPaths(labCluster).readers, `${name}.json`), 'utf8'),
    ) as ReaderRecord;
  } catch {
    return undefined;
  }
}

/** Revokes a remote cluster's read access (no error if absent). */
export async function removeReader(labCluster: string, name: string): Promise<void> {
  await rm(join(meshPaths(labCluster).readers, `${name}.json`), { force: true });
}

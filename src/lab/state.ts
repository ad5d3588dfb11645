/**
 * Lab cluster state on disk: $TENDRIL_HOME/clusters/<name>/cluster.json, plus
 * the paths of everything else a cluster keeps there. STABLE API: the agent
 * installer and the clustermesh code import it.
 *
 *   clusters/<name>/cluster.json                  this file's LabCluster
 *   clusters/<name>/daemons/<daemon>.json         daemon specs (see daemons.ts)
 *   clusters/<name>/pids/<daemon>.pid             daemon pids (written by the supervisor)
 *   clusters/<name>/logs/<daemon>.log             daemon output
 *   clusters/<name>/nodes/<node>/cni/net.d/       CNI network config (*.conflist / *.conf)
 *   clusters/<name>/nodes/<node>/cni/bin/         CNI plugin executables (CNI_PATH)
 *   clusters/<name>/pods/<ns>_<pod>_<uid>/<container>.log   container output
 */
import { chmodSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TendrilError } from '../util/errors.js';
import { clusterDir, tendrilHome } from '../util/paths.js';
import { nthAddress, parseCIDR } from '../util/ipv4.js';
import { writeFileAtomicSync } from '../util/atomic-write.js';

/** API storage backend of a lab cluster. */
export type ApiStore = 'memory' | 'etcd';

/** One node of a lab cluster. */
export interface LabNode {
  /** Kubernetes node name, as kind names them: `<cluster>-control-plane`, `<cluster>-worker`, `<cluster>-worker2`... */
  name: string;
  /** 0 for the control plane, 1.. for workers. */
  index: number;
  role: 'control-plane' | 'worker';
  /** Network namespace name (under /run/netns). */
  netns: string;
  /** Underlay address of the node's eth0 (no prefix length; the underlay is a /16). */
  ip: string;
  /** The node's pod CIDR (a /24 of the cluster's pod CIDR). */
  podCIDR: string;
}

/** A lab cluster, as recorded in cluster.json. */
export interface LabCluster {
  name: string;
  /** Cluster index 1..250 (underlay 172.30.<index>.0/24, default pod CIDR 10.<243+index>.0.0/16). */
  index: number;
  /** The lab prefix (TENDRIL_LAB_PREFIX) the cluster was created with. */
  prefix: string;
  podCIDR: string;
  serviceCIDR: string;
  /** API server port on 127.0.0.1 in the root network namespace. */
  apiPort: number;
  /** API server Unix socket (reachable from every network namespace). */
  apiSocket: string;
  /**
   * The API server's https Unix socket (authenticated; see src/lab/pki.ts).
   * Set for clusters created with https, which the API server then also
   * serves on TCP itself: to the nodes at https://<control plane>:6443 (a
   * listener in the control plane's namespace) and to the CLI at
   * https://127.0.0.1:<apiSecurePort>; daemons use their kubeconfig.
   */
  apiSecureSocket?: string;
  /**
   * Port on 127.0.0.1 in the root namespace where the API server serves
   * https: the CLI and kubectl reach https://127.0.0.1:<port> with
   * the lab CA and the admin credential, as a real cluster is reached.
   */
  apiSecurePort?: number;
  apiStore: ApiStore;
  /** etcd client URLs when apiStore is etcd. */
  etcdEndpoints?: string[];
  nodes: LabNode[];
  createdAt: string;
}

/** Raised when a lab cluster's state does not exist. */
export class ClusterNotFoundError extends TendrilError {
  constructor(name: string) {
    super('LAB_CLUSTER_NOT_FOUND', `lab cluster "${name}" does not exist`, {
      hint: 'see `tendril lab list`, or create it with `tendril lab create ' + name + '`',
    });
  }
}

/** Checks a lab cluster name (lowercase DNS label, at most 32 characters); throws LAB_INVALID_NAME. */
export function validateClusterName(name: string): void {
  if (!/^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/.test(name)) {
    throw new TendrilError('LAB_INVALID_NAME', `invalid lab cluster name "${name}"`, {
      hint: 'use 1-32 lowercase letters, digits and "-", starting and ending with a letter or digit (e.g. cluster1)',
    });
  }
  if (name === 'underlay' || name.startsWith('pod-')) {
    throw new TendrilError(
      'LAB_INVALID_NAME',
      `lab cluster name "${name}" is reserved (it would collide with the lab's own namespace names)`,
      {
        hint: 'choose another name, e.g. cluster1',
      },
    );
  }
}

/** Path of a cluster's cluster.json. */
export function clusterStatePath(name: string): string {
  return join(clusterDir(name), 'cluster.json');
}

/** Directory of one node's lab files (CNI config and plugins). */
export function nodeDir(cluster: string, node: string): string {
  return join(clusterDir(cluster), 'nodes', node);
}

/** CNI network configuration directory of a node: the kubelet uses the first *.conflist / *.conf here, lexicographically. */
export function nodeCniConfDir(cluster: string, node: string): string {
  return join(nodeDir(cluster, node), 'cni', 'net.d');
}

/** CNI plugin directory of a node (CNI_PATH): plugins named by a config's "type" are looked up here. */
export function nodeCniBinDir(cluster: string, node: string): string {
  return join(nodeDir(cluster, node), 'cni', 'bin');
}

/** Directory of busybox applet links put first on the PATH of busybox and curlimages/curl containers. */
export function busyboxBinDir(cluster: string): string {
  return join(clusterDir(cluster), 'images', 'busybox-bin');
}

/** Directory of a pod's container logs: pods/<ns>_<pod>_<uid>/. */
export function podLogDir(cluster: string, namespace: string, pod: string, uid: string): string {
  return join(clusterDir(cluster), 'pods', `${namespace}_${pod}_${uid}`);
}

/** The cluster DNS address: the 10th address of the service CIDR (10.96.0.10 by default). */
export function clusterDNSAddress(cluster: Pick<LabCluster, 'serviceCIDR'>): string {
  return nthAddress(parseCIDR(cluster.serviceCIDR, 'service CIDR'), 10);
}

/**
 * The API server's plain-HTTP port on 127.0.0.1 in the root namespace, with
 * no authentication: the lab's own plumbing (the readiness wait of `lab
 * create`) and tests that seed objects use it. The CLI and kubectl use
 * {@link labServerURL}.
 */
export function apiServerURL(cluster: Pick<LabCluster, 'apiPort'>): string {
  return `http://127.0.0.1:${cluster.apiPort}`;
}

/**
 * The URL the CLI and kubectl use from the root namespace: https on
 * 127.0.0.1 (the API server's https listener there) for clusters that have
 * it, the plain-HTTP port for clusters created before.
 */
export function labServerURL(
  cluster: Pick<LabCluster, 'apiPort' | 'apiSecurePort' | 'apiSecureSocket'>,
): string {
  return cluster.apiSecurePort && cluster.apiSecureSocket
    ? `https://127.0.0.1:${cluster.apiSecurePort}`
    : apiServerURL(cluster);
}

/** True when `server` (a context's) is one of the cluster's root-namespace URLs. */
export function servesURL(
  cluster: Pick<LabCluster, 'apiPort' | 'apiSecurePort' | 'apiSecureSocket'>,
  server: string,
): boolean {
  return server === labServerURL(cluster) || server === apiServerURL(cluster);
}

/**
 * URL of the API server from the nodes' namespaces (its listener in the
 * control plane's namespace): https when the cluster has its https socket.
 */
export function apiServerNodeURL(
  cluster: Pick<LabCluster, 'nodes'> & { apiSecureSocket?: string },
): string {
  const cp = cluster.nodes.find((n) => n.role === 'control-plane');
  if (!cp) throw new TendrilError('LAB_STATE_CORRUPT', 'lab cluster has no control-plane node');
  return `${cluster.apiSecureSocket ? 'https' : 'http'}://${cp.ip}:6443`;
}

/** Reads a cluster's state, or undefined when it has none. Throws LAB_STATE_CORRUPT on unreadable JSON. */
export function tryLoadCluster(name: string): LabCluster | undefined {
  const path = clusterStatePath(name);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return JSON.parse(text) as LabCluster;
  } catch (err) {
    throw new TendrilError('LAB_STATE_CORRUPT', `cannot parse ${path}`, {
      cause: err,
      hint: `remove the cluster with \`tendril lab delete ${name}\``,
    });
  }
}

/** Reads a cluster's state; throws ClusterNotFoundError when it does not exist. */
export function loadCluster(name: string): LabCluster {
  const c = tryLoadCluster(name);
  if (!c) throw new ClusterNotFoundError(name);
  return c;
}

/** All lab clusters with a cluster.json, by index. Unreadable ones are skipped. */
export function listClusters(): LabCluster[] {
  const dir = join(tendrilHome(), 'clusters');
  if (!existsSync(dir)) return [];
  const out: LabCluster[] = [];
  for (const name of readdirSync(dir)) {
    if (name.startsWith('.')) continue;
    try {
      const c = tryLoadCluster(name);
      if (c) out.push(c);
    } catch {
      // a corrupt cluster.json: `lab list` reports it through listClusterDirs
    }
  }
  return out.sort((a, b) => a.index - b.index);
}

/** Names of every directory under clusters/, with or without a readable cluster.json (half-created clusters). */
export function listClusterDirs(): string[] {
  const dir = join(tendrilHome(), 'clusters');
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
    .map((d) => d.name)
    .sort();
}

/**
 * Writes a cluster's state atomically and durably. The cluster's state dir
 * (and clusters/) is made 0700: it holds keys, tokens, pod specs and logs,
 * none of them for other users.
 */
export function saveCluster(cluster: LabCluster): void {
  writeFileAtomicSync(clusterStatePath(cluster.name), JSON.stringify(cluster, null, 2) + '\n');
  chmodSync(join(tendrilHome(), 'clusters'), 0o700);
  chmodSync(clusterDir(cluster.name), 0o700);
}

/** Finds a node of a cluster by name; throws LAB_NODE_NOT_FOUND. */
export function findNode(cluster: LabCluster, node: string): LabNode {
  const n = cluster.nodes.find((x) => x.name === node);
  if (!n) {
    throw new TendrilError(
      'LAB_NODE_NOT_FOUND',
      `lab cluster "${cluster.name}" has no node "${node}"`,
      {
        hint: `its nodes: ${cluster.nodes.map((x) => x.name).join(', ')}`,
      },
    );
  }
  return n;
}

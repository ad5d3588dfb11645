/**
 * The lab's naming and addressing plan, written once. Every name and address
 * the lab creates is derived here; the lab, the agent and the tests import
 * these functions rather than spelling names out. STABLE: changing a name
 * orphans objects of labs created before the change.
 *
 * A lab instance is identified by its prefix (TENDRIL_LAB_PREFIX, default
 * "tendril"); tests use their own prefix and TENDRIL_HOME so they never touch
 * a user's lab, and so leftovers are found by the prefix.
 *
 *   underlay netns      <prefix>-underlay     holds bridge "br0"; joins all nodes of all clusters
 *   node netns          <prefix>-<cluster>-<node>    e.g. tendril-cluster1-worker2
 *   node names          <cluster>-control-plane, <cluster>-worker, <cluster>-worker2, ... (as kind)
 *   node underlay addr  172.30.<clusterIndex>.<10 + nodeIndex>/16 on the node's "eth0"
 *   pod netns           <prefix>-pod-<podUID first 12 hex>
 *   pod CIDR (cluster)  10.<243 + clusterIndex>.0.0/16 (cluster index 1 -> 10.244.0.0/16)
 *   pod CIDR (node)     the node index's /24 inside it (control plane 0, worker 1, worker2 2, ...)
 *   service CIDR        10.96.0.0/16 by default; the 10th address (10.96.0.10) is cluster DNS
 *   API server          127.0.0.1:<port> in the root netns (CLI, kubectl) and, for the
 *                       nodes, <control-plane underlay addr>:6443: a listener the API
 *                       server (root netns) makes in the control plane's netns
 *   cgroup v2           <cgroup2>/<prefix>/<cluster>/<node>/<podUID>
 *   bpffs               /sys/fs/bpf/<prefix>/<cluster>/<node>/...
 *   state               $TENDRIL_HOME/clusters/<cluster>/...
 */
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { BPFFS_ROOT, cgroup2Root, clusterDir } from '../util/paths.js';

/** The lab instance prefix. */
export function labPrefix(): string {
  return process.env.TENDRIL_LAB_PREFIX ?? 'tendril';
}

/** Where lab data kept in memory goes (a tmpfs on Linux). */
export const SHM_ROOT = '/dev/shm';

/**
 * A lab cluster's directory in memory, `/dev/shm/tendril-lab-<hash>`, the
 * hash of its state directory (so labs of different TENDRIL_HOMEs never share
 * one). Lab delete removes it.
 */
export function clusterShmDir(cluster: string): string {
  const h = createHash('sha256').update(clusterDir(cluster)).digest('hex').slice(0, 16);
  return join(SHM_ROOT, `tendril-lab-${h}`);
}

/** Name of the shared underlay network namespace. */
export function underlayNetns(): string {
  return `${labPrefix()}-underlay`;
}

/** Name of the underlay bridge inside the underlay namespace. */
export const UNDERLAY_BRIDGE = 'br0';

/** Underlay network: all node addresses live in it. */
export const UNDERLAY_CIDR = '172.30.0.0/16';

/** Node names as kind makes them: index 0 is the control plane. */
export function nodeName(cluster: string, nodeIndex: number): string {
  if (nodeIndex === 0) return `${cluster}-control-plane`;
  return nodeIndex === 1 ? `${cluster}-worker` : `${cluster}-worker${nodeIndex}`;
}

/** Network namespace of a node (by the node's name, which starts with the cluster's). */
export function nodeNetns(node: string): string {
  return `${labPrefix()}-${node}`;
}

/** The node's underlay address (without prefix length). Cluster index 1..250, node index 0..200. */
export function nodeUnderlayIP(clusterIndex: number, nodeIndex: number): string {
  return `172.30.${clusterIndex}.${10 + nodeIndex}`;
}

/** Default pod CIDR of the cluster with this index. */
export function defaultPodCIDR(clusterIndex: number): string {
  return `10.${243 + clusterIndex}.0.0/16`;
}

/** Default service CIDR (the same in every cluster, as in kind). */
export const DEFAULT_SERVICE_CIDR = '10.96.0.0/16';

/** Port the API server listens on for the nodes, at the control plane's underlay address. */
export const API_NODE_PORT = 6443;

/** Network namespace of a pod. */
export function podNetns(podUID: string): string {
  return `${labPrefix()}-pod-${podUID.replace(/-/g, '').slice(0, 12)}`;
}

/** cgroup v2 directory holding all pods of a node (agents attach socket programs here). */
export function nodeCgroup(cluster: string, node: string): string {
  return join(cgroup2Root(), labPrefix(), cluster, node);
}

/** cgroup v2 directory of one pod. */
export function podCgroup(cluster: string, node: string, podUID: string): string {
  return join(nodeCgroup(cluster, node), podUID);
}

/** bpffs directory where a node's agent pins its maps and links. */
export function nodeBpffsDir(cluster: string, node: string): string {
  return join(BPFFS_ROOT, labPrefix(), cluster, node);
}

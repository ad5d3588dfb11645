/**
 * `tendril lab delete`: removes everything a lab cluster made, and nothing
 * else, in an order that stops anything from coming back: the supervisor
 * (so it restarts nothing), the daemons, the processes in the cluster's
 * cgroups and network namespaces, the namespaces (nodes, pods), cgroup
 * directories (leaf-first), bpffs pins, state files and the context; the
 * shared underlay goes with the last cluster. Idempotent, and works from
 * whatever is left of a half-made cluster (state without namespaces,
 * namespaces without state): leftovers are found by the lab prefix.
 */
import { existsSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BPFFS_ROOT, clusterDir, tendrilHome } from '../util/paths.js';
import { clusterCgroup, labCgroupRoot, removeCgroupTree, rmdirIfEmpty } from './cgroup.js';
import { forgetLabContext } from './context.js';
import { readDaemonRecord, recordsDir, stopSupervisor, supervisorPid } from './daemons.js';
import { clusterShmDir, labPrefix, podNetns, underlayNetns } from './layout.js';
import { withLabLock } from './lock.js';
import { deleteNetns, listLabNetns, netnsInode } from './netns.js';
import { descendants, isAlive, signal, terminate, waitGone } from './proc.js';
import { listClusterDirs, tryLoadCluster } from './state.js';

/** What deleteCluster removed. */
export interface TeardownReport {
  cluster: string;
  netns: string[];
  processes: number;
  underlayRemoved: boolean;
}

const NODE_SUFFIX = /^(control-plane|worker\d*)$/;

/** Node namespaces of a cluster, found by name (works without state). */
export function clusterNodeNetns(cluster: string): string[] {
  const p = `${labPrefix()}-${cluster}-`;
  return listLabNetns().filter((n) => n.startsWith(p) && NODE_SUFFIX.test(n.slice(p.length)));
}

/** Cluster names that have node namespaces of this lab prefix (for --all and leftovers). */
export function clustersFromNetns(): string[] {
  const p = `${labPrefix()}-`;
  const out = new Set<string>();
  for (const n of listLabNetns()) {
    const m = /^(.*)-(control-plane|worker\d*)$/.exec(n.slice(p.length));
    if (m && !n.slice(p.length).startsWith('pod-')) out.add(m[1]!);
  }
  return [...out].sort();
}

/** Pod UIDs a cluster knows of: its pod records (pods/<ns>_<pod>_<uid>/) and its cgroup directories. */
export function clusterPodUIDs(cluster: string): string[] {
  const uids = new Set<string>();
  const podsDir = join(clusterDir(cluster), 'pods');
  if (existsSync(podsDir)) {
    for (const d of readdirSync(podsDir)) {
      const uid = d.split('_')[2];
      if (uid) uids.add(uid);
    }
  }
  const cg = clusterCgroup(cluster);
  if (existsSync(cg)) {
    for (const node of readdirSync(cg, { withFileTypes: true })) {
      if (!node.isDirectory()) continue;
      for (const pod of readdirSync(join(cg, node.name), { withFileTypes: true })) {
        if (pod.isDirectory() && /^[0-9a-f-]{8,}$/.test(pod.name)) uids.add(pod.name);
      }
    }
  }
  return [...uids];
}

/** pids whose network namespace is one of the given inodes. */
export function pidsInNetns(inodes: Set<number>): number[] {
  if (inodes.size === 0) return [];
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const m = /^net:\[(\d+)\]$/.exec(readlinkSync(`/proc/${d}/ns/net`));
      if (m && inodes.has(Number(m[1]))) out.push(Number(d));
    } catch {
      // exited, or a kernel thread
    }
  }
  return out.filter((p) => p !== process.pid);
}

/**
 * Deletes one lab cluster and everything it made. Idempotent: deleting a
 * cluster that does not exist does nothing. `progress` gets a line per step.
 */
export async function deleteCluster(
  name: string,
  options: { progress?: (line: string) => void } = {},
): Promise<TeardownReport> {
  const say = options.progress ?? (() => {});
  let state;
  try {
    state = tryLoadCluster(name);
  } catch {
    state = undefined; // corrupt state: clean up by name
  }
  say(`Deleting lab cluster "${name}" ...`);
  let killed = 0;

  // 0. remember every process below the supervisor and the daemons (children a daemon
  //    started outside the cluster's namespaces and cgroups are found this way)
  const roots: number[] = [];
  const sup = supervisorPid(name);
  if (sup) roots.push(sup);
  const rdir0 = recordsDir(name);
  if (existsSync(rdir0)) {
    for (const f of readdirSync(rdir0)) {
      const rec = f.endsWith('.json') ? readDaemonRecord(name, f.slice(0, -5)) : undefined;
      if (rec?.pid && isAlive(rec.pid, rec.startTime)) roots.push(rec.pid);
    }
  }
  const tree = roots.length > 0 ? descendants(roots) : [];
  // 1. the supervisor first, so nothing is restarted; it stops its daemons.
  await stopSupervisor(name, 20_000);
  // 2. any daemon the supervisor did not stop (it was killed, or never ran).
  const rdir = recordsDir(name);
  if (existsSync(rdir)) {
    for (const f of readdirSync(rdir)) {
      if (!f.endsWith('.json')) continue;
      const rec = readDaemonRecord(name, f.slice(0, -5));
      if (rec?.pid) {
        await terminate(rec.pid, 3000, rec.startTime);
        killed++;
      }
    }
  }
  for (const p of tree) {
    if (isAlive(p.pid, p.startTime)) {
      signal(p.pid, 'SIGKILL');
      killed++;
    }
  }
  // 3. pods' processes: everything in the cluster's cgroups.
  const podUIDs = clusterPodUIDs(name);
  await removeCgroupTree(clusterCgroup(name));
  // 4. anything still running inside the cluster's namespaces (exec'd shells, plugin runs).
  const nodeNs = new Set([...clusterNodeNetns(name), ...(state?.nodes.map((n) => n.netns) ?? [])]);
  const podNs = new Set(podUIDs.map((u) => podNetns(u)));
  const allNs = [...podNs, ...nodeNs];
  const inodes = new Set(
    allNs.map((n) => netnsInode(n)).filter((i): i is number => i !== undefined),
  );
  const stragglers = pidsInNetns(inodes);
  for (const pid of stragglers) signal(pid, 'SIGKILL');
  for (const pid of stragglers) await waitGone(pid, 2000);
  killed += stragglers.length;
  // 5. namespaces: pods first, then nodes (their veth peers go with them).
  const removed: string[] = [];
  for (const ns of allNs) {
    if (netnsInode(ns) !== undefined) {
      await deleteNetns(ns);
      removed.push(ns);
    }
  }
  say(` • removed ${removed.length} network namespace(s), stopped ${killed} process(es)`);
  // 6. bpffs pins of every agent of the cluster.
  const bpfDir = join(BPFFS_ROOT, labPrefix(), name);
  rmSync(bpfDir, { recursive: true, force: true });
  rmdirIfEmpty(join(BPFFS_ROOT, labPrefix()));
  rmdirIfEmpty(labCgroupRoot());
  // 7. state and context.
  await withLabLock(async () => forgetLabContext(name));
  rmSync(clusterDir(name), { recursive: true, force: true });
  rmSync(clusterShmDir(name), { recursive: true, force: true }); // data in memory (the mesh etcd's)
  // 8. the shared underlay, with the last cluster.
  const underlayRemoved = await withLabLock(async () => {
    const others = listClusterDirs().filter((d) => d !== name);
    const otherNodes = clustersFromNetns().filter((c) => c !== name);
    if (others.length > 0 || otherNodes.length > 0) return false;
    if (netnsInode(underlayNetns()) === undefined) return false;
    await deleteNetns(underlayNetns());
    return true;
  });
  rmdirIfEmpty(join(tendrilHome(), 'clusters'));
  if (underlayRemoved) say(' • removed the underlay network (no lab cluster left)');
  say(`Deleted lab cluster "${name}".`);
  return { cluster: name, netns: removed, processes: killed, underlayRemoved };
}

/**
 * Deletes every lab cluster of this prefix (by state and by leftover
 * namespaces), then any namespace, cgroup or bpffs directory of the prefix
 * that no cluster claimed (e.g. pods of a cluster whose state is gone).
 */
export async function deleteAllClusters(
  options: { progress?: (line: string) => void } = {},
): Promise<TeardownReport[]> {
  const names = [...new Set([...listClusterDirs(), ...clustersFromNetns()])].sort();
  const reports: TeardownReport[] = [];
  for (const n of names) reports.push(await deleteCluster(n, options));
  // leftovers of the prefix that no cluster claimed
  const left = listLabNetns();
  const inodes = new Set(
    left.map((n) => netnsInode(n)).filter((i): i is number => i !== undefined),
  );
  for (const pid of pidsInNetns(inodes)) signal(pid, 'SIGKILL');
  await removeCgroupTree(labCgroupRoot());
  for (const ns of left) await deleteNetns(ns);
  if (left.length > 0)
    options.progress?.(
      ` • removed ${left.length} leftover network namespace(s): ${left.join(', ')}`,
    );
  rmSync(join(BPFFS_ROOT, labPrefix()), { recursive: true, force: true });
  rmdirIfEmpty(join(tendrilHome(), 'clusters'));
  return reports;
}

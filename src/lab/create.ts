/**
 * `tendril lab create`: validates the request, allocates the cluster's index
 * and CIDRs, builds the underlay and node namespaces, starts the supervisor
 * and the cluster's daemons (etcd when asked, the API server, one kubelet per
 * node), and records the `lab-<name>` context. The API server listens in the
 * control plane's network namespace itself (<cp IP>:6443, for the nodes), so
 * it starts once the namespaces exist.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { TendrilError } from '../util/errors.js';
import { clusterDir } from '../util/paths.js';
import { etcdArgs, freePort } from '../kvstore/etcd-server.js';
import { recordLabContext } from './context.js';
import {
  apiSecureSocketPath,
  daemonKubeconfigPath,
  ensureLabPKI,
  labCredential,
  pkiPaths,
} from './pki.js';
import { KubeClient } from '../k8s/client.js';
import {
  addDaemon,
  daemonLogPath,
  daemonStatus,
  logTail,
  nodeCommand,
  startSupervisor,
  stopSupervisor,
  waitDaemonRunning,
  type DaemonSpec,
} from './daemons.js';
import { cidrsOverlap, formatCIDR, nthSubnet, parseCIDR } from '../util/ipv4.js';
import {
  API_NODE_PORT,
  DEFAULT_SERVICE_CIDR,
  UNDERLAY_CIDR,
  defaultPodCIDR,
  labPrefix,
  nodeCgroup,
  nodeName,
  nodeNetns,
  nodeUnderlayIP,
} from './layout.js';
import { withLabLock } from './lock.js';
import { createNode, ensureUnderlay } from './netns.js';
import { ensureCgroup } from './cgroup.js';
import { sleep, terminate } from './proc.js';
import { httpCall } from './kubelet/api.js';
import {
  apiServerURL,
  labServerURL,
  listClusterDirs,
  listClusters,
  loadCluster,
  nodeCniBinDir,
  nodeCniConfDir,
  saveCluster,
  tryLoadCluster,
  validateClusterName,
  type ApiStore,
  type LabCluster,
  type LabNode,
} from './state.js';

/** Options of createCluster. */
export interface CreateClusterOptions {
  name: string;
  /** Worker nodes (default 2). */
  nodes?: number;
  podCIDR?: string;
  serviceCIDR?: string;
  apiStore?: ApiStore;
  /** Wait until every node reports Ready. */
  wait?: boolean;
  /** Timeout for each wait (default 60 s). */
  timeoutMs?: number;
  /** Called with a line per step ("Creating nodes ..."). */
  progress?: (line: string) => void;
}

/** Highest cluster index (the underlay has 172.30.<index>.0/24 per cluster). */
export const MAX_CLUSTER_INDEX = 250;
/** Most workers a lab cluster may have. */
export const MAX_WORKERS = 50;

/** Daemon names of the lab's own daemons. */
export const DAEMON_APISERVER = 'apiserver';
export const DAEMON_ETCD = 'etcd';
/** The kubelet daemon of a node. */
export function kubeletDaemonName(node: string): string {
  return `kubelet-${node}`;
}

/**
 * Plans a cluster (no side effects): index, CIDRs, nodes. Throws
 * LAB_INVALID_NAME, LAB_CLUSTER_EXISTS, LAB_CIDR_OVERLAP, INVALID_CIDR,
 * LAB_INVALID_NODES, LAB_FULL.
 */
export function planCluster(
  opts: CreateClusterOptions,
  existing: LabCluster[],
  occupiedNames: string[] = [],
): LabCluster {
  validateClusterName(opts.name);
  const workers = opts.nodes ?? 2;
  if (!Number.isInteger(workers) || workers < 0 || workers > MAX_WORKERS) {
    throw new TendrilError('LAB_INVALID_NODES', `--nodes ${opts.nodes} is not a worker count`, {
      hint: `pass --nodes 0..${MAX_WORKERS}`,
    });
  }
  if (existing.some((c) => c.name === opts.name) || occupiedNames.includes(opts.name)) {
    throw new TendrilError('LAB_CLUSTER_EXISTS', `lab cluster "${opts.name}" already exists`, {
      hint: `delete it first with \`tendril lab delete ${opts.name}\`, or choose another name`,
    });
  }
  const used = new Set(existing.map((c) => c.index));
  let index = 1;
  while (used.has(index)) index++;
  if (index > MAX_CLUSTER_INDEX) {
    throw new TendrilError('LAB_FULL', `the lab already has ${MAX_CLUSTER_INDEX} clusters`, {
      hint: 'delete one with `tendril lab delete NAME`',
    });
  }
  const podText = opts.podCIDR ?? defaultPodCIDR(index);
  const pod = parseCIDR(podText, '--pod-cidr');
  const svc = parseCIDR(opts.serviceCIDR ?? DEFAULT_SERVICE_CIDR, '--service-cidr');
  const flag = opts.podCIDR ? 'a different --pod-cidr' : '--pod-cidr with a free range';
  for (const c of existing) {
    if (cidrsOverlap(pod, parseCIDR(c.podCIDR))) {
      throw new TendrilError(
        'LAB_CIDR_OVERLAP',
        `pod CIDR ${formatCIDR(pod)} of new cluster "${opts.name}" overlaps pod CIDR ${c.podCIDR} of lab cluster "${c.name}"`,
        { hint: `pass ${flag} (clusters to be meshed need distinct pod CIDRs)` },
      );
    }
  }
  if (cidrsOverlap(pod, svc)) {
    throw new TendrilError(
      'LAB_CIDR_OVERLAP',
      `pod CIDR ${formatCIDR(pod)} overlaps service CIDR ${formatCIDR(svc)}`,
      {
        hint: 'pass --pod-cidr or --service-cidr so they are disjoint',
      },
    );
  }
  for (const [what, c] of [
    ['pod', pod],
    ['service', svc],
  ] as const) {
    if (cidrsOverlap(c, parseCIDR(UNDERLAY_CIDR))) {
      throw new TendrilError(
        'LAB_CIDR_OVERLAP',
        `${what} CIDR ${formatCIDR(c)} overlaps the lab underlay ${UNDERLAY_CIDR}`,
        {
          hint: `pass --${what}-cidr outside ${UNDERLAY_CIDR}`,
        },
      );
    }
  }
  if (svc.bits > 28) {
    throw new TendrilError('INVALID_CIDR', `--service-cidr ${formatCIDR(svc)} is too small`, {
      hint: 'use a /28 or larger (e.g. 10.96.0.0/16)',
    });
  }
  const nodes: LabNode[] = [];
  for (let i = 0; i <= workers; i++) {
    const name = nodeName(opts.name, i);
    let sub;
    try {
      sub = nthSubnet(pod, 24, i);
    } catch (err) {
      throw new TendrilError(
        'INVALID_CIDR',
        `--pod-cidr ${formatCIDR(pod)} cannot hold a /24 for each of ${workers + 1} nodes`,
        {
          cause: err,
          hint: 'use a larger pod CIDR (e.g. a /16)',
        },
      );
    }
    nodes.push({
      name,
      index: i,
      role: i === 0 ? 'control-plane' : 'worker',
      netns: nodeNetns(name),
      ip: nodeUnderlayIP(index, i),
      podCIDR: formatCIDR(sub),
    });
  }
  const dir = clusterDir(opts.name);
  return {
    name: opts.name,
    index,
    prefix: labPrefix(),
    podCIDR: formatCIDR(pod),
    serviceCIDR: formatCIDR(svc),
    apiPort: 0,
    apiSocket: join(dir, 'api.sock'),
    apiStore: opts.apiStore ?? 'memory',
    nodes,
    createdAt: new Date().toISOString(),
  };
}

/** The API server's daemon spec (H2's src/lab/apiserver/main.ts). */
export function apiServerSpec(c: LabCluster): DaemonSpec {
  const args = [
    '--cluster',
    c.name,
    '--data-dir',
    join(clusterDir(c.name), 'apiserver'),
    '--listen',
    `127.0.0.1:${c.apiPort}`,
    '--socket',
    c.apiSocket,
    '--service-cidr',
    c.serviceCIDR,
    // The `kubernetes` Service's endpoint: pods reach the API server on the
    // control plane, as in a real cluster.
    '--advertise-address',
    `${c.nodes[0]!.ip}:${API_NODE_PORT}`,
  ];
  if (c.apiStore === 'etcd')
    args.push('--store', 'etcd', '--etcd-endpoints', (c.etcdEndpoints ?? []).join(','));
  if (c.apiSecureSocket) {
    // https with authentication for the nodes' daemons (src/lab/pki.ts made the files)
    const p = pkiPaths(c.name);
    args.push(
      '--secure-socket',
      c.apiSecureSocket,
      '--tls-cert-file',
      p.serverCert,
      '--tls-private-key-file',
      p.serverKey,
      '--client-ca-file',
      p.caCert,
      '--token-auth-file',
      p.tokens,
      // the nodes' way in: <cp IP>:6443, a listener the API server makes in
      // the control plane's namespace (no process relays its connections)
      '--node-listen',
      `${c.nodes[0]!.ip}:${API_NODE_PORT}`,
      '--node-netns',
      c.nodes[0]!.netns,
    );
    // the CLI's and kubectl's way in
    if (c.apiSecurePort) args.push('--secure-listen', `127.0.0.1:${c.apiSecurePort}`);
  }
  return {
    name: DAEMON_APISERVER,
    command: nodeCommand('src/lab/apiserver/main.ts', args),
    restart: 'always',
  };
}

/**
 * Records the cluster's context for the CLI and kubectl: https on 127.0.0.1
 * with the lab CA and the admin token (the plain-HTTP URL, without
 * credentials, for a cluster created before https). Call under the lab lock.
 */
function recordContext(cluster: LabCluster): string {
  const server = labServerURL(cluster);
  return recordLabContext(
    cluster.name,
    server,
    server.startsWith('https:') ? labCredential(cluster, 'admin') : undefined,
  );
}

/**
 * Waits until the CLI's way in answers: GET /version on {@link labServerURL}
 * with the admin credential. Throws LAB_API_TIMEOUT naming the last error.
 */
async function waitClientAPI(cluster: LabCluster, timeoutMs: number): Promise<void> {
  const server = labServerURL(cluster);
  if (!server.startsWith('https:')) return;
  const { caPEM, token } = labCredential(cluster, 'admin');
  const client = new KubeClient({ server, tls: { ca: caPEM }, token, timeoutMs: 2000 });
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      try {
        await client.request('GET', '/version');
        return;
      } catch (err) {
        if (Date.now() > deadline)
          throw new TendrilError(
            'LAB_API_TIMEOUT',
            `the API server did not answer on ${server}: ${(err as Error).message}`,
            { hint: `see ${daemonLogPath(cluster.name, DAEMON_APISERVER)}`, cause: err },
          );
        await sleep(100);
      }
    }
  } finally {
    client.close();
  }
}

/** A node's kubelet daemon spec (in the node's namespace). */
export function kubeletSpec(c: LabCluster, node: LabNode): DaemonSpec {
  return {
    name: kubeletDaemonName(node.name),
    command: nodeCommand('src/lab/kubelet/main.ts', [
      '--cluster',
      c.name,
      '--node',
      node.name,
      ...(c.apiSecureSocket
        ? ['--kubeconfig', daemonKubeconfigPath(c.name, `kubelet-${node.name}`)]
        : []),
    ]),
    netns: node.netns,
    restart: 'always',
    stopTimeoutMs: 15_000,
  };
}

/**
 * Creates a lab cluster and returns its state. On failure the half-made
 * cluster stays for `tendril lab delete NAME` (the error says so).
 */
export async function createCluster(opts: CreateClusterOptions): Promise<LabCluster> {
  const say = opts.progress ?? (() => {});
  const timeoutMs = opts.timeoutMs ?? 60_000;
  say(`Creating lab cluster "${opts.name}" ...`);
  const cluster = await withLabLock(async () => {
    const dirs = listClusterDirs();
    const existing = listClusters();
    const halfMade = dirs.filter((d) => !existing.some((c) => c.name === d));
    if (halfMade.includes(opts.name) && !tryLoadCluster(opts.name)) {
      throw new TendrilError(
        'LAB_CLUSTER_EXISTS',
        `lab cluster "${opts.name}" is half made (its state directory exists without cluster.json)`,
        {
          hint: `remove it with \`tendril lab delete ${opts.name}\``,
        },
      );
    }
    const c = planCluster(opts, existing);
    c.apiPort = await freePort();
    c.apiSecureSocket = apiSecureSocketPath(c.name);
    // both are held by the one API server: two free ports, not the same one twice
    do c.apiSecurePort = await freePort();
    while (c.apiSecurePort === c.apiPort);
    saveCluster(c);
    return c;
  });
  try {
    // The supervisor and etcd need no node namespace: start them while the
    // network is built. The API server listens in the control plane's, so it
    // starts after.
    const controlPlane = (async () => {
      // the lab CA, serving certificate, and a token and kubeconfig per daemon
      await ensureLabPKI(cluster);
      await startSupervisor(cluster.name);
      if (cluster.apiStore === 'etcd') {
        const clientPort = await freePort();
        const peerPort = await freePort();
        cluster.etcdEndpoints = [`http://127.0.0.1:${clientPort}`];
        saveCluster(cluster);
        addDaemon(cluster.name, {
          name: DAEMON_ETCD,
          command: etcdArgs({
            name: `${cluster.name}-api`,
            dataDir: join(clusterDir(cluster.name), 'etcd'),
            clientUrls: cluster.etcdEndpoints,
            peerPort,
          }),
          restart: 'always',
        });
        await waitDaemonRunning(cluster.name, DAEMON_ETCD, timeoutMs);
      }
    })();
    controlPlane.catch(() => {}); // awaited below
    say(` • Underlay network (${UNDERLAY_CIDR}) ...`);
    await ensureUnderlay();
    say(` • Nodes: ${cluster.nodes.map((n) => `${n.name} ${n.ip}`).join(', ')} ...`);
    await Promise.all(
      cluster.nodes.map((n) =>
        createNode({ netns: n.netns, ip: n.ip, clusterIndex: cluster.index, nodeIndex: n.index }),
      ),
    );
    for (const n of cluster.nodes) {
      ensureCgroup(nodeCgroup(cluster.name, n.name));
      mkdirSync(nodeCniConfDir(cluster.name, n.name), { recursive: true });
      mkdirSync(nodeCniBinDir(cluster.name, n.name), { recursive: true });
    }
    say(
      ` • ${cluster.apiStore === 'etcd' ? 'etcd and the ' : ''}API server (${labServerURL(cluster)}, ${cluster.nodes[0]!.ip}:${API_NODE_PORT} from the nodes) ...`,
    );
    await controlPlane;
    addDaemon(cluster.name, apiServerSpec(cluster));
    // kubelets start alongside the API server (they retry registering until it answers)
    for (const n of cluster.nodes) addDaemon(cluster.name, kubeletSpec(cluster, n));
    await waitAPI(cluster, timeoutMs);
    await waitClientAPI(cluster, timeoutMs);
    say(` • Kubelets on ${cluster.nodes.length} node(s) ...`);
    await Promise.all(
      cluster.nodes.map((n) =>
        waitDaemonRunning(cluster.name, kubeletDaemonName(n.name), timeoutMs),
      ),
    );
    // under the lab lock: the config file is read-modified-written, and other creates may finish now too
    const ctx = await withLabLock(async () => recordContext(cluster));
    saveCluster(cluster);
    if (opts.wait) {
      say(' • Waiting for nodes to be Ready ...');
      await waitNodesReady(cluster, timeoutMs);
    }
    say(`Lab cluster "${cluster.name}" is up; context "${ctx}" (now current).`);
    return cluster;
  } catch (err) {
    if (err instanceof TendrilError && err.code === 'LAB_CLUSTER_EXISTS') throw err;
    const msg = err instanceof Error ? err.message : String(err);
    throw new TendrilError(
      'LAB_CREATE_FAILED',
      `creating lab cluster "${cluster.name}" failed: ${msg}`,
      {
        cause: err,
        hint: `${err instanceof TendrilError && err.hint ? err.hint + '\n  then ' : ''}remove what was made with \`tendril lab delete ${cluster.name}\``,
      },
    );
  }
}

/** Waits until the API server answers GET /api. Throws LAB_API_TIMEOUT. */
export async function waitAPI(cluster: LabCluster, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const res = await httpCall(`${apiServerURL(cluster)}/api`, 'GET', undefined, undefined, 2000);
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last =
        err instanceof Error
          ? err.cause instanceof Error
            ? err.cause.message
            : err.message
          : String(err);
    }
    // an API server that keeps crashing will not answer: say so at once, with its log
    const st = daemonStatus(cluster.name).find((d) => d.name === DAEMON_APISERVER);
    const crashing = st !== undefined && st.restarts >= 3;
    if (Date.now() > deadline || crashing) {
      throw new TendrilError(
        'LAB_API_TIMEOUT',
        crashing
          ? `the API server of lab cluster "${cluster.name}" keeps exiting (${st.restarts} restarts, last exit code ${st.lastExit?.code ?? '?'})`
          : `the API server of lab cluster "${cluster.name}" does not answer after ${timeoutMs} ms (${last})`,
        {
          hint: `its log ends with:\n${logTail(daemonLogPath(cluster.name, DAEMON_APISERVER), 8)}\n  (all of it: \`tendril lab logs ${cluster.name} ${DAEMON_APISERVER}\`)`,
        },
      );
    }
    await sleep(100);
  }
}

/** Waits until every node of the cluster has condition Ready=True. Throws LAB_NODES_TIMEOUT. */
export async function waitNodesReady(cluster: LabCluster, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let missing: string[] = cluster.nodes.map((n) => n.name);
  for (;;) {
    try {
      const res = await httpCall(
        `${apiServerURL(cluster)}/api/v1/nodes`,
        'GET',
        undefined,
        undefined,
        2000,
      );
      if (res.status === 200) {
        const list = JSON.parse(res.text) as {
          items: {
            metadata: { name: string };
            status?: { conditions?: { type: string; status: string }[] };
          }[];
        };
        const ready = new Set(
          list.items
            .filter((n) =>
              n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
            )
            .map((n) => n.metadata.name),
        );
        missing = cluster.nodes.map((n) => n.name).filter((n) => !ready.has(n));
        if (missing.length === 0) return;
      }
    } catch {
      // retry
    }
    if (Date.now() > deadline) {
      throw new TendrilError(
        'LAB_NODES_TIMEOUT',
        `nodes of lab cluster "${cluster.name}" not Ready after ${timeoutMs} ms: ${missing.join(', ')}`,
        {
          hint: `see \`tendril lab logs ${cluster.name} ${kubeletDaemonName(missing[0] ?? '')}\``,
        },
      );
    }
    await sleep(100);
  }
}

/**
 * Brings an existing lab cluster back: stops its supervisor and daemons,
 * re-creates whatever of the underlay, node namespaces, cgroups and CNI
 * directories is missing (e.g. after a reboot), and starts the supervisor
 * again (every daemon spec runs again; kubelets restart their pods). Throws
 * ClusterNotFoundError, or LAB_RESTART_FAILED with the cause.
 */
export async function restartCluster(
  name: string,
  options: { wait?: boolean; timeoutMs?: number; progress?: (line: string) => void } = {},
): Promise<LabCluster> {
  const say = options.progress ?? (() => {});
  const timeoutMs = options.timeoutMs ?? 60_000;
  const cluster = loadCluster(name);
  say(`Restarting lab cluster "${name}" ...`);
  try {
    await stopSupervisor(name, 20_000);
    for (const d of daemonStatus(name)) if (d.pid) await terminate(d.pid, 5000);
    say(' • Underlay network and nodes ...');
    await ensureUnderlay();
    await Promise.all(
      cluster.nodes.map((n) =>
        createNode({ netns: n.netns, ip: n.ip, clusterIndex: cluster.index, nodeIndex: n.index }),
      ),
    );
    for (const n of cluster.nodes) {
      ensureCgroup(nodeCgroup(cluster.name, n.name));
      mkdirSync(nodeCniConfDir(cluster.name, n.name), { recursive: true });
      mkdirSync(nodeCniBinDir(cluster.name, n.name), { recursive: true });
    }
    say(' • Daemons ...');
    await startSupervisor(name);
    await waitAPI(cluster, timeoutMs);
    await Promise.all(
      cluster.nodes.map((n) => waitDaemonRunning(name, kubeletDaemonName(n.name), timeoutMs)),
    );
    await waitClientAPI(cluster, timeoutMs);
    await withLabLock(async () => recordContext(cluster));
    if (options.wait) {
      say(' • Waiting for nodes to be Ready ...');
      await waitNodesReady(cluster, timeoutMs);
    }
    say(`Lab cluster "${name}" is up again.`);
    return cluster;
  } catch (err) {
    throw new TendrilError(
      'LAB_RESTART_FAILED',
      `restarting lab cluster "${name}" failed: ${err instanceof Error ? err.message : String(err)}`,
      {
        cause: err,
        hint: `see \`tendril lab list\` and \`tendril lab logs ${name}\`; \`tendril lab delete ${name}\` removes it`,
      },
    );
  }
}

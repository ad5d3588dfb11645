/**
 * The one narrow way the install wing reaches a cluster (what cilium-cli's
 * k8s client is to Cilium's installer), with two implementations:
 *
 *   LabTarget         a lab cluster on this machine: objects through its API server, daemon
 *                     config as files (lab-daemon-config.ts), daemons as supervised
 *                     processes in the nodes' network namespaces, the mesh files on disk
 *   KubernetesTarget  a Kubernetes cluster: objects through its API server; the daemons
 *                     are the DaemonSet and Deployments of the rendered manifests, their
 *                     config the `tendril-config` ConfigMap
 *
 * What a target cannot do throws TargetNotSupportedError (code
 * TARGET_NOT_SUPPORTED) naming the operation and what to do instead; nothing
 * is pretended.
 *
 *   const t = resolveCluster('lab-cluster1');   // resolved once: context, target, install, mesh
 *   await t.target.readDaemonConfig('operator');
 */
import { readFileSync } from 'node:fs';
import { TendrilError } from '../util/errors.js';
import { readConfigDir, writeConfigDir } from '../util/config-dir.js';
import { KubeClient } from '../k8s/client.js';
import { ApiError } from '../k8s/status.js';
import type { KubeObject } from '../k8s/objects.js';
import { kubeconfigClientOptions } from '../k8s/client-config.js';
import { meshPaths, readMeshConfig, type MeshConfig } from '../clustermesh/mesh-files.js';
import {
  daemonLogPath,
  daemonStatus,
  listDaemonSpecs,
  addDaemon,
  removeDaemon,
  logTail,
} from '../lab/daemons.js';
import type { LabCluster } from '../lab/state.js';
import { labAdminClientOptions } from '../lab/client.js';
import {
  agentConfigDir,
  agentSocketPath,
  operatorConfigDir,
  operatorStatusPath,
} from './lab-daemon-config.js';
import { AgentClient } from '../agent/api/client.js';
import type { AgentStatus } from '../agent/api/types.js';
import type { OperatorStatus } from '../operator/operator.js';
import { fetchStatus, type MeshDaemonStatus } from '../clustermesh/status-api.js';
import { readInstallState, type InstallState } from './install-state.js';
import { resolveInstallTarget } from './lab-target.js';

/** Which daemon's settings. */
export type DaemonRole = 'agent' | 'operator';

/** One daemon as a target sees it. */
export interface DaemonState {
  name: string;
  running: boolean;
  restarts: number;
  /** Where it runs (a node name). */
  node?: string;
  /** The running process (lab) or pod's start (Kubernetes: not known). */
  pid?: number;
  /** When the current (or last) process started (ISO time). */
  startedAt?: string;
  /** How the last process ended. */
  lastExit?: { code: number | null; signal: string | null };
}

/** Where a cluster's mesh files are. */
export type MeshFiles = ReturnType<typeof meshPaths>;

/** What the install wing needs from a cluster, and nothing more. */
export interface ClusterTarget {
  readonly kind: 'lab' | 'kubernetes';
  /** A name for messages (the lab cluster, or the API server URL). */
  readonly name: string;
  /** Creates or replaces objects. @throws ApiError */
  apply(objects: KubeObject[]): Promise<void>;
  /** Reads one object; undefined when absent. @throws ApiError */
  read(
    apiVersion: string,
    kind: string,
    name: string,
    namespace?: string,
  ): Promise<KubeObject | undefined>;
  /** The settings a daemon reads (its config directory / ConfigMap). */
  readDaemonConfig(role: DaemonRole, node?: string): Promise<Record<string, string>>;
  /** Replaces a daemon's settings (takes effect at its next start). */
  writeDaemonConfig(
    role: DaemonRole,
    settings: Record<string, string>,
    node?: string,
  ): Promise<void>;
  /** Tendril's daemons and whether they run. */
  daemons(): Promise<DaemonState[]>;
  /** Restarts one daemon (it re-reads its config). */
  restartDaemon(name: string): Promise<void>;
  /** The last lines a daemon logged. */
  daemonLogs(name: string, lines: number): Promise<string>;
  /** The cluster's mesh files (certificates, mesh.json, remotes). */
  meshFiles(): MeshFiles;
  /** The names of the cluster's nodes. @throws ApiError */
  nodes(): Promise<string[]>;
  /** One node's agent status (its status API). @throws when the agent does not answer */
  agentStatus(node: string): Promise<AgentStatus>;
  /** The operator's last status record; undefined when it has written none. */
  operatorStatus(): Promise<OperatorStatus | undefined>;
  /** The clustermesh-apiserver's status endpoint. @throws when it does not answer */
  meshApiserverStatus(timeoutMs?: number): Promise<MeshDaemonStatus>;
  close(): void;
}

/** An operation a target cannot do; code TARGET_NOT_SUPPORTED. */
export class TargetNotSupportedError extends TendrilError {
  constructor(target: string, operation: string, hint: string) {
    super('TARGET_NOT_SUPPORTED', `${operation} is not supported on ${target}`, { hint });
    this.name = 'TargetNotSupportedError';
  }
}

async function applyWith(client: KubeClient, objects: KubeObject[]): Promise<void> {
  for (const obj of objects) {
    const ns = obj.metadata.namespace;
    const live = await client.getOrUndefined(obj.apiVersion, obj.kind, obj.metadata.name!, {
      ...(ns ? { namespace: ns } : {}),
    });
    if (!live) await client.create(obj);
    else
      await client.update({
        ...obj,
        metadata: { ...obj.metadata, resourceVersion: live.metadata.resourceVersion },
      });
  }
}

async function readWith(
  client: KubeClient,
  apiVersion: string,
  kind: string,
  name: string,
  namespace?: string,
): Promise<KubeObject | undefined> {
  return client.getOrUndefined(apiVersion, kind, name, namespace ? { namespace } : {});
}

/** A lab cluster on this machine. */
export class LabTarget implements ClusterTarget {
  readonly kind = 'lab' as const;
  readonly name: string;
  private readonly client: KubeClient;

  constructor(readonly cluster: LabCluster) {
    this.name = cluster.name;
    this.client = new KubeClient(labAdminClientOptions(cluster, { timeoutMs: 10_000 }));
  }

  apply(objects: KubeObject[]): Promise<void> {
    return applyWith(this.client, objects);
  }

  read(apiVersion: string, kind: string, name: string, namespace?: string) {
    return readWith(this.client, apiVersion, kind, name, namespace);
  }

  private configDir(role: DaemonRole, node?: string): string {
    if (role === 'operator') return operatorConfigDir(this.cluster.name);
    const n = node ?? this.cluster.nodes[0]?.name;
    if (!n || !this.cluster.nodes.some((x) => x.name === n))
      throw new TendrilError('TARGET_NO_NODE', `lab cluster ${this.name} has no node "${node}"`, {
        hint: `one of: ${this.cluster.nodes.map((x) => x.name).join(', ')}`,
      });
    return agentConfigDir(this.cluster.name, n);
  }

  async readDaemonConfig(role: DaemonRole, node?: string): Promise<Record<string, string>> {
    return Object.fromEntries(readConfigDir(this.configDir(role, node)).values);
  }

  async writeDaemonConfig(
    role: DaemonRole,
    settings: Record<string, string>,
    node?: string,
  ): Promise<void> {
    writeConfigDir(this.configDir(role, node), settings);
  }

  async daemons(): Promise<DaemonState[]> {
    return daemonStatus(this.cluster.name)
      .filter((d) => d.name.startsWith('tendril-') || d.name.startsWith('clustermesh-'))
      .map((d) => ({
        name: d.name,
        running: d.running,
        restarts: d.restarts,
        ...(d.pid ? { pid: d.pid } : {}),
        ...(d.startedAt ? { startedAt: d.startedAt } : {}),
        ...(d.lastExit ? { lastExit: { code: d.lastExit.code, signal: d.lastExit.signal } } : {}),
      }));
  }

  async nodes(): Promise<string[]> {
    return this.cluster.nodes.map((n) => n.name);
  }

  /** The agent's status API on its Unix socket in the node's directory. */
  agentStatus(node: string): Promise<AgentStatus> {
    return new AgentClient(agentSocketPath(this.cluster.name, node), { timeoutMs: 3000 }).status();
  }

  /** The file the operator rewrites every few seconds. */
  async operatorStatus(): Promise<OperatorStatus | undefined> {
    try {
      return JSON.parse(
        readFileSync(operatorStatusPath(this.cluster.name), 'utf8'),
      ) as OperatorStatus;
    } catch {
      return undefined;
    }
  }

  /** The status endpoint's Unix socket in the mesh directory. */
  meshApiserverStatus(timeoutMs = 4000): Promise<MeshDaemonStatus> {
    return fetchStatus(meshPaths(this.cluster.name).statusSocket, timeoutMs);
  }

  async restartDaemon(name: string): Promise<void> {
    const spec = listDaemonSpecs(this.cluster.name).find((d) => d.name === name);
    if (!spec)
      throw new TendrilError(
        'TARGET_NO_DAEMON',
        `lab cluster ${this.name} runs no daemon ${name}`,
        {
          hint: 'see `tendril status`',
        },
      );
    await removeDaemon(this.cluster.name, name, { wait: true, timeoutMs: 20_000 });
    addDaemon(this.cluster.name, spec);
  }

  async daemonLogs(name: string, lines: number): Promise<string> {
    return logTail(daemonLogPath(this.cluster.name, name), lines);
  }

  meshFiles(): MeshFiles {
    return meshPaths(this.cluster.name);
  }

  close(): void {
    this.client.close();
  }
}

/** Where Tendril's daemons run in a Kubernetes cluster (the manifests' namespace and labels). */
export const K8S_NAMESPACE = 'kube-system';
/** The label every pod of Tendril's manifests carries. */
export const K8S_PART_OF = 'app.kubernetes.io/part-of=tendril';

/** A Kubernetes cluster reached through its API server. */
export class KubernetesTarget implements ClusterTarget {
  readonly kind = 'kubernetes' as const;
  readonly name: string;

  constructor(private readonly client: KubeClient) {
    this.name = client.server;
  }

  /** A target from a kubeconfig file (and context). @throws TendrilError CONFIG_INVALID, K8S_AUTH_UNSUPPORTED */
  static fromKubeconfig(path: string, context?: string): KubernetesTarget {
    const kc = kubeconfigClientOptions({ path, ...(context ? { context } : {}) });
    return new KubernetesTarget(new KubeClient({ ...kc, timeoutMs: 10_000 }));
  }

  apply(objects: KubeObject[]): Promise<void> {
    return applyWith(this.client, objects);
  }

  read(apiVersion: string, kind: string, name: string, namespace?: string) {
    if (apiVersion === 'v1' && kind === 'ConfigMap') return this.readConfigMap(name, namespace);
    return readWith(this.client, apiVersion, kind, name, namespace);
  }

  /** ConfigMaps by their core API path (the client's kind table has only what the lab serves). */
  private static configMapPath(namespace = K8S_NAMESPACE, name?: string): string {
    return `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps${name ? `/${encodeURIComponent(name)}` : ''}`;
  }

  private async readConfigMap(name: string, namespace?: string): Promise<KubeObject | undefined> {
    try {
      return await this.client.request<KubeObject>(
        'GET',
        KubernetesTarget.configMapPath(namespace, name),
      );
    } catch (err) {
      if (err instanceof ApiError && err.httpCode === 404) return undefined;
      throw err;
    }
  }

  /**
   * Writes one object as read-modify-write: with `metadata.resourceVersion`
   * (the version it was read at) an update the API server refuses with 409
   * when someone changed it meanwhile; without, a create (409 when it exists).
   * @throws ApiError
   */
  async write(obj: KubeObject): Promise<void> {
    if (obj.apiVersion === 'v1' && obj.kind === 'ConfigMap') {
      const ns = obj.metadata.namespace;
      if (obj.metadata.resourceVersion)
        await this.client.request('PUT', KubernetesTarget.configMapPath(ns, obj.metadata.name), {
          body: obj,
        });
      else await this.client.request('POST', KubernetesTarget.configMapPath(ns), { body: obj });
    } else if (obj.metadata.resourceVersion) await this.client.update(obj);
    else await this.client.create(obj);
  }

  /** The API path of the `tendril-config` ConfigMap (v1 ConfigMaps are core API on every Kubernetes). */
  private static readonly CONFIG_PATH = `/api/v1/namespaces/${K8S_NAMESPACE}/configmaps/tendril-config`;

  /**
   * The ConfigMap the manifests mount as every daemon's config directory
   * (one ConfigMap for all daemons: `role` and `node` do not select).
   * Absent: no settings.
   */
  async readDaemonConfig(): Promise<Record<string, string>> {
    try {
      const cm = await this.client.request<{ data?: Record<string, string> }>(
        'GET',
        KubernetesTarget.CONFIG_PATH,
      );
      return { ...(cm?.data ?? {}) };
    } catch (err) {
      if (err instanceof ApiError && err.httpCode === 404) return {};
      throw err;
    }
  }

  /**
   * Replaces the `tendril-config` ConfigMap's data (creates it when absent);
   * the daemons see it when the kubelet refreshes the volume, and read it at
   * their next start.
   */
  async writeDaemonConfig(_role: DaemonRole, settings: Record<string, string>): Promise<void> {
    const body = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'tendril-config',
        namespace: K8S_NAMESPACE,
        labels: { 'app.kubernetes.io/part-of': 'tendril' },
      },
      data: settings,
    };
    try {
      const live = await this.client.request<{ metadata?: { resourceVersion?: string } }>(
        'GET',
        KubernetesTarget.CONFIG_PATH,
      );
      await this.client.request('PUT', KubernetesTarget.CONFIG_PATH, {
        body: {
          ...body,
          metadata: { ...body.metadata, resourceVersion: live?.metadata?.resourceVersion },
        },
      });
    } catch (err) {
      if (!(err instanceof ApiError) || err.httpCode !== 404) throw err;
      await this.client.request('POST', `/api/v1/namespaces/${K8S_NAMESPACE}/configmaps`, {
        body,
      });
    }
  }

  /** Tendril's pods (the manifests label them part-of=tendril), running and restarts from their status. */
  async daemons(): Promise<DaemonState[]> {
    interface Pod {
      metadata: { name?: string };
      spec?: { nodeName?: string };
      status?: {
        phase?: string;
        containerStatuses?: Array<{ ready?: boolean; restartCount?: number }>;
      };
    }
    const pods = (
      await this.client.list('v1', 'Pod', { namespace: K8S_NAMESPACE, labelSelector: K8S_PART_OF })
    ).items as unknown as Pod[];
    return pods.map((p) => {
      const cs = p.status?.containerStatuses ?? [];
      return {
        name: p.metadata.name!,
        running: p.status?.phase === 'Running' && cs.every((c) => c.ready !== false),
        restarts: cs.reduce((n, c) => n + (c.restartCount ?? 0), 0),
        ...(p.spec?.nodeName ? { node: p.spec.nodeName } : {}),
      };
    });
  }

  /** Deletes the daemon's pod; its DaemonSet or Deployment makes a new one. */
  async restartDaemon(name: string): Promise<void> {
    try {
      await this.client.delete('v1', 'Pod', name, { namespace: K8S_NAMESPACE });
    } catch (err) {
      if (err instanceof ApiError && err.httpCode === 404)
        throw new TendrilError('TARGET_NO_DAEMON', `no pod ${K8S_NAMESPACE}/${name}`, {
          hint: 'see the pods with `kubectl -n kube-system get pods -l app.kubernetes.io/part-of=tendril`',
          cause: err,
        });
      throw err;
    }
  }

  /**
   * The last `lines` lines of a Tendril pod's log (`name` is the pod, or
   * `pod/container` for a pod with several containers), through the API
   * server's pods/log.
   * @throws TendrilError TARGET_NO_DAEMON (no such pod), TargetNotSupportedError
   *   when the API server does not serve pods/log.
   */
  async daemonLogs(name: string, lines: number): Promise<string> {
    const [pod, container] = name.split('/', 2) as [string, string | undefined];
    const q = new URLSearchParams({ tailLines: String(lines) });
    if (container) q.set('container', container);
    const path = `/api/v1/namespaces/${K8S_NAMESPACE}/pods/${encodeURIComponent(pod)}/log?${q}`;
    try {
      return await this.client.requestText(path);
    } catch (err) {
      if (!(err instanceof ApiError) || err.httpCode !== 404) throw err;
      if (!(await this.read('v1', 'Pod', pod, K8S_NAMESPACE)))
        throw new TendrilError('TARGET_NO_DAEMON', `no pod ${K8S_NAMESPACE}/${pod}`, {
          hint: 'see the pods with `kubectl -n kube-system get pods -l app.kubernetes.io/part-of=tendril`',
          cause: err,
        });
      throw new TargetNotSupportedError(
        this.name,
        `reading the logs of ${name}`,
        `this API server does not serve pods/log; run \`kubectl -n ${K8S_NAMESPACE} logs ${pod}\` against a server that does`,
      );
    }
  }

  /** The Node objects' names. */
  async nodes(): Promise<string[]> {
    return (await this.client.list('v1', 'Node')).items.map((n) => n.metadata.name!).sort();
  }

  async agentStatus(node: string): Promise<AgentStatus> {
    throw new TargetNotSupportedError(
      this.name,
      `the status API of the agent on ${node}`,
      `it is a Unix socket on the node (/var/run/tendril/agent.sock): run \`kubectl -n ${K8S_NAMESPACE} get pods -l k8s-app=tendril-agent -o wide\` and read its logs`,
    );
  }

  async operatorStatus(): Promise<OperatorStatus | undefined> {
    throw new TargetNotSupportedError(
      this.name,
      "the operator's status record",
      `it is a file in the operator's pod: see \`kubectl -n ${K8S_NAMESPACE} logs deploy/tendril-operator\``,
    );
  }

  async meshApiserverStatus(): Promise<MeshDaemonStatus> {
    throw new TargetNotSupportedError(
      this.name,
      "the clustermesh-apiserver's status endpoint",
      `it is a Unix socket in its pod; see \`kubectl -n ${K8S_NAMESPACE} logs deploy/clustermesh-apiserver -c apiserver\``,
    );
  }

  meshFiles(): MeshFiles {
    throw new TargetNotSupportedError(
      this.name,
      'clustermesh files on disk',
      'on Kubernetes the mesh certificates and remotes live in the clustermesh-apiserver Secrets of the rendered manifests',
    );
  }

  close(): void {
    this.client.close();
  }
}

/**
 * A cluster resolved once for a command: its context, its target, what was
 * installed, and its mesh (when enabled). The install wing passes this value
 * down instead of recomputing paths from a name at each step.
 */
export interface ResolvedCluster {
  context: string;
  /** The lab cluster (lab targets). */
  cluster: LabCluster;
  target: LabTarget;
  install: InstallState | undefined;
  mesh: MeshConfig | undefined;
  meshFiles: MeshFiles;
}

/**
 * Resolves a CLI context to a lab cluster and reads its install and mesh records once.
 * @throws TendrilError install.NotALabCluster, config.* (see resolveInstallTarget)
 */
export function resolveCluster(context?: string): ResolvedCluster {
  const t = resolveInstallTarget(context);
  return resolvedLabCluster(t.context, t.cluster);
}

/** The ResolvedCluster of a lab cluster already known. */
export function resolvedLabCluster(context: string, cluster: LabCluster): ResolvedCluster {
  return {
    context,
    cluster,
    target: new LabTarget(cluster),
    install: readInstallState(cluster.name),
    mesh: readMeshConfig(cluster.name),
    meshFiles: meshPaths(cluster.name),
  };
}

/** Reads a file of a resolved cluster's mesh (e.g. its CA certificate). */
export function readMeshFile(c: ResolvedCluster, which: keyof MeshFiles): string {
  return readFileSync(c.meshFiles[which], 'utf8');
}

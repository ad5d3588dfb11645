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
import { resourceForKind } from '../k8s/resources.js';
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
import { apiServerURL, type LabCluster } from '../lab/state.js';
import { agentConfigDir, operatorConfigDir } from './lab-daemon-config.js';
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
    this.client = new KubeClient({ server: apiServerURL(cluster), timeoutMs: 10_000 });
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
      .map((d) => ({ name: d.name, running: d.running, restarts: d.restarts }));
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
    return readWith(this.client, apiVersion, kind, name, namespace);
  }

  /** @throws TargetNotSupportedError while KubeClient's resource table lacks ConfigMap. */
  private requireConfigMaps(operation: string): void {
    if (resourceForKind('v1', 'ConfigMap')) return;
    throw new TargetNotSupportedError(
      this.name,
      operation,
      "Tendril's API client does not know the ConfigMap kind yet (src/k8s/resources.ts); " +
        'apply the rendered manifests with kubectl: `tendril install --dry-run -o yaml | kubectl apply -f -`',
    );
  }

  /** The ConfigMap the manifests mount as every daemon's config directory. */
  async readDaemonConfig(): Promise<Record<string, string>> {
    this.requireConfigMaps('reading the tendril-config ConfigMap');
    const cm = await this.read('v1', 'ConfigMap', 'tendril-config', K8S_NAMESPACE);
    return { ...((cm as { data?: Record<string, string> } | undefined)?.data ?? {}) };
  }

  async writeDaemonConfig(_role: DaemonRole, settings: Record<string, string>): Promise<void> {
    this.requireConfigMaps('writing the tendril-config ConfigMap');
    await this.apply([
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'tendril-config', namespace: K8S_NAMESPACE },
        data: settings,
      } as KubeObject,
    ]);
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

  async daemonLogs(name: string): Promise<string> {
    throw new TargetNotSupportedError(
      this.name,
      `reading the logs of ${name}`,
      `run \`kubectl -n ${K8S_NAMESPACE} logs ${name}\` (pod logs go through the kubelet, which Tendril's client does not reach)`,
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

/**
 * The lab kubelet: one per node, in the node's network namespace. Registers
 * the Node (InternalIP, podCIDR, Ready, role label and control-plane taint),
 * keeps its Ready heartbeat, watches the pods bound to the node and gives each
 * a PodWorker. Pods that vanish from the API (or that a previous kubelet left
 * on disk) are cleaned up by UID.
 */
import { isLabReflection } from '../daemon-pods.js';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeObject } from '../../k8s/objects.js';
import { ApiError } from '../../k8s/status.js';
import type { Logger } from '../../util/log.js';
import { clusterDir } from '../../util/paths.js';
import { cgroupTree, removeCgroupTree } from '../cgroup.js';
import { nodeCgroup } from '../layout.js';
import { sleep, signal } from '../proc.js';
import { clusterDNSAddress, type LabCluster, type LabNode } from '../state.js';
import type { LabApi, WatchEvent } from './api.js';
import {
  cleanupPodResources,
  PodWorker,
  type KubeletContext,
  type PodRecord,
} from './pod-worker.js';
import { cgroupPids } from '../cgroup.js';
import { isNotFound, isConflict } from '../../util/errors.js';

/** Kubernetes version the lab kubelet reports. */
export const KUBELET_VERSION = 'v1.29.0-tendril';

const HEARTBEAT_MS = 10_000;

/** The Node object a lab kubelet registers. */
export function nodeObject(cluster: LabCluster, node: LabNode): KubeObject {
  const labels: Record<string, string> = {
    'kubernetes.io/hostname': node.name,
    'kubernetes.io/os': 'linux',
    'kubernetes.io/arch': process.arch === 'x64' ? 'amd64' : process.arch,
    'beta.kubernetes.io/os': 'linux',
    'beta.kubernetes.io/arch': process.arch === 'x64' ? 'amd64' : process.arch,
    'tendril.io/lab-cluster': cluster.name,
  };
  if (node.role === 'control-plane') labels['node-role.kubernetes.io/control-plane'] = '';
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: node.name, labels },
    spec: {
      podCIDR: node.podCIDR,
      podCIDRs: [node.podCIDR],
      ...(node.role === 'control-plane'
        ? { taints: [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }] }
        : {}),
    },
  };
}

/** The Node status a lab kubelet reports. */
export function nodeStatus(node: LabNode, since: string): Record<string, unknown> {
  const now = new Date().toISOString();
  const cond = (type: string, status: string, reason: string, message: string) => ({
    type,
    status,
    lastHeartbeatTime: now,
    lastTransitionTime: since,
    reason,
    message,
  });
  return {
    addresses: [
      { type: 'InternalIP', address: node.ip },
      { type: 'Hostname', address: node.name },
    ],
    conditions: [
      cond(
        'MemoryPressure',
        'False',
        'KubeletHasSufficientMemory',
        'kubelet has sufficient memory available',
      ),
      cond('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
      cond(
        'PIDPressure',
        'False',
        'KubeletHasSufficientPID',
        'kubelet has sufficient PID available',
      ),
      cond('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status'),
    ],
    capacity: { cpu: '2', memory: '4Gi', pods: '110' },
    allocatable: { cpu: '2', memory: '4Gi', pods: '110' },
    nodeInfo: {
      kubeletVersion: KUBELET_VERSION,
      kubeProxyVersion: KUBELET_VERSION,
      operatingSystem: 'linux',
      architecture: process.arch === 'x64' ? 'amd64' : process.arch,
      containerRuntimeVersion: 'tendril-lab://1',
      osImage: 'Tendril lab node',
      kernelVersion: '',
      machineID: '',
      systemUUID: '',
      bootID: '',
    },
  };
}

/** One node's kubelet. */
export class Kubelet {
  private readonly workers = new Map<string, PodWorker>();
  private readonly ctx: KubeletContext;
  private abort = new AbortController();
  private heartbeat?: NodeJS.Timeout;
  private stopped = false;
  private readonly since = new Date().toISOString();
  private useFieldSelector = true;

  constructor(
    readonly cluster: LabCluster,
    readonly node: LabNode,
    readonly api: LabApi,
    private readonly log: Logger,
  ) {
    this.ctx = {
      cluster,
      node,
      api,
      log,
      dnsIP: clusterDNSAddress(cluster),
      onGone: (uid) => this.workers.delete(uid),
    };
  }

  /** Registers the node, then runs the pod list/watch loop until stop(). */
  async run(): Promise<void> {
    this.killOrphanProcesses();
    await this.register();
    this.heartbeat = setInterval(() => void this.beat(), HEARTBEAT_MS);
    let first = true;
    let failures = 0;
    while (!this.stopped) {
      try {
        const rv = await this.relist(first);
        first = false;
        failures = 0;
        await this.watchFrom(rv);
      } catch (err) {
        if (this.stopped) break;
        if (err instanceof ApiError && err.httpCode === 400 && this.useFieldSelector) {
          // an API server without the spec.nodeName field selector: filter here
          this.useFieldSelector = false;
          continue;
        }
        // 410 Gone (history compacted) just means relist; anything else is worth a line, once per outage
        const gone = err instanceof ApiError && err.httpCode === 410;
        if (!gone && failures === 0) this.log.warn('pod watch failed; relisting', { err });
        failures = gone ? 0 : failures + 1;
        await sleep(Math.min(200 * 2 ** failures, 5000));
      }
    }
  }

  /** Stops watching (pods keep running; the next kubelet adopts or restarts them). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.heartbeat);
    this.abort.abort();
  }

  /** Number of pods this kubelet manages (tests). */
  podCount(): number {
    return this.workers.size;
  }

  /**
   * Container processes of a previous kubelet are orphans now (their exit
   * statuses cannot be collected): stop them; the pods' workers start them again.
   */
  private killOrphanProcesses(): void {
    for (const dir of cgroupTree(nodeCgroup(this.cluster.name, this.node.name))) {
      for (const pid of cgroupPids(dir)) signal(pid, 'SIGKILL');
    }
  }

  private async register(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        try {
          await this.api.create('/api/v1/nodes', nodeObject(this.cluster, this.node));
        } catch (err) {
          if (!isConflict(err)) throw err;
          const obj = nodeObject(this.cluster, this.node);
          await this.api.mergePatch(`/api/v1/nodes/${this.node.name}`, {
            metadata: { labels: obj.metadata.labels },
            spec: obj.spec,
          });
        }
        await this.beat(true);
        this.log.info('node registered', {
          node: this.node.name,
          ip: this.node.ip,
          podCIDR: this.node.podCIDR,
        });
        return;
      } catch (err) {
        if (this.stopped) return;
        if (attempt > 0 && attempt % 20 === 0)
          this.log.warn('registering the node failed; retrying', { err });
        await sleep(attempt < 100 ? 100 : 1000);
      }
    }
  }

  private async beat(throwErrors = false): Promise<void> {
    try {
      await this.api.mergePatch(`/api/v1/nodes/${this.node.name}/status`, {
        status: nodeStatus(this.node, this.since),
      });
    } catch (err) {
      if (throwErrors) throw err;
      if (isNotFound(err)) {
        void this.register();
        return;
      }
      this.log.warn('node heartbeat failed', { err });
    }
  }

  private mine(pod: KubeObject): boolean {
    // a reflection of a supervised daemon (its mirror pod) runs no container here
    return pod.spec?.nodeName === this.node.name && !isLabReflection(pod);
  }

  private query(): Record<string, string> {
    return this.useFieldSelector ? { fieldSelector: `spec.nodeName=${this.node.name}` } : {};
  }

  /** Lists the node's pods, reconciles workers, and returns the list's resourceVersion. */
  private async relist(first: boolean): Promise<string> {
    const list = await this.api.list('/api/v1/pods', this.query());
    const pods = list.items.filter((p) => this.mine(p));
    const seen = new Set<string>();
    for (const p of pods) {
      seen.add(p.metadata.uid!);
      this.handle({ type: 'ADDED', object: p });
    }
    for (const [uid, w] of this.workers) if (!seen.has(uid)) w.vanished();
    if (first) await this.cleanupStale(seen);
    return list.metadata.resourceVersion;
  }

  private async watchFrom(rv: string): Promise<void> {
    this.abort = new AbortController();
    await this.api.watch(
      '/api/v1/pods',
      { ...this.query(), resourceVersion: rv },
      (ev) => this.handle(ev),
      this.abort.signal,
    );
  }

  private handle(ev: WatchEvent): void {
    if (ev.type === 'BOOKMARK' || ev.type === 'ERROR') return;
    const pod = ev.object;
    const uid = pod.metadata.uid;
    if (!uid) return;
    const w = this.workers.get(uid);
    if (ev.type === 'DELETED' || !this.mine(pod)) {
      w?.vanished();
      return;
    }
    if (w) {
      w.update(pod);
      return;
    }
    const nw = new PodWorker(this.ctx, pod);
    this.workers.set(uid, nw);
    nw.kick();
  }

  /** Pods on disk for this node that the API no longer has (deleted while no kubelet ran). */
  private async cleanupStale(live: Set<string>): Promise<void> {
    const dir = join(clusterDir(this.cluster.name), 'pods');
    if (existsSync(dir)) {
      for (const d of readdirSync(dir)) {
        const uid = d.split('_')[2];
        if (!uid || live.has(uid)) continue;
        let rec: PodRecord | undefined;
        try {
          rec = JSON.parse(readFileSync(join(dir, d, 'pod.json'), 'utf8')) as PodRecord;
        } catch {
          rec = undefined;
        }
        if (rec && rec.node !== this.node.name) continue;
        if (!rec) continue;
        this.log.info('removing a pod deleted while the kubelet was down', {
          uid,
          pod: `${rec.namespace}/${rec.name}`,
        });
        await cleanupPodResources(this.ctx, join(dir, d), this.log);
      }
    }
    // cgroups of pods that have no record at all
    const ncg = nodeCgroup(this.cluster.name, this.node.name);
    if (existsSync(ncg)) {
      for (const e of readdirSync(ncg, { withFileTypes: true })) {
        if (e.isDirectory() && !live.has(e.name) && /^[0-9a-f-]{8,}$/.test(e.name))
          await removeCgroupTree(join(ncg, e.name)).catch(() => {});
      }
    }
  }
}

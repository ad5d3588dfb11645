/**
 * What the lab supervisor's reflector writes for the daemons whose spec has
 * `reflect` (pure functions; the I/O is src/lab/daemon-reflector.ts): the
 * workload the install wing rendered for a real cluster (names, labels such
 * as `k8s-app`, container names, service accounts, tolerations) made true to
 * the lab — host network on the daemon's node, the command the supervisor
 * runs, no volumes or init containers (the lab writes those files itself) —
 * and one pod per daemon whose status is the supervisor's record of it.
 * Daemons of one Deployment (clustermesh-apiserver and its etcd) share its
 * one pod; a DaemonSet's daemons (the agents) get a pod per node.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:os';
import type { KubeObject } from '../k8s/objects.js';
import type { DaemonSpec } from './daemons.js';
import { projectRoot } from './daemons.js';
import type { LabCluster, LabNode } from './state.js';
import {
  LAB_DAEMONS_ANNOTATION,
  LAB_REFLECTION_ANNOTATION,
  LAB_REFLECTION_OWNER,
  formatPodDaemons,
} from './daemon-pods.js';

/** On a reflected workload: a hash of what the reflector wrote (it rewrites the object when it changes). */
export const LAB_REFLECTION_HASH_ANNOTATION = 'tendril.io/lab-reflection-hash';
/** On a reflected pod: a hash of its daemons' specs (a changed spec gets a new pod, as a rollout). */
export const LAB_SPEC_HASH_ANNOTATION = 'tendril.io/lab-spec-hash';
/** On a reflected pod: `{"container": restarts}`, the supervisor's restart counts when the pod was made. */
export const LAB_RESTARTS_BASE_ANNOTATION = 'tendril.io/lab-restarts-base';
/** The namespace of every reflection (the manifests'). */
export const REFLECTION_NAMESPACE = 'kube-system';

/** One daemon as the supervisor knows it. */
export interface SupervisedDaemon {
  name: string;
  spec: DaemonSpec;
  running: boolean;
  pid?: number;
  /** When the current (or last) process started. */
  startedAt?: string;
  /** Restarts after exits (the supervisor's count, kept across supervisors). */
  restarts: number;
  lastExit?: { code: number | null; signal: string | null; at: string };
  /** Ended and not restarted (restart policy). */
  finished: boolean;
}

type WorkloadKind = 'Deployment' | 'DaemonSet';

/** Which workload and container a supervised daemon is (its spec's `reflect`), or undefined. */
export function daemonRole(
  spec: DaemonSpec,
): { kind: WorkloadKind; workload: string; container: string } | undefined {
  const r = spec.reflect;
  if (!r?.workload?.metadata?.name) return undefined;
  return { kind: r.kind, workload: r.workload.metadata.name, container: r.container };
}

/** One reflected pod the supervisor's daemons call for. */
export interface WantedPod {
  /** `Deployment/NAME` or `DaemonSet/NAME/NODE`. */
  key: string;
  kind: WorkloadKind;
  workload: string;
  node: LabNode;
  /** Containers in the template's order, each with its daemon. */
  containers: Array<{ name: string; daemon: SupervisedDaemon }>;
  /** The pod's template (labels, annotations, spec without nodeName). */
  template: { metadata: KubeObject['metadata']; spec: Record<string, unknown> };
  specHash: string;
  /** pod-template-hash (Deployment) or controller-revision-hash (DaemonSet) of the workload. */
  templateHash: string;
}

/** What to write: the workloads and their pods. */
export interface Reflection {
  workloads: KubeObject[];
  pods: WantedPod[];
}

/** The key of a stored reflected pod (see {@link WantedPod.key}). */
export function podKey(pod: KubeObject): string | undefined {
  const owner = (pod.metadata.ownerReferences ?? []).find((r) => r.controller);
  if (!owner) return undefined;
  return owner.kind === 'DaemonSet'
    ? `DaemonSet/${owner.name}/${pod.spec?.nodeName ?? ''}`
    : `${owner.kind}/${owner.name}`;
}

/** A hash in Kubernetes' safe alphabet (as pod-template-hash). */
export function safeHash(x: unknown): string {
  const digest = createHash('sha256').update(JSON.stringify(x)).digest();
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  let v = digest.readUInt32BE(0);
  let s = '';
  for (let i = 0; i < 10 && (v > 0 || s.length === 0); i++) {
    s += alphabet[v % alphabet.length];
    v = Math.floor(v / alphabet.length);
  }
  return s;
}

/** The image named when the rendered container names none (the manifests' default). */
const IMAGE = 'localhost/tendril:0.1.0';

/** Environment entries that only make the supervisor restart a daemon (install/enable nonces). */
const NONCE_ENV = /^TENDRIL_[A-Z_]*(GEN|_AT)$/;

function nodeOf(c: LabCluster, spec: DaemonSpec): LabNode {
  const cp = c.nodes.find((n) => n.role === 'control-plane') ?? c.nodes[0]!;
  return (spec.netns && c.nodes.find((n) => n.netns === spec.netns)) || cp;
}

/** `s` with every occurrence of `node` (a whole name, not a prefix of another) replaced by `$(K8S_NODE_NAME)`. */
function nodeVar(s: string, node: string): string {
  const esc = node.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return s.replace(new RegExp(`${esc}(?![a-z0-9-]*[a-z0-9])`, 'g'), '$(K8S_NODE_NAME)');
}

interface RenderedContainer {
  name: string;
  [k: string]: unknown;
}

/** A rendered container made true to the lab: the daemon's command, cwd and environment; no mounts. */
function labContainer(
  rendered: RenderedContainer | undefined,
  name: string,
  d: SupervisedDaemon,
  node: string | undefined,
  image: string,
): Record<string, unknown> {
  const { volumeMounts: _vm, env: _env, args: _args, ...rest } = rendered ?? { name, image };
  const sub = (s: string) => (node ? nodeVar(s, node) : s);
  const env = Object.entries(d.spec.env ?? {})
    .filter(([k]) => !NONCE_ENV.test(k))
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => ({ name: k, value: sub(v) }));
  if (node)
    env.unshift({
      name: 'K8S_NODE_NAME',
      valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } },
    } as never);
  return {
    ...rest,
    name,
    image: (rest as { image?: string }).image ?? image,
    command: d.spec.command.map(sub),
    workingDir: d.spec.cwd ?? projectRoot(),
    ...(env.length ? { env } : {}),
  };
}

/**
 * The workloads and pods for the supervisor's daemons: one DaemonSet for the
 * agents (one pod per agent), one Deployment per other workload (one pod,
 * its containers the daemons present). Pure.
 */
export function desiredReflection(c: LabCluster, daemons: readonly SupervisedDaemon[]): Reflection {
  const groups = new Map<
    string,
    {
      kind: WorkloadKind;
      workload: string;
      node: LabNode;
      list: Array<{ container: string; d: SupervisedDaemon }>;
    }
  >();
  for (const d of [...daemons].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const role = daemonRole(d.spec);
    if (!role) continue;
    const node = nodeOf(c, d.spec);
    const key =
      role.kind === 'DaemonSet'
        ? `DaemonSet/${role.workload}/${node.name}`
        : `Deployment/${role.workload}`;
    const g = groups.get(key) ?? { kind: role.kind, workload: role.workload, node, list: [] };
    g.list.push({ container: role.container, d });
    groups.set(key, g);
  }
  const workloads = new Map<string, KubeObject>();
  const pods: WantedPod[] = [];
  for (const [key, g] of groups) {
    const rendered = g.list[0]!.d.spec.reflect!.workload;
    const rtpl = (rendered.spec.template ?? { spec: {} }) as {
      metadata?: KubeObject['metadata'];
      spec: Record<string, unknown>;
    };
    const rcontainers = (rtpl.spec.containers ?? []) as RenderedContainer[];
    // the template's container order; daemons the renderer does not name go last
    const order = (n: string) => {
      const i = rcontainers.findIndex((x) => x.name === n);
      return i < 0 ? rcontainers.length : i;
    };
    const list = [...g.list].sort((a, b) => order(a.container) - order(b.container));
    const nodeName = g.kind === 'DaemonSet' ? g.node.name : undefined;
    const { volumes: _v, initContainers: _i, containers: _c, ...specRest } = rtpl.spec;
    const spec: Record<string, unknown> = {
      ...specRest,
      hostNetwork: true,
      dnsPolicy: 'ClusterFirstWithHostNet',
      restartPolicy: 'Always',
      containers: list.map(({ container, d }) =>
        labContainer(
          rcontainers.find((x) => x.name === container),
          container,
          d,
          nodeName,
          IMAGE,
        ),
      ),
    };
    const template = {
      metadata: {
        labels: { ...(rtpl.metadata?.labels ?? {}) },
        annotations: {
          ...(rtpl.metadata?.annotations ?? {}),
          ...(list.length > 1
            ? { 'kubectl.kubernetes.io/default-container': defaultContainer(list) }
            : {}),
        },
      },
      spec,
    };
    const templateHash = safeHash(template);
    const specHash = safeHash(list.map(({ d }) => ({ ...d.spec, env: d.spec.env ?? {} })));
    pods.push({
      key,
      kind: g.kind,
      workload: g.workload,
      node: g.node,
      containers: list.map(({ container, d }) => ({ name: container, daemon: d })),
      template,
      specHash,
      templateHash,
    });
    const wkey = `${g.kind}/${g.workload}`;
    if (workloads.has(wkey)) continue; // the DaemonSet's template: its first node's
    const w: KubeObject = {
      apiVersion: 'apps/v1',
      kind: g.kind,
      metadata: {
        name: g.workload,
        namespace: REFLECTION_NAMESPACE,
        labels: { ...(rendered.metadata.labels ?? {}) },
        annotations: { [LAB_REFLECTION_ANNOTATION]: LAB_REFLECTION_OWNER },
      },
      spec:
        g.kind === 'DaemonSet'
          ? {
              selector: rendered.spec.selector,
              updateStrategy: rendered.spec.updateStrategy,
              template,
            }
          : {
              replicas: 1,
              selector: rendered.spec.selector,
              ...(rendered.spec.strategy ? { strategy: rendered.spec.strategy } : {}),
              template,
            },
    } as KubeObject;
    w.metadata.annotations![LAB_REFLECTION_HASH_ANNOTATION] = safeHash(w);
    workloads.set(wkey, w);
  }
  return { workloads: [...workloads.values()], pods };
}

function defaultContainer(list: Array<{ container: string }>): string {
  // the daemon the workload is named for (clustermesh-apiserver's apiserver), else the first
  return list.find((x) => x.container === 'apiserver')?.container ?? list[0]!.container;
}

/** A new pod for `w` (the API server fills uid and times), owned by the stored workload `owner`. */
export function newPod(w: WantedPod, owner: KubeObject, suffix: string): KubeObject {
  const labels: Record<string, string> = { ...(w.template.metadata.labels ?? {}) };
  if (w.kind === 'Deployment') labels['pod-template-hash'] = w.templateHash;
  else {
    labels['controller-revision-hash'] = w.templateHash;
    labels['pod-template-generation'] = String(owner.metadata.generation ?? 1);
  }
  const base = Object.fromEntries(w.containers.map((c) => [c.name, c.daemon.restarts]));
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name:
        w.kind === 'Deployment'
          ? `${w.workload}-${w.templateHash}-${suffix}`
          : `${w.workload}-${suffix}`,
      namespace: REFLECTION_NAMESPACE,
      labels,
      annotations: {
        ...(w.template.metadata.annotations ?? {}),
        [LAB_REFLECTION_ANNOTATION]: LAB_REFLECTION_OWNER,
        [LAB_DAEMONS_ANNOTATION]: formatPodDaemons(
          new Map(w.containers.map((c) => [c.name, c.daemon.name])),
        ),
        [LAB_SPEC_HASH_ANNOTATION]: w.specHash,
        [LAB_RESTARTS_BASE_ANNOTATION]: JSON.stringify(base),
      },
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: w.kind,
          name: w.workload,
          uid: owner.metadata.uid!,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: { ...w.template.spec, nodeName: w.node.name },
  } as KubeObject;
}

interface Condition {
  type: string;
  status: string;
  lastTransitionTime?: string;
  lastProbeTime?: null;
  reason?: string;
  message?: string;
}

function exitCodeOf(e: { code: number | null; signal: string | null }): number {
  if (e.code !== null) return e.code;
  const n = e.signal ? (constants.signals as Record<string, number>)[e.signal] : undefined;
  return 128 + (n ?? 0);
}

/** Keeps a condition's lastTransitionTime while its status stays. */
function condition(
  prev: Condition[] | undefined,
  type: string,
  ok: boolean,
  now: string,
  extra: Partial<Condition> = {},
): Condition {
  const status = ok ? 'True' : 'False';
  const old = prev?.find((x) => x.type === type);
  return {
    type,
    status,
    lastProbeTime: null,
    lastTransitionTime:
      old && old.status === status && old.lastTransitionTime ? old.lastTransitionTime : now,
    ...extra,
  };
}

/**
 * The status of a stored reflected pod from its daemons: phase, conditions,
 * host/pod IP = the node's address (host network), and per container the
 * state, `restartCount` (the supervisor's restarts since the pod was made),
 * `lastState` and readiness (the process runs).
 */
export function podStatus(
  w: WantedPod,
  pod: KubeObject,
  now = new Date().toISOString(),
): Record<string, unknown> {
  let base: Record<string, number> = {};
  try {
    base = JSON.parse(pod.metadata.annotations?.[LAB_RESTARTS_BASE_ANNOTATION] ?? '{}') as Record<
      string,
      number
    >;
  } catch {
    base = {};
  }
  const created = pod.metadata.creationTimestamp ?? now;
  const images = new Map(
    ((pod.spec?.containers ?? []) as Array<{ name: string; image: string }>).map((c) => [
      c.name,
      c.image,
    ]),
  );
  const statuses = w.containers.map(({ name, daemon: d }) => {
    const restartCount = Math.max(0, d.restarts - (base[name] ?? d.restarts));
    const exit = d.lastExit;
    const terminated = exit
      ? {
          exitCode: exitCodeOf(exit),
          reason: exitCodeOf(exit) === 0 ? 'Completed' : 'Error',
          ...(exit.signal
            ? { signal: (constants.signals as Record<string, number>)[exit.signal] ?? 0 }
            : {}),
          finishedAt: exit.at,
        }
      : undefined;
    let state: Record<string, unknown>;
    if (d.running && d.startedAt) state = { running: { startedAt: d.startedAt } };
    else if (d.finished && terminated)
      state = { terminated: { ...terminated, ...(d.startedAt ? { startedAt: d.startedAt } : {}) } };
    else if (terminated)
      state = {
        waiting: {
          reason: 'CrashLoopBackOff',
          message: `back-off restarting failed container ${name} in pod ${pod.metadata.name}_${pod.metadata.namespace}(${pod.metadata.uid})`,
        },
      };
    else state = { waiting: { reason: 'ContainerCreating' } };
    // the last exit belongs to this pod when it came after the pod was made
    const lastState =
      terminated && exit && restartCount > 0 && !state.terminated ? { terminated } : {};
    return {
      name,
      image: images.get(name) ?? '',
      imageID: '',
      ...(d.running && d.pid ? { containerID: `supervisor://${d.name}/${d.pid}` } : {}),
      ready: d.running,
      started: d.running,
      restartCount,
      state,
      lastState,
    };
  });
  const allFinished = w.containers.every((c) => c.daemon.finished);
  const everStarted = w.containers.some((c) => c.daemon.startedAt !== undefined);
  const phase = allFinished
    ? w.containers.every((c) => c.daemon.lastExit && exitCodeOf(c.daemon.lastExit) === 0)
      ? 'Succeeded'
      : 'Failed'
    : everStarted
      ? 'Running'
      : 'Pending';
  const ready = statuses.every((s) => s.ready);
  const notReady = statuses.filter((s) => !s.ready).map((s) => s.name);
  const why = ready
    ? {}
    : {
        reason: 'ContainersNotReady',
        message: `containers with unready status: [${notReady.join(' ')}]`,
      };
  const prev = pod.status?.conditions as Condition[] | undefined;
  const ip = w.node.ip;
  return {
    phase,
    conditions: [
      condition(prev, 'PodReadyToStartContainers', true, now),
      condition(prev, 'Initialized', true, now),
      condition(prev, 'Ready', ready, now, why),
      condition(prev, 'ContainersReady', ready, now, why),
      condition(prev, 'PodScheduled', true, now),
    ],
    hostIP: ip,
    hostIPs: [{ ip }],
    podIP: ip,
    podIPs: [{ ip }],
    startTime: created,
    qosClass: 'BestEffort',
    containerStatuses: statuses,
  };
}

/**
 * A reflected workload's status from its pods' statuses (as the Deployment
 * and DaemonSet controllers count): ready = every container ready.
 */
export function workloadStatus(
  w: KubeObject,
  pods: KubeObject[],
  desiredNodes: number,
  hash: string,
  now = new Date().toISOString(),
): Record<string, unknown> {
  const hashLabel = w.kind === 'DaemonSet' ? 'controller-revision-hash' : 'pod-template-hash';
  const readyPods = pods.filter((p) =>
    ((p.status?.conditions ?? []) as Condition[]).some(
      (c) => c.type === 'Ready' && c.status === 'True',
    ),
  );
  const updated = pods.filter((p) => p.metadata.labels?.[hashLabel] === hash).length;
  const gen = w.metadata.generation ?? 1;
  if (w.kind === 'DaemonSet') {
    const unavailable = Math.max(0, desiredNodes - readyPods.length);
    return {
      currentNumberScheduled: pods.length,
      desiredNumberScheduled: desiredNodes,
      numberMisscheduled: 0,
      numberReady: readyPods.length,
      numberAvailable: readyPods.length,
      ...(unavailable ? { numberUnavailable: unavailable } : {}),
      updatedNumberScheduled: updated,
      observedGeneration: gen,
    };
  }
  const prev = w.status?.conditions as Array<Condition & { lastUpdateTime?: string }> | undefined;
  const updateTime = (type: string, ok: boolean) => {
    const old = prev?.find((x) => x.type === type);
    return old && old.status === (ok ? 'True' : 'False') && old.lastUpdateTime
      ? old.lastUpdateTime
      : now;
  };
  const available = readyPods.length >= 1;
  const unavailable = Math.max(0, pods.length - readyPods.length);
  return {
    observedGeneration: gen,
    replicas: pods.length,
    updatedReplicas: updated,
    readyReplicas: readyPods.length,
    availableReplicas: readyPods.length,
    ...(unavailable ? { unavailableReplicas: unavailable } : {}),
    conditions: [
      {
        ...condition(prev, 'Available', available, now),
        lastUpdateTime: updateTime('Available', available),
        reason: available ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable',
        message: available
          ? 'Deployment has minimum availability.'
          : 'Deployment does not have minimum availability.',
      },
      {
        ...condition(prev, 'Progressing', true, now),
        lastUpdateTime: updateTime('Progressing', true),
        reason: 'NewReplicaSetAvailable',
        message: `ReplicaSet "${w.metadata.name}-${hash}" has successfully progressed.`,
      },
    ].map(({ lastProbeTime: _p, ...c }) => c),
  };
}

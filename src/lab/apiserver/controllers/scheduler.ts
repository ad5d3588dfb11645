/**
 * A scheduler that binds unscheduled pods (no spec.nodeName, not being
 * deleted) to Ready, schedulable nodes: it honours spec.nodeSelector and
 * NoSchedule/NoExecute taints (with tolerations), skips control-plane nodes
 * while any worker fits (kind taints its control plane), and spreads pods by
 * choosing the node with the fewest pods (ties by name). Sets spec.nodeName and
 * the PodScheduled condition; a pod that fits nowhere gets PodScheduled=False
 * reason Unschedulable and is retried when nodes change.
 */
import { clone } from '../../../k8s/mergepatch.js';
import { isNodeReady, type KubeObject, type PodCondition } from '../../../k8s/objects.js';
import { infoByKind, type ResourceInfo } from '../../../k8s/resources.js';
import type { Logger } from '../../../util/log.js';
import type { EventRecorder } from '../events.js';
import { nowTimestamp, type Registry } from '../registry.js';
import { QueueController, type WatchHandler } from './controller.js';

const POD = infoByKind('Pod');
const NODE = infoByKind('Node');
const CONTROL_PLANE_LABEL = 'node-role.kubernetes.io/control-plane';

interface Taint {
  key: string;
  value?: string;
  effect: string;
}
interface Toleration {
  key?: string;
  operator?: string;
  value?: string;
  effect?: string;
}

function tolerates(tols: Toleration[], t: Taint): boolean {
  return tols.some(
    (tol) =>
      (tol.effect === undefined || tol.effect === '' || tol.effect === t.effect) &&
      ((tol.operator === 'Exists' &&
        (tol.key === undefined || tol.key === '' || tol.key === t.key)) ||
        ((tol.operator ?? 'Equal') === 'Equal' &&
          tol.key === t.key &&
          (tol.value ?? '') === (t.value ?? ''))),
  );
}

/** True if the pod may run on the node (readiness, unschedulable, selector, taints). */
export function podFitsNode(pod: KubeObject, node: KubeObject): boolean {
  if (!isNodeReady(node) || node.spec?.unschedulable || node.metadata.deletionTimestamp)
    return false;
  const sel = (pod.spec?.nodeSelector ?? {}) as Record<string, string>;
  for (const [k, v] of Object.entries(sel)) if (node.metadata.labels?.[k] !== v) return false;
  const taints = ((node.spec?.taints ?? []) as Taint[]).filter(
    (t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute',
  );
  const tols = (pod.spec?.tolerations ?? []) as Toleration[];
  return taints.every((t) => tolerates(tols, t));
}

/** Runs the scheduler until stop(). */
export class Scheduler extends QueueController {
  constructor(
    registry: Registry,
    log: Logger,
    private readonly events?: EventRecorder,
  ) {
    super(registry, log, 'scheduler');
  }

  protected watches(): Array<[ResourceInfo, WatchHandler]> {
    return [
      [
        POD,
        (ev) => {
          if (ev.type !== 'DELETED' && !ev.object.spec?.nodeName)
            this.enqueue(ev.object.metadata.namespace, ev.object.metadata.name);
        },
      ],
      [
        NODE,
        () => {
          for (const p of this.registry.scan(POD))
            if (!p.spec?.nodeName && !p.metadata.deletionTimestamp)
              this.enqueue(p.metadata.namespace, p.metadata.name);
        },
      ],
    ];
  }

  /** Binds the pod `key` ("namespace/name") to a node, or marks it Unschedulable. */
  protected async reconcile(key: string): Promise<void> {
    const [ns, name] = key.split('/') as [string, string];
    const pod = this.registry.peek(POD, ns, name);
    if (!pod || pod.spec?.nodeName || pod.metadata.deletionTimestamp) return;
    if (pod.spec?.schedulerName && pod.spec.schedulerName !== 'default-scheduler') return;
    const nodes = this.registry.scan(NODE);
    const fits = nodes.filter((n) => podFitsNode(pod, n));
    const workers = fits.filter((n) => !(CONTROL_PLANE_LABEL in (n.metadata.labels ?? {})));
    const candidates = workers.length > 0 ? workers : fits;
    const next = clone(pod);
    const conds = ((next.status?.conditions ?? []) as PodCondition[]).filter(
      (c) => c.type !== 'PodScheduled',
    );
    if (candidates.length === 0) {
      const prev = ((pod.status?.conditions ?? []) as PodCondition[]).find(
        (c) => c.type === 'PodScheduled',
      );
      const message = `0/${nodes.length} nodes are available: ${nodes.length === 0 ? 'no nodes registered' : `${nodes.length - fits.length} node(s) not ready, unschedulable, tainted or not matching the pod's node selector`}.`;
      if (prev?.status === 'False' && prev.message === message) return;
      next.status = {
        ...(next.status ?? {}),
        conditions: [
          ...conds,
          {
            type: 'PodScheduled',
            status: 'False',
            reason: 'Unschedulable',
            message,
            lastTransitionTime: nowTimestamp(),
          },
        ],
      };
      await this.registry.update(POD, ns, name, next, { subresource: 'status' });
      void this.events?.record(pod, 'Warning', 'FailedScheduling', message);
      return;
    }
    const load = new Map<string, number>();
    for (const p of this.registry.scan(POD)) {
      const n = p.spec?.nodeName;
      if (n && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed')
        load.set(n, (load.get(n) ?? 0) + 1);
    }
    candidates.sort(
      (a, b) =>
        (load.get(a.metadata.name!) ?? 0) - (load.get(b.metadata.name!) ?? 0) ||
        a.metadata.name!.localeCompare(b.metadata.name!),
    );
    const node = candidates[0]!.metadata.name!;
    next.spec.nodeName = node;
    await this.registry.update(POD, ns, name, next);
    const bound = this.registry.get(POD, ns, name);
    const bconds = ((bound.status?.conditions ?? []) as PodCondition[]).filter(
      (c) => c.type !== 'PodScheduled',
    );
    bound.status = {
      ...(bound.status ?? {}),
      conditions: [
        ...bconds,
        { type: 'PodScheduled', status: 'True', lastTransitionTime: nowTimestamp() },
      ],
    };
    await this.registry.update(POD, ns, name, bound, { subresource: 'status' });
    void this.events?.record(
      bound,
      'Normal',
      'Scheduled',
      `Successfully assigned ${ns}/${name} to ${node}`,
    );
    this.log.debug('scheduled pod', { pod: key, node });
  }
}

/**
 * Deployment -> Pods. Tendril keeps no ReplicaSets: a Deployment owns its pods
 * directly (controller ownerReference), each labelled with the template's
 * labels plus `pod-template-hash` (a hash of the template, as Kubernetes
 * computes for ReplicaSets) and named `<deployment>-<hash>-<random5>`.
 * Scale up creates pods, scale down deletes the least useful first
 * (unscheduled, then not ready, then newest). A template change creates the
 * new pods and removes old ones as new ones become Ready (a rolling update).
 * Status: replicas, updatedReplicas, readyReplicas, availableReplicas from pod
 * Ready conditions, observedGeneration, and Available/Progressing conditions.
 */
import { isLabReflection } from '../../daemon-pods.js';
import { createHash } from 'node:crypto';
import { clone, deepEqual } from '../../../k8s/mergepatch.js';
import { controllerOf, isPodReady, type KubeObject } from '../../../k8s/objects.js';
import { infoByKind, type ResourceInfo } from '../../../k8s/resources.js';
import { fromLabelSelector, matchesSelector } from '../../../k8s/selectors.js';
import { ApiError } from '../../../k8s/status.js';
import type { Logger } from '../../../util/log.js';
import { nowTimestamp, randomSuffix, type Registry } from '../registry.js';
import { QueueController, type WatchHandler } from './controller.js';
import { isNotFound } from '../../../util/errors.js';
import type { EventRecorder } from '../events.js';

const DEPLOY = infoByKind('Deployment');
const POD = infoByKind('Pod');

/** The pod-template-hash of a template: 32 bits of a SHA-256 of its JSON, in Kubernetes' safe alphabet. */
export function podTemplateHash(template: unknown): string {
  const digest = createHash('sha256').update(JSON.stringify(template)).digest();
  const n = digest.readUInt32BE(0);
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  let s = '';
  let v = n;
  for (let i = 0; i < 10 && (v > 0 || s.length === 0); i++) {
    s += alphabet[v % alphabet.length];
    v = Math.floor(v / alphabet.length);
  }
  return s;
}

/** Runs the Deployment controller until stop(). */
export class DeploymentController extends QueueController {
  constructor(
    registry: Registry,
    log: Logger,
    private readonly events?: EventRecorder,
  ) {
    super(registry, log, 'deployment');
  }

  protected watches(): Array<[ResourceInfo, WatchHandler]> {
    return [
      [DEPLOY, this.enqueueObject],
      [
        POD,
        (ev) => {
          const owner = controllerOf(ev.object);
          if (owner?.kind === 'Deployment') this.enqueue(ev.object.metadata.namespace, owner.name);
        },
      ],
    ];
  }

  protected async reconcile(key: string): Promise<void> {
    const [ns, name] = key.split('/') as [string, string];
    const d = this.registry.peek(DEPLOY, ns, name);
    if (!d || d.metadata.deletionTimestamp) return; // dependents go through garbage collection
    // the lab supervisor's reflection of a Tendril daemon: it writes the pods (src/lab/daemon-pods.ts)
    if (isLabReflection(d)) return;
    const uid = d.metadata.uid!;
    const sel = fromLabelSelector(d.spec.selector);
    const owned = this.registry
      .scan(POD, { namespace: ns })
      .filter((p) => controllerOf(p)?.uid === uid);
    // Adopt matching orphans, as the ReplicaSet controller does.
    for (const p of this.registry.scan(POD, { namespace: ns })) {
      if (
        !controllerOf(p) &&
        !p.metadata.deletionTimestamp &&
        matchesSelector(sel, p.metadata.labels)
      ) {
        const next = clone(p);
        next.metadata.ownerReferences = [...(p.metadata.ownerReferences ?? []), ownerRef(d)];
        await this.registry.update(POD, ns, p.metadata.name!, next);
        return this.queue.add(key);
      }
    }
    const hash = podTemplateHash(d.spec.template);
    const alive = owned.filter(
      (p) =>
        !p.metadata.deletionTimestamp &&
        p.status?.phase !== 'Failed' &&
        p.status?.phase !== 'Succeeded',
    );
    const current = alive.filter((p) => p.metadata.labels?.['pod-template-hash'] === hash);
    const old = alive.filter((p) => p.metadata.labels?.['pod-template-hash'] !== hash);
    const want = Number(d.spec.replicas ?? 1);
    // Pods that ended (Failed/Succeeded) are replaced: delete them.
    for (const p of owned) {
      if (
        !p.metadata.deletionTimestamp &&
        (p.status?.phase === 'Failed' || p.status?.phase === 'Succeeded')
      ) {
        await this.deleteIgnoringMissing(ns, p.metadata.name!);
      }
    }
    const rs = `${name}-${hash}`;
    if (current.length < want) {
      void this.events?.record(
        d,
        'Normal',
        'ScalingReplicaSet',
        `Scaled up replica set ${rs} from ${current.length} to ${want}`,
      );
      for (let i = current.length; i < want; i++) await this.createPod(d, hash);
    } else if (current.length > want) {
      void this.events?.record(
        d,
        'Normal',
        'ScalingReplicaSet',
        `Scaled down replica set ${rs} from ${current.length} to ${want}`,
      );
      const ranked = [...current].sort(deletionRank);
      for (const p of ranked.slice(0, current.length - want))
        await this.deleteIgnoringMissing(ns, p.metadata.name!, d);
    }
    // Rolling update: keep old pods only while new ones are not yet Ready.
    const newReady = current.filter(isPodReady).length;
    const keepOld = Math.max(0, want - newReady);
    if (old.length > keepOld) {
      const ranked = [...old].sort(deletionRank);
      for (const p of ranked.slice(0, old.length - keepOld))
        await this.deleteIgnoringMissing(ns, p.metadata.name!, d);
    }
    await this.updateStatus(d, hash);
  }

  private async deleteIgnoringMissing(ns: string, name: string, d?: KubeObject): Promise<void> {
    try {
      await this.registry.delete(POD, ns, name);
      if (d) void this.events?.record(d, 'Normal', 'SuccessfulDelete', `Deleted pod: ${name}`);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  private async createPod(d: KubeObject, hash: string): Promise<void> {
    const tpl = clone(d.spec.template ?? {});
    const pod: KubeObject = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `${d.metadata.name}-${hash}-${randomSuffix()}`.slice(0, 253),
        namespace: d.metadata.namespace,
        labels: { ...(tpl.metadata?.labels ?? {}), 'pod-template-hash': hash },
        ...(tpl.metadata?.annotations ? { annotations: tpl.metadata.annotations } : {}),
        ownerReferences: [ownerRef(d)],
      },
      spec: tpl.spec,
    };
    try {
      await this.registry.create(POD, d.metadata.namespace, pod);
      void this.events?.record(
        d,
        'Normal',
        'SuccessfulCreate',
        `Created pod: ${pod.metadata.name}`,
      );
    } catch (err) {
      if (err instanceof ApiError && err.reason === 'AlreadyExists') return; // random name clash: next pass retries
      throw err;
    }
  }

  private async updateStatus(d: KubeObject, hash: string): Promise<void> {
    const cur = this.registry.peek(DEPLOY, d.metadata.namespace, d.metadata.name!);
    if (!cur || cur.metadata.uid !== d.metadata.uid) return;
    const pods = this.registry
      .scan(POD, { namespace: d.metadata.namespace })
      .filter(
        (p) =>
          controllerOf(p)?.uid === d.metadata.uid &&
          !p.metadata.deletionTimestamp &&
          p.status?.phase !== 'Failed' &&
          p.status?.phase !== 'Succeeded',
      );
    const want = Number(cur.spec.replicas ?? 1);
    const ready = pods.filter(isPodReady).length;
    const updated = pods.filter((p) => p.metadata.labels?.['pod-template-hash'] === hash).length;
    const prev = cur.status ?? {};
    const prevConds = (prev.conditions ?? []) as Array<{
      type: string;
      status: string;
      lastTransitionTime?: string;
      lastUpdateTime?: string;
    }>;
    const cond = (type: string, status: string, reason: string, message: string) => {
      const p = prevConds.find((c) => c.type === type);
      const same = p && p.status === status;
      return {
        type,
        status,
        lastUpdateTime: same ? p.lastUpdateTime : nowTimestamp(),
        lastTransitionTime: same ? p.lastTransitionTime : nowTimestamp(),
        reason,
        message,
      };
    };
    const available = ready >= want - Math.floor(want / 4);
    const status: Record<string, unknown> = {
      observedGeneration: cur.metadata.generation,
      replicas: pods.length,
      updatedReplicas: updated,
      readyReplicas: ready,
      availableReplicas: ready,
      ...(pods.length - ready > 0 ? { unavailableReplicas: Math.max(0, want - ready) } : {}),
      conditions: [
        cond(
          'Available',
          available ? 'True' : 'False',
          available ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable',
          available
            ? 'Deployment has minimum availability.'
            : 'Deployment does not have minimum availability.',
        ),
        cond(
          'Progressing',
          'True',
          updated >= want ? 'NewReplicaSetAvailable' : 'ReplicaSetUpdated',
          `Deployment "${cur.metadata.name}" ${updated >= want ? 'has successfully progressed' : 'is progressing'}.`,
        ),
      ],
    };
    for (const k of ['readyReplicas', 'availableReplicas', 'updatedReplicas', 'replicas'])
      if (status[k] === 0) delete status[k];
    if (deepEqual(status, prev)) return;
    const next = clone(cur);
    next.status = status;
    await this.registry.update(DEPLOY, cur.metadata.namespace, cur.metadata.name!, next, {
      subresource: 'status',
    });
  }
}

function ownerRef(d: KubeObject) {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    name: d.metadata.name!,
    uid: d.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** Sort order for scale-down: unscheduled first, then not ready, then newest. */
function deletionRank(a: KubeObject, b: KubeObject): number {
  const sa = a.spec?.nodeName ? 1 : 0;
  const sb = b.spec?.nodeName ? 1 : 0;
  if (sa !== sb) return sa - sb;
  const ra = isPodReady(a) ? 1 : 0;
  const rb = isPodReady(b) ? 1 : 0;
  if (ra !== rb) return ra - rb;
  return (
    (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? '') ||
    Number(b.metadata.resourceVersion) - Number(a.metadata.resourceVersion)
  );
}

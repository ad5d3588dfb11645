/**
 * The lab supervisor's reflector: writes Tendril's supervised daemons into
 * the cluster's API server as kube-system workloads and pods (what
 * src/lab/daemon-reflection.ts computes), through the API server like any
 * controller, and keeps their status current as daemons start, exit and are
 * restarted. The supervisor stays the owner of the processes:
 *
 * - a reflected pod deleted with kubectl (it gets a deletionTimestamp: it is
 *   bound to a node) restarts its daemons, as Kubernetes would kill the
 *   containers and its DaemonSet/Deployment make a new pod; the reflector
 *   then confirms the delete (grace 0, uid precondition) and writes a new pod
 *   (restartCount 0). A force-deleted pod (gone at once) does the same;
 * - a changed daemon spec (reinstall) replaces the pod, as a rollout;
 * - reflected objects whose daemon is gone (uninstall) are deleted;
 * - an edited or deleted reflected workload is written back.
 *
 * It writes the kubelet's core v1 Events for them (through the kubelet's
 * helper, src/lab/kubelet/events.ts, attributed to the kubelet on the pod's
 * node): `Started` when a daemon (re)starts, `Killing` when a pod delete or
 * a rollout stops it, and a `BackOff` Warning when the supervisor saw it exit
 * and backs off before restarting it (every supervisor restart is backed off).
 * What was already reported is read from the stored pod status, so a new
 * supervisor does not report it again.
 *
 *   const r = new DaemonReflector(cluster, supervisor, log);
 *   r.start();  r.kick();  await r.stop();
 */
import { randomBytes } from 'node:crypto';
import { KubeClient } from '../k8s/client.js';
import type { KubeObject } from '../k8s/objects.js';
import { ApiError } from '../k8s/status.js';
import type { Logger } from '../util/log.js';
import { labAdminClientOptions } from './client.js';
import { postPodEvent, type EventSink } from './kubelet/events.js';
import { isLabReflection } from './daemon-pods.js';
import {
  LAB_REFLECTION_HASH_ANNOTATION,
  LAB_SPEC_HASH_ANNOTATION,
  REFLECTION_NAMESPACE,
  desiredReflection,
  newPod,
  podKey,
  podStatus,
  workloadStatus,
  type SupervisedDaemon,
  type WantedPod,
} from './daemon-reflection.js';
import { tryLoadCluster, type LabCluster } from './state.js';

/** What the reflector needs from the supervisor. */
export interface DaemonSource {
  /** Every daemon it runs now. */
  daemons(): SupervisedDaemon[];
  /** Stops and starts a daemon again (its reflected pod was deleted). */
  restart(name: string): Promise<void>;
}

/** Options of DaemonReflector (tests pass the cluster, install and client). */
export interface DaemonReflectorOptions {
  cluster?: LabCluster;
  client?: KubeClient;
  /** Full resync period (default 5 s). */
  resyncMs?: number;
}

const ALPHANUM = 'bcdfghjklmnpqrstvwxz2456789';
function suffix(): string {
  const b = randomBytes(5);
  return [...b].map((x) => ALPHANUM[x % ALPHANUM.length]).join('');
}

function isGone(err: unknown): boolean {
  return err instanceof ApiError && (err.httpCode === 404 || err.httpCode === 409);
}

/** Runs the reflection of one lab cluster's daemons until stop(). */
export class DaemonReflector {
  private client?: KubeClient;
  private running?: Promise<void>;
  private again = false;
  private stopped = false;
  private timer?: NodeJS.Timeout;
  private watchHandle?: { close(): void };
  private watching = false;
  /** Pods whose deletion already restarted their daemons (by uid). */
  private readonly restartedFor = new Set<string>();
  /** Pods the reflector deleted itself (by uid): their going restarts nothing. */
  private readonly ownDeletes = new Set<string>();
  /** The uid last seen per pod key, to notice a force delete. */
  private readonly lastUid = new Map<string, string>();
  /** The pod last seen per pod key (its Killing Event after a force delete names it). */
  private readonly lastPod = new Map<string, KubeObject>();
  /** Whether the last sync found or wrote anything (no daemons and nothing stored: nothing to do). */
  private active = true;
  private failures = 0;

  constructor(
    private readonly clusterName: string,
    private readonly source: DaemonSource,
    private readonly log: Logger,
    private readonly o: DaemonReflectorOptions = {},
  ) {
    if (o.client) this.client = o.client;
  }

  /** Starts syncing: now, on every kick(), and every resync period. */
  start(): void {
    this.kick();
  }

  /** Asks for a sync soon (coalesced). */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.running = this.loop();
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.sync();
        this.failures = 0;
      } catch (err) {
        this.failures++;
        // before Tendril is installed there is nothing to reflect: the API server starting is no news
        const reflecting = this.source.daemons().some((d) => d.spec.reflect);
        if (!reflecting) this.log.debug('reflector: API server not reachable yet', { err });
        else if (this.failures === 1 || this.failures % 20 === 0)
          this.log.warn('reflecting the daemons into the API server failed; retrying', {
            err,
            failures: this.failures,
          });
      }
    } while (this.again && !this.stopped);
    this.running = undefined;
    if (this.stopped) return;
    const delay = this.failures
      ? Math.min(500 * 2 ** this.failures, 5000)
      : (this.o.resyncMs ?? 5000);
    this.timer = setTimeout(() => this.kick(), delay);
  }

  /** Stops syncing and watching (the objects stay). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.watchHandle?.close();
    await this.running;
    if (!this.o.client) this.client?.close();
  }

  private cluster(): LabCluster | undefined {
    return this.o.cluster ?? tryLoadCluster(this.clusterName);
  }

  private api(c: LabCluster): KubeClient {
    this.client ??= new KubeClient(labAdminClientOptions(c, { timeoutMs: 10_000 }));
    return this.client;
  }

  /** Watches kube-system pods so a delete is answered at once (not at the next resync). */
  private ensureWatch(client: KubeClient): void {
    if (this.watching || this.stopped) return;
    this.watching = true;
    void (async () => {
      while (!this.stopped && this.active) {
        try {
          const w = await client.watch('v1', 'Pod', { namespace: REFLECTION_NAMESPACE }, (ev) => {
            if (ev.type !== 'BOOKMARK' && isLabReflection(ev.object as KubeObject)) this.kick();
          });
          this.watchHandle = w;
          if (this.stopped) w.close();
          await w.done;
        } catch {
          // the API server is not there (yet): the resync goes on
        }
        if (!this.stopped) await new Promise((r) => setTimeout(r, 1000));
      }
      this.watching = false;
    })();
  }

  private chain: Promise<void> = Promise.resolve();

  /** One reconcile: workloads, pods, their status (one at a time). */
  sync(): Promise<void> {
    const run = this.chain.then(() => this.syncOnce());
    this.chain = run.catch(() => {});
    return run;
  }

  private async syncOnce(): Promise<void> {
    const c = this.cluster();
    if (!c) return;
    const daemons = this.source.daemons();
    const want = desiredReflection(c, daemons);
    if (!this.active && want.pods.length === 0) return;
    const client = this.api(c);
    const ns = { namespace: REFLECTION_NAMESPACE };
    const [dsl, depl, podl] = await Promise.all([
      client.list('apps/v1', 'DaemonSet', ns),
      client.list('apps/v1', 'Deployment', ns),
      client.list('v1', 'Pod', ns),
    ]);
    const liveWorkloads = new Map<string, KubeObject>();
    for (const w of [...dsl.items, ...depl.items])
      if (isLabReflection(w)) liveWorkloads.set(`${w.kind}/${w.metadata.name}`, w);
    const livePods = podl.items.filter(isLabReflection);
    this.active = want.pods.length > 0 || liveWorkloads.size > 0 || livePods.length > 0;
    if (this.active) this.ensureWatch(client);

    // workloads: create, rewrite when what the reflector writes changed, delete the unwanted
    const owners = new Map<string, KubeObject>();
    for (const w of want.workloads) {
      const key = `${w.kind}/${w.metadata.name}`;
      const live = liveWorkloads.get(key);
      let cur: KubeObject;
      if (!live || live.metadata.deletionTimestamp) {
        if (live) continue; // being deleted: written again once gone
        cur = await client.create(w);
        this.log.info('reflected workload created', { workload: key });
      } else if (
        live.metadata.annotations?.[LAB_REFLECTION_HASH_ANNOTATION] !==
        w.metadata.annotations?.[LAB_REFLECTION_HASH_ANNOTATION]
      ) {
        cur = await client.update({
          ...w,
          metadata: {
            ...w.metadata,
            resourceVersion: live.metadata.resourceVersion,
          },
        });
      } else cur = live;
      owners.set(key, cur);
    }
    for (const [key, live] of liveWorkloads) {
      if (owners.has(key) || live.metadata.deletionTimestamp) continue;
      await client
        .delete('apps/v1', live.kind, live.metadata.name!, {
          ...ns,
          propagationPolicy: 'Background',
        })
        .catch((e: unknown) => {
          if (!isGone(e)) throw e;
        });
      this.log.info('reflected workload removed (its daemons are gone)', { workload: key });
    }

    // pods
    const byKey = new Map<string, KubeObject[]>();
    for (const p of livePods) {
      const k = podKey(p);
      if (!k) continue;
      byKey.set(k, [...(byKey.get(k) ?? []), p]);
    }
    const wantedKeys = new Set(want.pods.map((w) => w.key));
    const current = new Map<string, KubeObject[]>(); // workload key -> its pods (with status)
    for (const w of want.pods) {
      const owner = owners.get(`${w.kind}/${w.workload}`);
      if (!owner) continue;
      const pods = byKey.get(w.key) ?? [];
      const keep: KubeObject[] = [];
      for (const p of pods) {
        if (p.metadata.deletionTimestamp) {
          await this.deleted(w, p);
          continue;
        }
        const ownerRef = (p.metadata.ownerReferences ?? []).find((r) => r.controller);
        if (
          p.metadata.annotations?.[LAB_SPEC_HASH_ANNOTATION] !== w.specHash ||
          ownerRef?.uid !== owner.metadata.uid
        ) {
          // the daemon's spec changed (the supervisor restarted it): a new pod, as a rollout
          this.killing(w, p);
          await this.remove(p);
          continue;
        }
        keep.push(p);
      }
      keep.sort((a, b) =>
        (a.metadata.creationTimestamp ?? '') < (b.metadata.creationTimestamp ?? '') ? -1 : 1,
      );
      for (const extra of keep.slice(1)) await this.remove(extra);
      let pod = keep[0];
      const seen = this.lastUid.get(w.key);
      if (seen && (!pod || pod.metadata.uid !== seen) && !this.ownDeletes.has(seen)) {
        // the pod went without the reflector (a force delete): its daemons restart, as its containers would be killed
        if (!this.restartedFor.has(seen)) {
          remember(this.restartedFor, seen);
          const gone = this.lastPod.get(w.key);
          if (gone?.metadata.uid === seen) this.killing(w, gone);
          await this.restartDaemons(w, 'its pod was force-deleted');
        }
      }
      if (!pod) {
        const fresh = newPod(w, owner, suffix());
        pod = await client.create(fresh);
        this.log.info('reflected pod created', { pod: pod.metadata.name, key: w.key });
      }
      this.lastUid.set(w.key, pod.metadata.uid!);
      this.lastPod.set(w.key, pod);
      const status = podStatus(w, pod);
      this.containerEvents(w, pod, pod.status, status);
      if (!sameJSON(status, pod.status)) {
        try {
          pod = await client.update({ ...pod, status }, { subresource: 'status' });
        } catch (err) {
          if (!isGone(err)) throw err;
          this.again = true;
        }
      }
      const wkey = `${w.kind}/${w.workload}`;
      current.set(wkey, [...(current.get(wkey) ?? []), { ...pod, status }]);
    }
    for (const [key, pods] of byKey) {
      if (wantedKeys.has(key)) continue;
      for (const p of pods) await this.remove(p);
      this.lastUid.delete(key);
      this.lastPod.delete(key);
    }

    // workload status from the pods
    for (const [key, owner] of owners) {
      const pods = current.get(key) ?? [];
      const hash = want.pods.find((p) => `${p.kind}/${p.workload}` === key)?.templateHash ?? '';
      const status = workloadStatus(owner, pods, c.nodes.length, hash);
      if (sameJSON(status, owner.status)) continue;
      try {
        await client.update({ ...owner, status }, { subresource: 'status' });
      } catch (err) {
        if (!isGone(err)) throw err;
        this.again = true;
      }
    }
  }

  /** A pod marked for deletion: restart its daemons once, then confirm the delete. */
  private async deleted(w: WantedPod, p: KubeObject): Promise<void> {
    const uid = p.metadata.uid!;
    if (!this.restartedFor.has(uid) && !this.ownDeletes.has(uid)) {
      remember(this.restartedFor, uid);
      this.killing(w, p);
      await this.restartDaemons(w, `pod ${p.metadata.name} was deleted`);
    }
    await this.remove(p);
  }

  /** Where the Events go (the API server, as the kubelet posts them). */
  private sink(): EventSink {
    const client = this.client!;
    return { create: (path, obj) => client.request('POST', path, { body: obj }) };
  }

  private event(
    w: WantedPod,
    pod: KubeObject,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
    container: string,
  ): void {
    postPodEvent(this.sink(), this.log, w.node.name, pod, type, reason, message, container);
  }

  /** `Killing` for each container of a pod whose daemons are stopped (deleted pod, rollout). */
  private killing(w: WantedPod, pod: KubeObject): void {
    for (const c of w.containers)
      this.event(w, pod, 'Normal', 'Killing', `Stopping container ${c.name}`, c.name);
  }

  /**
   * The Events of a status change, as the kubelet posts them: `BackOff` when
   * a container's daemon exited and waits for its restart (or was restarted
   * since the last status: restartCount rose without the wait being seen),
   * `Started` when a container has a new start time.
   */
  private containerEvents(w: WantedPod, pod: KubeObject, prev: unknown, next: unknown): void {
    const before = containerStatuses(prev);
    for (const cs of containerStatuses(next)) {
      const old = before.find((x) => x.name === cs.name);
      if (old) {
        const waiting = cs.state?.waiting?.reason === 'CrashLoopBackOff';
        const wasWaiting = old.state?.waiting?.reason === 'CrashLoopBackOff';
        const restarted = (cs.restartCount ?? 0) > (old.restartCount ?? 0);
        if (!wasWaiting && (waiting || restarted))
          this.event(
            w,
            pod,
            'Warning',
            'BackOff',
            `Back-off restarting failed container ${cs.name} in pod ${pod.metadata.name}_${pod.metadata.namespace}(${pod.metadata.uid})`,
            cs.name,
          );
      }
      const started = cs.state?.running?.startedAt;
      if (started && started !== old?.state?.running?.startedAt)
        this.event(w, pod, 'Normal', 'Started', `Started container ${cs.name}`, cs.name);
    }
  }

  private async restartDaemons(w: WantedPod, why: string): Promise<void> {
    for (const c of w.containers) {
      this.log.info('restarting a daemon: ' + why, { daemon: c.daemon.name });
      await this.source.restart(c.daemon.name);
    }
    this.again = true;
  }

  /** Deletes a reflected pod at once (grace 0, uid precondition), as a kubelet confirms a delete. */
  private async remove(p: KubeObject): Promise<void> {
    const uid = p.metadata.uid!;
    remember(this.ownDeletes, uid);
    try {
      await this.client!.request(
        'DELETE',
        `/api/v1/namespaces/${encodeURIComponent(p.metadata.namespace!)}/pods/${encodeURIComponent(p.metadata.name!)}`,
        {
          body: {
            kind: 'DeleteOptions',
            apiVersion: 'v1',
            gracePeriodSeconds: 0,
            preconditions: { uid },
          },
        },
      );
    } catch (err) {
      if (!isGone(err)) throw err;
    }
  }
}

interface ContainerStatusView {
  name: string;
  restartCount?: number;
  state?: { running?: { startedAt?: string }; waiting?: { reason?: string } };
}

function containerStatuses(status: unknown): ContainerStatusView[] {
  const list = (status as { containerStatuses?: unknown } | undefined)?.containerStatuses;
  return Array.isArray(list) ? (list as ContainerStatusView[]) : [];
}

/** Adds to a set of uids that keeps the last 1,000. */
function remember(set: Set<string>, uid: string): void {
  set.add(uid);
  if (set.size > 1000) set.delete(set.values().next().value!);
}

function sameJSON(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(sortKeys);
  if (x && typeof x === 'object')
    return Object.fromEntries(
      Object.keys(x as object)
        .sort()
        .filter((k) => (x as Record<string, unknown>)[k] !== undefined)
        .map((k) => [k, sortKeys((x as Record<string, unknown>)[k])]),
    );
  return x;
}

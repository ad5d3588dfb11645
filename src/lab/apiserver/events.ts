/**
 * Kubernetes Events of the lab: a recorder the controllers and the scheduler
 * (in the API server's process) write core v1 Events with, aggregating
 * repeats of one (object, type, reason, message) into `count` as Kubernetes'
 * recorder does, and an expiry that deletes Events older than a TTL (1 h by
 * default, as the API server's --event-ttl) and the oldest beyond a bound.
 * The kubelet posts its Events (Pulled, Created, Started, Killing, BackOff)
 * through the API (see ../kubelet/events.ts). `events.k8s.io/v1` is served
 * as a view of the same objects (toEventsV1).
 */
import type { KubeObject } from '../../k8s/objects.js';
import { resourceForPath } from '../../k8s/resources.js';
import { isNotFound } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { nowTimestamp, randomSuffix, type Registry } from './registry.js';

const EVENT = resourceForPath('', 'v1', 'events')!;

/** What an Event is about. */
export interface InvolvedObject {
  kind: string;
  apiVersion?: string;
  namespace?: string;
  name: string;
  uid?: string;
  fieldPath?: string;
}

/** The core v1 Event object for one occurrence (name: OBJECT.RANDOM, as client-go's recorder). */
export function newEvent(
  obj: InvolvedObject,
  type: 'Normal' | 'Warning',
  reason: string,
  message: string,
  source: { component: string; host?: string },
  now = nowTimestamp(),
): KubeObject {
  const ns = obj.namespace ?? 'default';
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: `${obj.name}.${randomSuffix(16)}`, namespace: ns },
    involvedObject: { ...obj },
    reason,
    message,
    type,
    source,
    count: 1,
    firstTimestamp: now,
    lastTimestamp: now,
    eventTime: null,
    reportingComponent: source.component,
    reportingInstance: source.host ?? '',
  } as unknown as KubeObject;
}

/** The reference to an object an Event names. */
export function refOf(o: KubeObject): InvolvedObject {
  return {
    kind: o.kind ?? '',
    apiVersion: o.apiVersion ?? 'v1',
    ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}),
    name: o.metadata.name!,
    ...(o.metadata.uid ? { uid: o.metadata.uid } : {}),
  };
}

/** A core v1 Event as events.k8s.io/v1 shows it. */
export function toEventsV1(e: KubeObject): KubeObject {
  const x = e as unknown as Record<string, unknown> & {
    involvedObject?: InvolvedObject;
    source?: { component?: string; host?: string };
    count?: number;
  };
  return {
    apiVersion: 'events.k8s.io/v1',
    kind: 'Event',
    metadata: e.metadata,
    eventTime: (x.eventTime as string | null) ?? null,
    reason: x.reason,
    note: x.message,
    type: x.type,
    regarding: x.involvedObject,
    reportingController: x.reportingComponent || x.source?.component || '',
    reportingInstance: x.reportingInstance || x.source?.host || '',
    action: x.reason,
    deprecatedSource: x.source ?? {},
    deprecatedFirstTimestamp: x.firstTimestamp,
    deprecatedLastTimestamp: x.lastTimestamp,
    deprecatedCount: x.count,
  } as unknown as KubeObject;
}

/** Records Events from components in the API server's process. */
export class EventRecorder {
  /** aggregation key -> event name */
  private readonly seen = new Map<string, string>();

  constructor(
    private readonly registry: Registry,
    private readonly source: { component: string; host?: string },
    private readonly log: Logger,
  ) {}

  /** Records an Event about `obj` (a repeat raises the count of the earlier one). Never throws. */
  async record(
    obj: KubeObject | InvolvedObject,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): Promise<void> {
    const ref = 'metadata' in obj ? refOf(obj) : obj;
    const ns = ref.namespace ?? 'default';
    const key = [ns, ref.kind, ref.name, ref.uid ?? '', type, reason, message].join('\0');
    try {
      const prev = this.seen.get(key);
      if (prev) {
        const old = this.registry.peek(EVENT, ns, prev) as
          (KubeObject & { count?: number }) | undefined;
        if (old) {
          await this.registry.patch(EVENT, ns, prev, {
            count: (old.count ?? 1) + 1,
            lastTimestamp: nowTimestamp(),
          });
          return;
        }
      }
      const ev = newEvent(ref, type, reason, message, this.source);
      await this.registry.create(EVENT, ns, ev);
      this.seen.set(key, ev.metadata.name!);
      if (this.seen.size > 5000) this.seen.delete(this.seen.keys().next().value!);
    } catch (err) {
      if (!isNotFound(err)) this.log.debug('recording an event failed', { reason, err });
    }
  }
}

/**
 * Deletes Events whose last occurrence is older than `ttlMs`, and the oldest
 * beyond `maxEvents`, every `intervalMs`. Returns a stop function.
 */
export function startEventExpiry(
  registry: Registry,
  log: Logger,
  options: { ttlMs?: number; maxEvents?: number; intervalMs?: number } = {},
): () => void {
  const ttl = options.ttlMs ?? 3_600_000;
  const max = options.maxEvents ?? 5000;
  const sweep = async () => {
    const all = registry.scan(EVENT).map((e) => {
      const x = e as unknown as { lastTimestamp?: string; eventTime?: string };
      const t = Date.parse(x.lastTimestamp ?? x.eventTime ?? e.metadata.creationTimestamp ?? '');
      return { e, t: Number.isFinite(t) ? t : 0 };
    });
    all.sort((a, b) => a.t - b.t);
    const cutoff = Date.now() - ttl;
    const excess = all.length - max;
    for (let i = 0; i < all.length; i++) {
      const { e, t } = all[i]!;
      if (t >= cutoff && i >= excess) break;
      try {
        await registry.delete(EVENT, e.metadata.namespace, e.metadata.name!);
      } catch (err) {
        if (!isNotFound(err)) log.debug('expiring an event failed', { err });
      }
    }
  };
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    sweep().finally(() => (running = false));
  }, options.intervalMs ?? 60_000);
  timer.unref();
  return () => clearInterval(timer);
}

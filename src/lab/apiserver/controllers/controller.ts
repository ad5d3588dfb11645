/**
 * The frame the lab's controllers share: registry watches that queue
 * "namespace/name" keys into a WorkQueue, which reconciles them one at a time
 * (deduplicated, retried with backoff). A controller lists its watches in
 * `watches()` and implements `reconcile(key)`; start/stop/idle come from here.
 */
import type { ResourceInfo } from '../../../k8s/resources.js';
import type { Logger } from '../../../util/log.js';
import type { Registry, RegistryWatch } from '../registry.js';
import { WorkQueue } from './queue.js';

/** A registry watch handler (its objects are the registry's own: never modify them). */
export type WatchHandler = Parameters<Registry['watch']>[2];

/** Base class of a queue-driven controller. */
export abstract class QueueController {
  protected readonly queue: WorkQueue;
  private open: RegistryWatch[] = [];

  /** `name` names the controller in the queue's retry logs. */
  constructor(
    protected readonly registry: Registry,
    protected readonly log: Logger,
    name: string,
  ) {
    this.queue = new WorkQueue({ name, logger: log, reconcile: (k) => this.reconcile(k) });
  }

  /** The kinds to watch (from the start: existing objects arrive as ADDED) and what each event queues. */
  protected abstract watches(): Array<[ResourceInfo, WatchHandler]>;

  /** Brings the object behind `key` ("namespace/name") to its desired state; throws to retry. */
  protected abstract reconcile(key: string): Promise<void>;

  /** A handler that queues the event's own object. */
  protected readonly enqueueObject: WatchHandler = (ev) =>
    this.enqueue(ev.object.metadata.namespace, ev.object.metadata.name);

  /** Queues `namespace/name`. */
  protected enqueue(namespace: string | undefined, name: string | undefined): void {
    this.queue.add(`${namespace}/${name}`);
  }

  /** Opens the watches; the queue starts working. */
  start(): void {
    for (const [info, handler] of this.watches())
      this.open.push(this.registry.watch(info, {}, handler));
  }

  /** Closes the watches and drops pending work. */
  stop(): void {
    for (const w of this.open) w.close();
    this.open = [];
    this.queue.stop();
  }

  /** Resolves when nothing is queued or running (for tests). */
  idle(): Promise<void> {
    return this.queue.idle();
  }
}

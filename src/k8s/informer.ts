/**
 * A list/watch cache of one kind on KubeClient (what client-go calls a
 * reflector + store + informer), without @kubernetes/client-node:
 *
 * - list (records the list's resourceVersion), then watch from it with
 *   bookmarks; ADDED/MODIFIED/DELETED update the cache (keyed namespace/name)
 *   and emit add/update/delete; BOOKMARK only advances the resourceVersion;
 * - a watch the server ends (its timeout, a restart, a slow client) is resumed
 *   from the last resourceVersion seen, so nothing is missed and nothing is
 *   listed again;
 * - 410 Gone (the version left the server's history) re-lists and emits the
 *   differences: deletes for objects gone (first), then adds and updates;
 * - errors (unreachable server, refused watch) are reported through
 *   `onProblem` and retried with backoff (500 ms doubling to 10 s); the
 *   problem is cleared (`onProblem(undefined)`) once list/watch work again.
 *
 *   const inf = new Informer({ client, apiVersion: 'v1', kind: 'Node' });
 *   inf.on('add', (n) => ...).on('update', ...).on('delete', ...);
 *   inf.start();
 *   await inf.synced;   // after the first list
 *   inf.list(); inf.get('node-1'); inf.get('pod-1', 'default');
 *   await inf.stop();   // ends the watch and every timer
 */
import { nopLogger, type Logger } from '../util/log.js';
import type { ClientWatch, KubeClient, ListOptions } from './client.js';
import type { KubeObject, WatchEventObject } from './objects.js';
import { ApiError, isStatus } from './status.js';

/** The fields of an object the informer reads (client-node's V1Pod etc. fit). */
export interface InformerObject {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

/** Informer events. */
export type InformerEvent = 'add' | 'update' | 'delete';

/** Options of Informer. */
export interface InformerOptions {
  client: KubeClient;
  apiVersion: string;
  kind: string;
  /** Only this namespace (all namespaces when omitted). */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Called with a message while list/watch fail, with undefined once they work again. */
  onProblem?: (cause: string | undefined) => void;
  logger?: Logger;
  /** First retry delay; doubles up to maxBackoffMs. Default 500. */
  minBackoffMs?: number;
  /** Default 10,000. */
  maxBackoffMs?: number;
  /**
   * Each watch asks the server to end it after a random 1-2x this many seconds
   * (then it is resumed), so a silently dead connection is noticed. Default 300.
   */
  watchTimeoutSeconds?: number;
}

type Handler<T> = (obj: T) => void;

/** The key of an object in the cache: `namespace/name`, or `name` when cluster-scoped. */
function cacheKey(name: string | undefined, namespace?: string): string {
  return namespace ? `${namespace}/${name ?? ''}` : (name ?? '');
}

function keyOf(o: InformerObject): string {
  return cacheKey(o.metadata?.name, o.metadata?.namespace);
}

/** A list/watch cache of one kind. Call start() once, stop() to end it. */
export class Informer<T extends InformerObject = KubeObject> {
  private readonly cache = new Map<string, T>();
  private readonly handlers: Record<InformerEvent, Handler<T>[]> = {
    add: [],
    update: [],
    delete: [],
  };
  private readonly log: Logger;
  private rv = '';
  private running = false;
  private stopped = false;
  private watch: ClientWatch | undefined;
  private sleeping: { timer: NodeJS.Timeout; wake: () => void } | undefined;
  private backoff: number;
  private problem: string | undefined;
  private lists = 0;
  private loop: Promise<void> | undefined;
  private syncedResolve!: () => void;
  /** Resolves after the first complete list (never rejects; stays pending while the server is down). */
  readonly synced: Promise<void> = new Promise((r) => (this.syncedResolve = r));

  constructor(private readonly o: InformerOptions) {
    this.log = (o.logger ?? nopLogger).child({ informer: o.kind });
    this.backoff = o.minBackoffMs ?? 500;
  }

  /** Adds a handler; handlers run in order, synchronously, as events are applied to the cache. */
  on(event: InformerEvent, fn: Handler<T>): this {
    this.handlers[event].push(fn);
    return this;
  }

  /** Starts listing and watching (in the background). A second call does nothing. */
  start(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    this.loop = this.run();
  }

  /** The cached objects. */
  list(): T[] {
    return [...this.cache.values()];
  }

  /** One cached object (namespace omitted for cluster-scoped kinds). */
  get(name: string, namespace?: string): T | undefined {
    return this.cache.get(cacheKey(name, namespace));
  }

  /** The resourceVersion the cache is at ('' before the first list). */
  get resourceVersion(): string {
    return this.rv;
  }

  /** How many complete lists were made (1 after the first sync; more after 410s). */
  get listCount(): number {
    return this.lists;
  }

  /**
   * Ends the watch and every timer; no handler runs afterwards. Resolves once
   * the background loop is done (a list in flight ends with the client's timeout
   * or when the caller closes the client).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.watch?.close();
    if (this.sleeping) {
      clearTimeout(this.sleeping.timer);
      this.sleeping.wake();
    }
    await this.loop;
  }

  private async run(): Promise<void> {
    let needList = true;
    while (!this.stopped) {
      try {
        if (needList) {
          await this.relist();
          needList = false;
          if (this.stopped) break;
          this.healthy();
        }
        const { gone, quick } = await this.watchOnce();
        if (gone) {
          this.log.info('resourceVersion expired (410), listing again', { rv: this.rv });
          needList = true;
        }
        // a watch the server ended at once, without an event (or with just a 410): do not spin
        if (quick) await this.sleep(this.nextBackoff());
      } catch (err) {
        if (this.stopped) break;
        if (err instanceof ApiError && err.httpCode === 410) {
          // a server that refuses the watch with HTTP 410 (not an ERROR event)
          needList = true;
          await this.sleep(this.nextBackoff());
          continue;
        }
        const delay = this.nextBackoff();
        this.report(`${needList ? 'list' : 'watch'} ${this.o.kind}: ${describe(err)}`, delay);
        await this.sleep(delay);
      }
    }
  }

  /** The namespace and selectors of both the list and the watch. */
  private scope(): ListOptions {
    const { namespace, labelSelector, fieldSelector } = this.o;
    return {
      ...(namespace ? { namespace } : {}),
      ...(labelSelector ? { labelSelector } : {}),
      ...(fieldSelector ? { fieldSelector } : {}),
    };
  }

  private async relist(): Promise<void> {
    const list = await this.o.client.list<KubeObject>(this.o.apiVersion, this.o.kind, this.scope());
    if (this.stopped) return;
    const fresh = new Map<string, T>();
    for (const item of list.items as unknown as T[]) fresh.set(keyOf(item), item);
    // deletes first: an object replaced under another name (same IP, say) must not
    // have its successor's state removed by the late delete of its predecessor
    for (const [k, old] of this.cache) {
      if (fresh.has(k)) continue;
      this.cache.delete(k);
      this.emit('delete', old);
    }
    for (const [k, obj] of fresh) {
      const old = this.cache.get(k);
      this.cache.set(k, obj);
      if (!old) this.emit('add', obj);
      else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion)
        this.emit('update', obj);
    }
    this.rv = list.metadata?.resourceVersion ?? '';
    this.lists++;
    if (this.lists === 1) this.syncedResolve();
  }

  /**
   * One watch from this.rv until it ends. `gone`: 410, list again; `quick`: it
   * ended within a second without an object or bookmark event.
   */
  private async watchOnce(): Promise<{ gone: boolean; quick: boolean }> {
    const base = this.o.watchTimeoutSeconds ?? 300;
    let gone = false;
    let failure: string | undefined;
    let events = 0;
    const started = Date.now();
    const w = await this.o.client.watch<KubeObject>(
      this.o.apiVersion,
      this.o.kind,
      {
        ...this.scope(),
        resourceVersion: this.rv,
        allowWatchBookmarks: true,
        timeoutSeconds: Math.round(base * (1 + Math.random())),
      },
      (ev) => {
        if (gone || failure || this.stopped) return;
        if (ev.type === 'ERROR') {
          const st = ev.object as unknown;
          if (isStatus(st) && st.code === 410) gone = true;
          else failure = isStatus(st) ? (st.message ?? `status ${st.code}`) : 'watch ERROR event';
          w.close();
          return;
        }
        events++;
        this.apply(ev as unknown as WatchEventObject & { object: T });
      },
    );
    this.watch = w;
    if (this.stopped) w.close();
    else this.healthy();
    await w.done;
    this.watch = undefined;
    if (failure) throw new Error(failure);
    return { gone, quick: events === 0 && Date.now() - started < 1000 };
  }

  private apply(ev: { type: string; object: T }): void {
    const obj = ev.object;
    const rv = obj.metadata?.resourceVersion;
    if (ev.type === 'BOOKMARK') {
      if (rv) this.rv = rv;
      return;
    }
    const k = keyOf(obj);
    if (ev.type === 'ADDED' || ev.type === 'MODIFIED') {
      const had = this.cache.has(k);
      this.cache.set(k, obj);
      if (rv) this.rv = rv;
      this.emit(had ? 'update' : 'add', obj);
    } else if (ev.type === 'DELETED') {
      this.cache.delete(k);
      if (rv) this.rv = rv;
      this.emit('delete', obj);
    }
  }

  private emit(event: InformerEvent, obj: T): void {
    for (const fn of this.handlers[event]) {
      try {
        fn(obj);
      } catch (err) {
        this.log.warn('informer handler failed', { event, key: keyOf(obj), error: describe(err) });
      }
    }
  }

  private healthy(): void {
    this.backoff = this.o.minBackoffMs ?? 500;
    if (this.problem === undefined) return;
    this.problem = undefined;
    this.log.info('list/watch works again');
    this.o.onProblem?.(undefined);
  }

  private report(cause: string, retryInMs: number): void {
    if (cause !== this.problem) this.log.warn('list/watch failed', { error: cause, retryInMs });
    this.problem = cause;
    this.o.onProblem?.(cause);
  }

  private nextBackoff(): number {
    const d = this.backoff;
    this.backoff = Math.min(d * 2, this.o.maxBackoffMs ?? 10_000);
    return d;
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        this.sleeping = undefined;
        resolve();
      };
      this.sleeping = { timer: setTimeout(wake, ms), wake };
    });
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

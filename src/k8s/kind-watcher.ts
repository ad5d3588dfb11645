/**
 * A list/watch cache of one kind addressed by its API path (/api/v1/nodes,
 * /apis/cilium.io/v2/ciliumendpoints): the agent's (and operator's) view of
 * the API server, on Tendril's own Informer (src/k8s/informer.ts) over
 * KubeClient. It does not load @kubernetes/client-node (whose generated models
 * cost the agent ~130 MiB); V1Pod & co. are used as types only.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { KubeClient } from './client.js';
import { Informer } from './informer.js';
import { apiVersionOf, resourceForPath } from './resources.js';
import { TendrilError } from '../util/errors.js';
import type { Logger } from '../util/log.js';

/** Options of KindWatcher. */
export interface KindWatcherOptions {
  name: string;
  /** The client to list and watch with (shared; the caller closes it). */
  client: KubeClient;
  /** Watch path, e.g. /api/v1/nodes (all namespaces). */
  path: string;
  logger: Logger;
  /** Called with an error message while list/watch fail, undefined once they work again. */
  onProblem?: (cause: string | undefined) => void;
  /** Retry delays (default 500 ms doubling to 10 s). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/**
 * Resolves a collection path to apiVersion + kind.
 * @throws TendrilError `K8S_UNKNOWN_PATH` for a path that is not a served collection.
 */
export function kindOfPath(path: string): { apiVersion: string; kind: string } {
  const m = /^\/(?:api\/(v\d\w*)|apis\/([^/]+)\/([^/]+))\/([a-z0-9.-]+)$/.exec(path);
  const info = m ? resourceForPath(m[2] ?? '', (m[1] ?? m[3])!, m[4]!) : undefined;
  if (!info)
    throw new TendrilError('K8S_UNKNOWN_PATH', `watch path "${path}" is not a served collection`, {
      hint: 'use /api/v1/<plural> or /apis/<group>/<version>/<plural> of a kind in src/k8s/resources.ts',
    });
  return { apiVersion: apiVersionOf(info), kind: info.kind };
}

/** Watches one kind and caches it. */
export class KindWatcher<T extends KubernetesObject = KubernetesObject> {
  private readonly informer: Informer<T>;

  /** @throws TendrilError `K8S_UNKNOWN_PATH`. */
  constructor(o: KindWatcherOptions) {
    const { apiVersion, kind } = kindOfPath(o.path);
    this.informer = new Informer<T>({
      client: o.client,
      apiVersion,
      kind,
      logger: o.logger,
      ...(o.onProblem ? { onProblem: (c) => o.onProblem!(c && `watch ${o.name}: ${c}`) } : {}),
      ...(o.minBackoffMs ? { minBackoffMs: o.minBackoffMs } : {}),
      ...(o.maxBackoffMs ? { maxBackoffMs: o.maxBackoffMs } : {}),
    });
  }

  /** Resolves after the first complete list. */
  get synced(): Promise<void> {
    return this.informer.synced;
  }

  /** Adds a handler (add/update also run for the first list's objects). */
  on(event: 'add' | 'update' | 'delete', fn: (obj: T) => void): this {
    this.informer.on(event, fn);
    return this;
  }

  /** Starts list + watch in the background; resolves after the first list. */
  async start(): Promise<void> {
    this.informer.start();
    await this.informer.synced;
  }

  /** The cached objects. */
  list(): T[] {
    return this.informer.list();
  }

  /** One cached object (namespace omitted for cluster-scoped kinds). */
  get(name: string, namespace?: string): T | undefined {
    return this.informer.get(name, namespace);
  }

  /** Ends the watch and its timers (the client stays open: the caller owns it). */
  async stop(): Promise<void> {
    await this.informer.stop();
  }
}

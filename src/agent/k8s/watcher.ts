/**
 * A list/watch cache of one kind, on @kubernetes/client-node's informer (the
 * code that runs against a real API server). Adds what the agent needs: a
 * first-sync promise, restart with backoff after a watch error (the client
 * stops on errors), and a problem callback for status.
 */
import {
  KubeConfig,
  makeInformer,
  type Informer,
  type KubernetesObject,
  type ListPromise,
} from '@kubernetes/client-node';
import type { Logger } from '../../util/log.js';

export interface KindWatcherOptions<T extends KubernetesObject> {
  name: string;
  kc: KubeConfig;
  /** Watch path, e.g. /api/v1/nodes. */
  path: string;
  list: ListPromise<T>;
  logger: Logger;
  /** Called with an error message while the watch is failing, undefined once it works again. */
  onProblem?: (cause: string | undefined) => void;
}

/** Watches one kind and caches it. */
export class KindWatcher<T extends KubernetesObject> {
  private readonly informer: Informer<T> & {
    list(ns?: string): T[];
    get(name: string, ns?: string): T | undefined;
  };
  private failed = false;
  private stopped = false;
  private backoff = 500;
  private timer: NodeJS.Timeout | undefined;
  private syncedResolve!: () => void;
  /** Resolves after the first complete list. */
  readonly synced: Promise<void> = new Promise((r) => (this.syncedResolve = r));

  constructor(private readonly o: KindWatcherOptions<T>) {
    this.informer = makeInformer(o.kc, o.path, o.list) as KindWatcher<T>['informer'];
    this.informer.on('error', (err: unknown) => {
      this.failed = true;
      const msg = describe(err);
      o.onProblem?.(`watch ${o.name}: ${msg}`);
      o.logger.warn('watch failed, restarting', {
        kind: o.name,
        error: msg,
        retryInMs: this.backoff,
      });
      this.restartLater();
    });
  }

  on(event: 'add' | 'update' | 'delete', fn: (obj: T) => void): this {
    this.informer.on(event, fn);
    return this;
  }

  async start(): Promise<void> {
    this.failed = false;
    await this.informer.start();
    if (!this.failed && !this.stopped) {
      this.backoff = 500;
      this.o.onProblem?.(undefined);
      this.syncedResolve();
    }
  }

  private restartLater(): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.start();
    }, this.backoff);
    this.backoff = Math.min(this.backoff * 2, 10_000);
  }

  list(): T[] {
    return this.informer.list();
  }

  get(name: string, namespace?: string): T | undefined {
    return this.informer.get(name, namespace);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.informer.stop();
  }
}

function describe(err: unknown): string {
  if (!err) return 'unknown error';
  const e = err as { message?: string; code?: unknown; statusCode?: unknown; body?: unknown };
  return e.message ?? String(e.code ?? e.statusCode ?? err);
}

/** A KubeConfig for a plain-HTTP API server URL (the lab's), or the default one (a real cluster) when undefined. */
export function kubeConfigFor(url: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (!url) {
    kc.loadFromDefault();
    return kc;
  }
  kc.loadFromOptions({
    clusters: [{ name: 'tendril', server: url, skipTLSVerify: true }],
    users: [{ name: 'tendril-agent' }],
    contexts: [{ name: 'tendril', cluster: 'tendril', user: 'tendril-agent' }],
    currentContext: 'tendril',
  });
  return kc;
}

/**
 * ObjectSources over a Kubernetes API server (the lab's, or a real one),
 * through @kubernetes/client-node informers: list, then watch from the
 * list's resourceVersion; when the watch breaks the informer is restarted
 * after a backoff (it relists and reports deletions it missed).
 */
import {
  KubeConfig,
  makeInformer,
  type KubernetesObject,
  type KubernetesListObject,
} from '@kubernetes/client-node';
import type { KubeObject } from '../k8s/objects.js';
import { nopLogger, type Logger } from '../util/log.js';
import type { ObjectSource, SyncerSources } from './syncer.js';

/** A KubeConfig for an API server URL with no authentication (the lab's API server). */
export function kubeConfigFor(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'api', server, skipTLSVerify: true }],
    users: [{ name: 'tendril-clustermesh' }],
    contexts: [{ name: 'api', cluster: 'api', user: 'tendril-clustermesh' }],
    currentContext: 'api',
  });
  return kc;
}

/** An ObjectSource for one collection path (e.g. "/api/v1/nodes"). */
export function informerSource(
  server: string,
  path: string,
  options: { logger?: Logger; retryMs?: number } = {},
): ObjectSource {
  const log = (options.logger ?? nopLogger).child({ source: path });
  return async (h) => {
    const kc = kubeConfigFor(server);
    const list = async (): Promise<KubernetesListObject<KubernetesObject>> => {
      const res = await fetch(server + path);
      if (!res.ok)
        throw new Error(`list ${path}: HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
      return (await res.json()) as KubernetesListObject<KubernetesObject>;
    };
    const informer = makeInformer(kc, path, list);
    informer.on('add', (o) => h.upsert(o as KubeObject));
    informer.on('update', (o) => h.upsert(o as KubeObject));
    informer.on('delete', (o) => h.remove(o as KubeObject));
    let stopped = false;
    let syncedOnce = false;
    let timer: NodeJS.Timeout | undefined;
    let delay = options.retryMs ?? 500;
    const startOnce = async (): Promise<void> => {
      try {
        await informer.start();
        delay = options.retryMs ?? 500;
        if (!syncedOnce) {
          syncedOnce = true;
          h.synced();
        }
      } catch (err) {
        h.error?.(err as Error);
        schedule();
      }
    };
    const schedule = () => {
      if (stopped || timer) return;
      timer = setTimeout(() => {
        timer = undefined;
        void startOnce();
      }, delay);
      delay = Math.min(delay * 2, 10_000);
    };
    informer.on('error', (err: unknown) => {
      if (stopped) return;
      log.debug('watch ended; restarting', { error: err });
      h.error?.(err instanceof Error ? err : new Error(String(err)));
      schedule();
    });
    void startOnce();
    return {
      stop: async () => {
        stopped = true;
        clearTimeout(timer);
        await informer.stop().catch(() => {});
      },
    };
  };
}

/** The syncer's sources over an API server URL. */
export function apiServerSources(server: string, logger?: Logger): SyncerSources {
  const src = (p: string) => informerSource(server, p, { logger });
  return {
    nodes: src('/api/v1/nodes'),
    services: src('/api/v1/services'),
    endpointSlices: src('/apis/discovery.k8s.io/v1/endpointslices'),
    identities: src('/apis/cilium.io/v2/ciliumidentities'),
    endpoints: src('/apis/cilium.io/v2/ciliumendpoints'),
    serviceExports: src('/apis/multicluster.x-k8s.io/v1alpha1/serviceexports'),
  };
}

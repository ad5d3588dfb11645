/**
 * ObjectSources over a Kubernetes API server (the lab's, or any reachable over
 * plain HTTP), on Tendril's own informer (src/k8s/informer.ts) over
 * KubeClient: list, then watch from the list's resourceVersion; a watch the
 * server ends is resumed, a 410 re-lists and reports the deletions missed,
 * failures are retried with backoff (500 ms doubling to 10 s).
 *
 * No value import of @kubernetes/client-node (~1,700 modules under tsx): the
 * clustermesh-apiserver does not load it.
 */
import { kindOfPath } from '../k8s/kind-watcher.js';
import { KubeClient, type KubeClientOptions } from '../k8s/client.js';
import { Informer } from '../k8s/informer.js';
import type { KubeObject } from '../k8s/objects.js';
import { nopLogger, type Logger } from '../util/log.js';
import type { ObjectSource, SyncerSources } from './syncer.js';

/** Options of informerSource. */
export interface InformerSourceOptions {
  logger?: Logger;
  /** First retry delay after a failed list/watch (doubles up to 10 s). Default 500. */
  retryMs?: number;
}

/**
 * An ObjectSource for one collection path (e.g. "/api/v1/nodes"). The source
 * resolves at once; `synced` is called once, after the first complete list
 * (its objects come first, as upserts); `error` is called while list/watch
 * fail (they are retried). Each started source has its own client, closed by
 * its stop.
 * @throws TendrilError `K8S_UNKNOWN_PATH` for a path that is not a served
 *   collection; the source rejects with `K8S_BAD_SERVER` for a server that is
 *   not http:// or unix:.
 */
export function informerSource(
  server: string | KubeClientOptions,
  path: string,
  options: InformerSourceOptions = {},
): ObjectSource {
  const { apiVersion, kind } = kindOfPath(path);
  const log = (options.logger ?? nopLogger).child({ source: path });
  return async (h) => {
    const client = new KubeClient(typeof server === 'string' ? { server } : server);
    const informer = new Informer<KubeObject>({
      client,
      apiVersion,
      kind,
      logger: log,
      ...(options.retryMs ? { minBackoffMs: options.retryMs } : {}),
      onProblem: (cause) => {
        if (cause !== undefined) h.error?.(new Error(cause));
        else h.recovered?.();
      },
    });
    informer.on('add', (o) => h.upsert(o));
    informer.on('update', (o) => h.upsert(o));
    informer.on('delete', (o) => h.remove(o));
    let stopped = false;
    void informer.synced.then(() => {
      if (!stopped) h.synced();
    });
    informer.start();
    return {
      stop: async () => {
        stopped = true;
        const done = informer.stop();
        client.close(); // also ends a list in flight
        await done;
      },
    };
  };
}

/** The syncer's sources over an API server URL (or full client options: CA and credential). */
export function apiServerSources(
  server: string | KubeClientOptions,
  logger?: Logger,
): SyncerSources {
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

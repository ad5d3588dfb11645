/**
 * The cluster DNS daemon: watches Services, EndpointSlices (for headless
 * services) and ServiceImports through @kubernetes/client-node informers,
 * keeps a ServiceRecordStore current, and serves it with the DNS server.
 * A failing watch is restarted with backoff; DNS keeps answering from the
 * last known state meanwhile.
 */
import {
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  KubeConfig,
  makeInformer,
  type KubernetesListObject,
  type KubernetesObject,
  type V1EndpointSlice,
  type V1Service,
} from '@kubernetes/client-node';
import { nopLogger, type Logger } from '../util/log.js';
import { ServiceRecordStore, type ServiceImportLike } from './records.js';
import { startDNSServer, type DNSServer } from './server.js';

export interface DNSDaemonOptions {
  host: string;
  port: number;
  kubeConfig: KubeConfig;
  clusterDomain?: string;
  clusterSetDomain?: string;
  ttl?: number;
  /** Watch multicluster.x-k8s.io ServiceImports for clusterset.local (default true). */
  serviceImports?: boolean;
  logger?: Logger;
}

export interface DNSDaemon {
  server: DNSServer;
  store: ServiceRecordStore;
  /** Resolves when every watch has listed once. */
  synced: Promise<void>;
  /** Watches currently failing, with the cause (for status). */
  problems(): string[];
  stop(): Promise<void>;
}

/** A KubeConfig for an API server URL without authentication (the lab's). */
export function kubeConfigForServer(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'cluster', server, skipTLSVerify: true }],
    users: [{ name: 'user' }],
    contexts: [{ name: 'ctx', cluster: 'cluster', user: 'user' }],
    currentContext: 'ctx',
  });
  return kc;
}

/**
 * Starts the server and the watches. The server answers at once (NXDOMAIN
 * for everything until the first lists arrive); `synced` tells when it is
 * complete.
 * @throws TendrilError DNS_LISTEN when the address cannot be bound.
 */
export async function startDNSDaemon(o: DNSDaemonOptions): Promise<DNSDaemon> {
  const log = (o.logger ?? nopLogger).child({ subsys: 'dns-daemon' });
  const store = new ServiceRecordStore();
  const server = await startDNSServer({
    host: o.host,
    port: o.port,
    source: store,
    logger: o.logger ?? nopLogger,
    ...(o.clusterDomain ? { clusterDomain: o.clusterDomain } : {}),
    ...(o.clusterSetDomain ? { clusterSetDomain: o.clusterSetDomain } : {}),
    ...(o.ttl !== undefined ? { ttl: o.ttl } : {}),
  });
  const core = o.kubeConfig.makeApiClient(CoreV1Api);
  const discovery = o.kubeConfig.makeApiClient(DiscoveryV1Api);
  const custom = o.kubeConfig.makeApiClient(CustomObjectsApi);
  const watches: Watch[] = [
    watch<V1Service>(
      'services',
      o.kubeConfig,
      '/api/v1/services',
      () => core.listServiceForAllNamespaces(),
      log,
      {
        upsert: (s) => store.upsertService(s),
        remove: (s) => store.deleteService(s),
      },
    ),
    watch<V1EndpointSlice>(
      'endpointslices',
      o.kubeConfig,
      '/apis/discovery.k8s.io/v1/endpointslices',
      () => discovery.listEndpointSliceForAllNamespaces(),
      log,
      {
        upsert: (s) => store.upsertEndpointSlice(s),
        remove: (s) => store.deleteEndpointSlice(s),
      },
    ),
  ];
  if (o.serviceImports !== false) {
    watches.push(
      watch<KubernetesObject & ServiceImportLike>(
        'serviceimports',
        o.kubeConfig,
        '/apis/multicluster.x-k8s.io/v1alpha1/serviceimports',
        () =>
          custom.listClusterCustomObject({
            group: 'multicluster.x-k8s.io',
            version: 'v1alpha1',
            plural: 'serviceimports',
          }) as Promise<KubernetesListObject<KubernetesObject & ServiceImportLike>>,
        log,
        {
          upsert: (s) => store.upsertServiceImport(s),
          remove: (s) => store.deleteServiceImport(s),
        },
      ),
    );
  }
  for (const w of watches) w.start();
  const synced = Promise.all(watches.map((w) => w.synced)).then(() => {
    log.info('cluster DNS synced', store.counts());
  });
  return {
    server,
    store,
    synced,
    problems: () => watches.flatMap((w) => (w.problem ? [w.problem] : [])),
    stop: async () => {
      await Promise.all(watches.map((w) => w.stop()));
      await server.close();
    },
  };
}

interface Watch {
  synced: Promise<void>;
  problem: string | undefined;
  start(): void;
  stop(): Promise<void>;
}

function watch<T extends KubernetesObject>(
  name: string,
  kc: KubeConfig,
  path: string,
  list: () => Promise<KubernetesListObject<T>>,
  log: Logger,
  h: { upsert(o: T): void; remove(o: T): void },
): Watch {
  const informer = makeInformer<T>(kc, path, list);
  let stopped = false;
  let backoff = 500;
  let timer: NodeJS.Timeout | undefined;
  let resolveSynced!: () => void;
  const w: Watch = {
    synced: new Promise<void>((r) => (resolveSynced = r)),
    problem: undefined,
    start: () => void run(),
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      await informer.stop();
    },
  };
  informer.on('add', h.upsert);
  informer.on('update', h.upsert);
  informer.on('delete', h.remove);
  informer.on('error', (err: unknown) => {
    w.problem = `watch ${name}: ${describe(err)}`;
    log.warn('watch failed; answering from the last known state and retrying', {
      kind: name,
      error: w.problem,
      retryInMs: backoff,
    });
    if (stopped || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      void run();
    }, backoff);
    backoff = Math.min(backoff * 2, 10_000);
  });
  const run = async () => {
    if (stopped) return;
    const before = w.problem;
    try {
      await informer.start();
    } catch {
      return; // the 'error' handler schedules the retry
    }
    if (w.problem === before) {
      w.problem = undefined;
      backoff = 500;
      resolveSynced();
    }
  };
  return w;
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err && typeof err === 'object' && 'message' in err)
    return String((err as { message: unknown }).message);
  return String(err);
}

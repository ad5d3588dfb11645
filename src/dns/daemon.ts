/**
 * The cluster DNS daemon: watches Services, EndpointSlices (for headless
 * services) and ServiceImports with Tendril's own informer
 * (src/k8s/informer.ts) on a KubeClient, keeps a ServiceRecordStore current,
 * and serves it with the DNS server. The informers retry failing lists and
 * watches with backoff; DNS keeps answering from the last known state
 * meanwhile. No value import of @kubernetes/client-node here (its types only):
 * a lab DNS daemon does not load it.
 */
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import type { KubeClient } from '../k8s/client.js';
import { Informer, type InformerObject } from '../k8s/informer.js';
import { nopLogger, type Logger } from '../util/log.js';
import { ServiceRecordStore, type ServiceImportLike } from './records.js';
import { startDNSServer, type DNSServer } from './server.js';

export interface DNSDaemonOptions {
  host: string;
  port: number;
  /** The API server's client; the daemon owns it from here on (stop() closes it). */
  client: KubeClient;
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
  /** Ends the watches, closes the client and the DNS server. */
  stop(): Promise<void>;
}

/** One watched kind and what its events do to the store. */
interface Watched<T extends InformerObject> {
  apiVersion: string;
  kind: string;
  upsert(o: T): void;
  remove(o: T): void;
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
  let server: DNSServer;
  try {
    server = await startDNSServer({
      host: o.host,
      port: o.port,
      source: store,
      logger: o.logger ?? nopLogger,
      ...(o.clusterDomain ? { clusterDomain: o.clusterDomain } : {}),
      ...(o.clusterSetDomain ? { clusterSetDomain: o.clusterSetDomain } : {}),
      ...(o.ttl !== undefined ? { ttl: o.ttl } : {}),
    });
  } catch (err) {
    o.client.close();
    throw err;
  }
  const problems = new Map<string, string>();
  const informers: Informer<InformerObject>[] = [];
  const add = <T extends InformerObject>(w: Watched<T>): void => {
    const inf = new Informer<T>({
      client: o.client,
      apiVersion: w.apiVersion,
      kind: w.kind,
      logger: log,
      onProblem: (cause) => {
        if (cause === undefined) problems.delete(w.kind);
        else problems.set(w.kind, cause);
      },
    });
    inf.on('add', (x) => w.upsert(x));
    inf.on('update', (x) => w.upsert(x));
    inf.on('delete', (x) => w.remove(x));
    informers.push(inf as unknown as Informer<InformerObject>);
  };
  add<V1Service>({
    apiVersion: 'v1',
    kind: 'Service',
    upsert: (s) => store.upsertService(s),
    remove: (s) => store.deleteService(s),
  });
  add<V1EndpointSlice>({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    upsert: (s) => store.upsertEndpointSlice(s),
    remove: (s) => store.deleteEndpointSlice(s),
  });
  if (o.serviceImports !== false)
    add<InformerObject & ServiceImportLike>({
      apiVersion: 'multicluster.x-k8s.io/v1alpha1',
      kind: 'ServiceImport',
      upsert: (s) => store.upsertServiceImport(s),
      remove: (s) => store.deleteServiceImport(s),
    });
  for (const inf of informers) inf.start();
  const synced = Promise.all(informers.map((i) => i.synced)).then(() => {
    log.info('cluster DNS synced', store.counts());
  });
  let stopping: Promise<void> | undefined;
  return {
    server,
    store,
    synced,
    problems: () => [...problems.values()],
    stop: () =>
      (stopping ??= (async () => {
        const stops = informers.map((i) => i.stop());
        o.client.close(); // also ends a list in flight
        await Promise.all(stops);
        await server.close();
      })()),
  };
}

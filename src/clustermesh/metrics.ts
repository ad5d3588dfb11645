/**
 * Prometheus metrics of the clustermesh-apiserver (`tendril_clustermesh_apiserver_*`,
 * what its syncer wrote to this cluster's etcd) and of kvstoremesh
 * (`tendril_kvstoremesh_*`, the remotes it mirrors), each on its own Registry,
 * read from their status at scrape time. Both run in the clustermesh-apiserver
 * process; they are served on two addresses like Cilium's two containers.
 */
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { STATE_KINDS } from './keys.js';
import type { RemoteClusterStatus } from './kvstoremesh.js';
import type { SyncerStatus } from './syncer.js';
import { DEFAULT_METRICS_PORTS } from '../util/metrics-server.js';

/** The clustermesh-apiserver's default metrics address (DEFAULT_METRICS_PORTS.clustermeshApiserver). */
export const CLUSTERMESH_APISERVER_METRICS_ADDR = `:${DEFAULT_METRICS_PORTS.clustermeshApiserver}`;
/** kvstoremesh's default metrics address (DEFAULT_METRICS_PORTS.kvstoremesh). */
export const KVSTOREMESH_METRICS_ADDR = `:${DEFAULT_METRICS_PORTS.kvstoremesh}`;

/**
 * Registers the clustermesh-apiserver's metrics on `registry` (a new one by default).
 * `status()` returns undefined before the syncer started (figures are then absent).
 */
export function createApiserverMetrics(
  src: { status(): SyncerStatus | undefined },
  registry: Registry = new Registry(),
): Registry {
  collectDefaultMetrics({ register: registry, prefix: 'tendril_clustermesh_apiserver_' });
  new Gauge({
    name: 'tendril_clustermesh_apiserver_kvstore_objects',
    help: "Objects this cluster's syncer keeps in its etcd, by kind",
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      this.reset();
      const s = src.status();
      if (s) for (const k of STATE_KINDS) this.set({ kind: k }, s.counts[k]);
    },
  });
  new Gauge({
    name: 'tendril_clustermesh_apiserver_kvstore_synced',
    help: 'Whether the initial sync of a kind to etcd finished (1) or not (0)',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      this.reset();
      const s = src.status();
      if (s) for (const k of STATE_KINDS) this.set({ kind: k }, s.synced[k] ? 1 : 0);
    },
  });
  new Gauge({
    name: 'tendril_clustermesh_apiserver_sync_errors',
    help: 'Sync problems now: Kubernetes sources failing, plus 1 when the last etcd write failed',
    registers: [registry],
    collect() {
      const s = src.status();
      this.set(s ? Object.keys(s.sourceErrors).length + (s.lastWriteError ? 1 : 0) : 0);
    },
  });
  return registry;
}

/** Registers kvstoremesh's metrics on `registry` (a new one by default). */
export function createKVStoreMeshMetrics(
  src: { status(): RemoteClusterStatus[] },
  registry: Registry = new Registry(),
): Registry {
  collectDefaultMetrics({ register: registry, prefix: 'tendril_kvstoremesh_' });
  const perRemote = (
    name: string,
    help: string,
    read: (s: RemoteClusterStatus) => number,
  ): void => {
    new Gauge({
      name,
      help,
      labelNames: ['source_cluster'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of src.status()) this.set({ source_cluster: s.name }, read(s));
      },
    });
  };
  new Gauge({
    name: 'tendril_kvstoremesh_remote_clusters',
    help: 'Remote clusters configured',
    registers: [registry],
    collect() {
      this.set(src.status().length);
    },
  });
  new Gauge({
    name: 'tendril_kvstoremesh_remote_clusters_ready',
    help: 'Remote clusters connected and fully mirrored',
    registers: [registry],
    collect() {
      this.set(src.status().filter((s) => s.connected && s.synced).length);
    },
  });
  perRemote(
    'tendril_kvstoremesh_remote_cluster_connected',
    'Whether the remote is connected (1) or not (0)',
    (s) => (s.connected ? 1 : 0),
  );
  perRemote(
    'tendril_kvstoremesh_remote_cluster_synced',
    'Whether every kind of the remote is mirrored in this session (1) or not (0)',
    (s) => (s.synced ? 1 : 0),
  );
  perRemote(
    'tendril_kvstoremesh_remote_cluster_stale',
    'Whether the cached state of the remote is the last known, not current (1) or not (0)',
    (s) => (s.stale ? 1 : 0),
  );
  perRemote(
    'tendril_kvstoremesh_remote_cluster_connections_total',
    'Sessions started with the remote',
    (s) => s.connections,
  );
  perRemote(
    'tendril_kvstoremesh_remote_cluster_rejected_records_total',
    'Remote records refused by validation (never mirrored)',
    (s) => s.rejected.total,
  );
  perRemote(
    'tendril_kvstoremesh_remote_cluster_errors',
    'Whether the remote reports a last error (1) or not (0)',
    (s) => (s.lastError ? 1 : 0),
  );
  new Gauge({
    name: 'tendril_kvstoremesh_entries',
    help: 'Entries mirrored into cilium/cache, by remote and kind',
    labelNames: ['source_cluster', 'kind'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of src.status())
        for (const k of STATE_KINDS) this.set({ source_cluster: s.name, kind: k }, s.counts[k]);
    },
  });
  return registry;
}

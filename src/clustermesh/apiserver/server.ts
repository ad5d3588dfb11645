/**
 * The clustermesh-apiserver, composed (main.ts runs it as a lab daemon):
 *
 *   local etcd (mutual TLS, as root) <- access setup (roles, users of readers/)
 *                                    <- syncer (API server -> cilium/state/...)
 *                                    <- kvstoremesh (remotes/ -> cilium/cache/...)
 *   status endpoint on a Unix socket (status.sock)
 *
 * It re-reads remotes/ and readers/ every `scanIntervalMs` (connect and
 * disconnect only write files), so no restart is needed to join or leave.
 */
import type { Server } from 'node:http';
import { EtcdKVStore } from '../../kvstore/etcd.js';
import { nopLogger, type Logger } from '../../util/log.js';
import { TendrilError } from '../../util/errors.js';
import { applyMeshAccess } from '../etcd-access.js';
import { makeClusterConfig, clusterConfigKey, decodeNode, stateDir } from '../keys.js';
import { KVStoreMesh, type RemoteClusterStatus, type RemoteDialer } from '../kvstoremesh.js';
import { meshPaths, type MeshRef } from '../mesh-files.js';
import { fetchStatus, serveStatus, type MeshDaemonStatus } from '../status-api.js';
import { ClusterSyncer, type SyncerSources, type SyncerStatus } from '../syncer.js';
import { apiServerSources } from '../k8s-source.js';
import { kubeconfigClientOptions } from '../../k8s/client-config.js';
import type { ServiceExporter } from '../export.js';
import { parseDuration } from '../../util/duration.js';
import { meshDirSource, type MeshDaemonSettings, type MeshDaemonSource } from './sources.js';

export interface MeshApiServerOptions {
  /** The lab's mesh directory (mesh.json, certificates, remotes/, readers/; see mesh-files.ts). */
  meshDir?: string;
  /** Where settings, credentials, remotes and readers come from (instead of `meshDir`; see sources.ts). */
  source?: MeshDaemonSource;
  logger?: Logger;
  /** How often remotes/ and readers/ are re-read (default 1000 ms). */
  scanIntervalMs?: number;
  /** Kubeconfig with the API server, its CA and this daemon's credential (default: the config's apiServerURL, no credential). */
  kubeconfig?: string;
  /** Override the syncer's sources (tests); default: informers on the config's apiServerURL. */
  sources?: SyncerSources;
  exportService?: ServiceExporter;
  /** Override how remotes are dialed (tests). */
  dialRemote?: RemoteDialer;
  /** Heartbeat interval (default 5000 ms). */
  heartbeatIntervalMs?: number;
}

/** Opens a mutual-TLS client to a remote's etcd with the files connect wrote (lab mesh directory). */
export function fileRemoteDialer(
  labCluster: MeshRef,
  options: { logger?: Logger } = {},
): RemoteDialer {
  return meshDirSource(meshPaths(labCluster).dir, options).dialRemote;
}

/** The running daemon. */
export class MeshApiServer {
  private readonly log: Logger;
  private config!: MeshDaemonSettings;
  private local: EtcdKVStore | undefined;
  private syncer: ClusterSyncer | undefined;
  private mesh: KVStoreMesh | undefined;
  /** This cluster's node pod CIDRs (as exported): remote records overlapping them are refused. */
  private localPodCIDRs: string[] = [];
  private statusServer: Server | undefined;
  private scanTimer: NodeJS.Timeout | undefined;
  private lastReaders = '';
  private lastRemotes = '';
  private readers: string[] = [];
  private readerUsers: string[] = [];
  private problems: string[] = [];
  private etcdHealth: MeshDaemonStatus['etcd'] = {
    ok: false,
    endpoint: '',
    checkedAt: new Date().toISOString(),
  };
  private readonly startedAt = new Date().toISOString();
  private stopped = false;

  private readonly source: MeshDaemonSource;

  /** @throws Error when neither `meshDir` nor `source` is given. */
  constructor(private readonly opts: MeshApiServerOptions) {
    const log = (opts.logger ?? nopLogger).child({ subsys: 'clustermesh-apiserver' });
    if (opts.source) this.source = opts.source;
    else if (opts.meshDir) this.source = meshDirSource(opts.meshDir, { logger: log });
    else throw new Error('MeshApiServer: pass meshDir or source');
    this.log = log.child({ config: this.source.where });
  }

  /**
   * Starts everything: waits for etcd (up to `etcdWaitMs`), sets up access,
   * starts the syncer, kvstoremesh and the status endpoint.
   * @throws TendrilError when the mesh is not enabled or etcd never answers.
   */
  async start(options: { etcdWaitMs?: number } = {}): Promise<void> {
    const cfg = this.source.settings();
    if (!cfg) {
      throw new TendrilError(
        'CLUSTERMESH_NOT_ENABLED',
        `no mesh.json in ${this.source.where}: cluster mesh is not enabled here`,
        { hint: 'run `tendril clustermesh enable` for this cluster' },
      );
    }
    this.config = cfg;
    this.local = new EtcdKVStore({
      endpoints: [cfg.localEndpoint],
      tls: await this.source.localTLS(),
      dialTimeoutMs: 3000,
      requestTimeoutMs: 5000,
      logger: this.log,
    });
    this.etcdHealth.endpoint = cfg.localEndpoint;
    this.statusServer = await serveStatus(this.source.statusSocket(), () => this.status());

    // etcd may still be starting (it is a sibling daemon).
    const deadline = Date.now() + (options.etcdWaitMs ?? 60_000);
    for (;;) {
      try {
        await this.local.get(clusterConfigKey(cfg.clusterName));
        break;
      } catch (err) {
        this.etcdHealth = {
          ok: false,
          endpoint: cfg.localEndpoint,
          error: (err as Error).message,
          checkedAt: new Date().toISOString(),
        };
        if (Date.now() > deadline || this.stopped) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    this.etcdHealth = {
      ok: true,
      endpoint: cfg.localEndpoint,
      checkedAt: new Date().toISOString(),
    };
    await this.scanReaders(true);

    this.syncer = new ClusterSyncer({
      store: this.local,
      clusterName: cfg.clusterName,
      clusterConfig: makeClusterConfig(cfg.clusterId, {
        maxConnectedClusters: cfg.maxConnectedClusters,
      }),
      sources:
        this.opts.sources ??
        apiServerSources(
          this.opts.kubeconfig
            ? kubeconfigClientOptions({ path: this.opts.kubeconfig })
            : cfg.apiServerURL,
          this.log,
        ),
      exportService: this.opts.exportService,
      heartbeatIntervalMs: this.opts.heartbeatIntervalMs,
      logger: this.log,
    });
    await this.syncer.start();

    if (cfg.kvstoremesh) {
      this.mesh = new KVStoreMesh({
        local: this.local,
        localCluster: {
          name: cfg.clusterName,
          id: cfg.clusterId,
          maxConnectedClusters: cfg.maxConnectedClusters,
        },
        dial: this.opts.dialRemote ?? this.source.dialRemote,
        cacheTTLms: cfg.cacheTTL ? parseDuration(cfg.cacheTTL) : undefined,
        localPodCIDRs: () => this.localPodCIDRs,
        logger: this.log,
      });
      await this.refreshLocalPodCIDRs(cfg.clusterName).catch(() => {});
      await this.scanRemotes();
    }
    this.scanTimer = setInterval(() => {
      void this.scanReaders(false).catch((err) =>
        this.log.warn('cannot apply etcd access for readers', { error: err }),
      );
      void this.scanRemotes().catch((err) => this.log.warn('cannot read remotes', { error: err }));
      if (this.mesh)
        void this.refreshLocalPodCIDRs(cfg.clusterName).catch((err) =>
          this.log.warn('cannot read the local pod CIDRs', { error: err }),
        );
    }, this.opts.scanIntervalMs ?? 1000);
    this.scanTimer.unref?.();
    this.log.info('clustermesh-apiserver started', {
      clusterName: cfg.clusterName,
      clusterId: cfg.clusterId,
      endpoints: cfg.accessEndpoints,
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.scanTimer);
    await this.mesh?.stop();
    await this.syncer?.stop();
    await new Promise<void>((r) => (this.statusServer ? this.statusServer.close(() => r()) : r()));
    await this.local?.close();
  }

  /** The syncer's status (undefined before it started): the apiserver's metrics read it. */
  syncerStatus(): SyncerStatus | undefined {
    return this.syncer?.status();
  }

  /** kvstoremesh's per-remote status (empty when off or not started): its metrics read it. */
  kvstoremeshStatus(): RemoteClusterStatus[] {
    return this.mesh?.status() ?? [];
  }

  /** The status document (also served on the socket). */
  async status(): Promise<MeshDaemonStatus> {
    const cfg = this.config;
    if (this.local && this.syncer) {
      try {
        const t = Date.now();
        const kv = await this.local.get(clusterConfigKey(cfg.clusterName));
        this.etcdHealth = {
          ok: true,
          endpoint: cfg.localEndpoint,
          revision: kv?.modRevision,
          checkedAt: new Date().toISOString(),
        };
        if (Date.now() - t > 2000) this.etcdHealth.error = `slow: ${Date.now() - t} ms`;
        await this.readAlarms();
      } catch (err) {
        this.etcdHealth = {
          ok: false,
          endpoint: cfg.localEndpoint,
          error: (err as Error).message,
          checkedAt: new Date().toISOString(),
        };
      }
    }
    const st: MeshDaemonStatus = {
      cluster: {
        name: cfg.clusterName,
        id: cfg.clusterId,
        labCluster: cfg.labCluster,
        maxConnectedClusters: cfg.maxConnectedClusters,
      },
      pid: process.pid,
      startedAt: this.startedAt,
      serviceType: cfg.serviceType,
      accessEndpoints: cfg.accessEndpoints,
      etcd: this.etcdHealth,
      syncer: this.syncer?.status(),
      kvstoremesh: { enabled: cfg.kvstoremesh, remotes: this.mesh?.status() ?? [] },
      readers: [...this.readers],
      readerUsers: [...this.readerUsers],
      problems: [...this.problems],
    };
    if (cfg.cacheTTL) st.kvstoremesh.cacheTTL = cfg.cacheTTL;
    return st;
  }

  /**
   * etcd's alarms and backend size, into the health record. A raised alarm
   * (NOSPACE: the quota is exhausted and etcd refuses writes) makes etcd
   * not ok, with the fix in the error.
   */
  private async readAlarms(): Promise<void> {
    if (!this.local) return;
    try {
      const [alarm, st] = await Promise.all([
        this.local.client.maintenance.alarm({ action: 'Get', memberID: 0, alarm: 'None' }),
        this.local.client.maintenance.status(),
      ]);
      const alarms = (alarm.alarms ?? []).map((a) => String(a.alarm));
      this.etcdHealth.alarms = alarms;
      this.etcdHealth.dbSizeBytes = Number(st.dbSize);
      if (alarms.length > 0) {
        this.etcdHealth.ok = false;
        this.etcdHealth.error = `etcd alarm ${alarms.join(', ')} raised (backend ${Math.round(Number(st.dbSize) / 1048576)} MiB)${alarms.some((a) => a.toUpperCase() === 'NOSPACE') ? ': the backend quota is exhausted and etcd refuses writes; compact and defragment it (etcdctl compact/defrag) then disarm the alarm (etcdctl alarm disarm)' : ''}`;
      }
    } catch (err) {
      this.log.debug('cannot read etcd alarms', { error: err });
    }
  }

  private async scanReaders(force: boolean): Promise<void> {
    if (!this.local) return;
    const records = await this.source.readers();
    const readers = records.map((r) => r.name);
    const users = records.map((r) => r.user).sort();
    const sig = users.join(',');
    if (!force && sig === this.lastReaders) return;
    const { removed } = await applyMeshAccess(this.local, users);
    this.lastReaders = sig;
    this.readers = readers;
    this.readerUsers = users;
    this.log.info('etcd access applied', { readers, removed });
  }

  /** Reads the pod CIDRs this cluster exports for its nodes. */
  private async refreshLocalPodCIDRs(clusterName: string): Promise<void> {
    if (!this.local) return;
    const { kvs } = await this.local.list(stateDir('nodes', clusterName) + '/');
    const cidrs: string[] = [];
    for (const kv of kvs) {
      try {
        cidrs.push(...decodeNode(kv.value).podCIDRs);
      } catch {
        // the syncer writes these; a bad one is not ours to judge here
      }
    }
    this.localPodCIDRs = cidrs;
  }

  private async scanRemotes(): Promise<void> {
    if (!this.mesh) return;
    const { remotes: configs, errors } = await this.source.remotes();
    this.problems = errors;
    const sig = JSON.stringify(configs);
    if (sig === this.lastRemotes) return;
    this.lastRemotes = sig;
    await this.mesh.setRemotes(configs);
    this.log.info('remote clusters configured', { remotes: configs.map((c) => c.name) });
  }
}

/** Reads a running daemon's status for a lab cluster (see status-api.ts). */
export function fetchMeshStatus(labCluster: string, timeoutMs?: number): Promise<MeshDaemonStatus> {
  return fetchStatus(meshPaths(labCluster).statusSocket, timeoutMs);
}

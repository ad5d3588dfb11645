/**
 * The lab API server, composed: storage (disk or etcd) -> Registry (+ the
 * Service allocator in its write path) -> controllers -> HTTP on loopback TCP
 * and optionally a Unix socket; https on a Unix socket, on TCP, and on TCP in
 * another network namespace (the control plane's, for the nodes). `startApiServer` is what the daemon entry
 * (main.ts) and the tests call.
 */
import { join } from 'node:path';
import type { KVStore } from '../../kvstore/types.js';
import { TendrilError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { nopLogger } from '../../util/log.js';
import { bootstrapCluster } from './controllers/bootstrap.js';
import { DeploymentController } from './controllers/deployment.js';
import { EndpointSliceController } from './controllers/endpointslice.js';
import { Scheduler } from './controllers/scheduler.js';
import { ServiceAllocator } from './controllers/service-ip.js';
import { Registry } from './registry.js';
import { ApiHttpServer, type ApiHttpServerOptions } from './server.js';
import { bindInNetns } from './netns-listen.js';
import { PodStreams } from './streaming.js';
import { refuseUnreflectedDaemonSet } from '../daemon-pods.js';
import { EventRecorder, startEventExpiry } from './events.js';
import { DiskPersistence, type Persistence } from './storage.js';
import { EtcdPersistence } from './storage-etcd.js';

/** Options of startApiServer. */
export interface ApiServerOptions {
  /** Cluster name (for logs and the version document). */
  cluster: string;
  /** Where the disk store keeps its files. */
  dataDir: string;
  /** TCP host (loopback). Default 127.0.0.1. */
  host?: string;
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Also listen on this Unix socket. */
  socketPath?: string;
  /** Service CIDR. Default 10.96.0.0/16. */
  serviceCIDR?: string;
  /** "disk" (default) or "etcd" (needs `kvstore`). */
  store?: 'disk' | 'etcd';
  /** The etcd-backed KVStore when store is "etcd". */
  kvstore?: KVStore;
  /** Node-side address of the API server for the `kubernetes` EndpointSlice. */
  advertise?: { ip: string; port: number };
  /** How long Events are kept after their last occurrence (default 1 h). */
  eventTTLMs?: number;
  /** Run the controllers (default true). */
  controllers?: boolean;
  logger?: Logger;
  /** Watch history length (events kept for resumes; older versions get 410). */
  historySize?: number;
  /** Interval of watch BOOKMARK events (default 10 s). */
  bookmarkIntervalMs?: number;
  /** Longest wait for a kubelet to confirm a graceful pod deletion (default 30 s). */
  maxPodGraceSeconds?: number;
  /** Disk store: writes between snapshots. */
  snapshotEvery?: number;
  /** Serving certificate, client CA and tokens of the https listeners (see ./auth.ts). */
  tls?: ApiHttpServerOptions['tls'];
  /** An https Unix socket (authenticated). */
  secureSocketPath?: string;
  /** An https TCP listener (authenticated); port 0 picks one. */
  secureTcp?: { host: string; port: number };
  /**
   * An https TCP listener (authenticated) inside another network namespace:
   * the nodes' way in at <control-plane IP>:6443 (see ./netns-listen.ts).
   */
  secureNetnsTcp?: { netns: string; host: string; port: number };
}

/** A running API server. */
export interface RunningApiServer {
  /** http://127.0.0.1:PORT */
  url: string;
  port: number;
  /** https://HOST:PORT of the secureTcp listener, if any. */
  secureUrl?: string;
  registry: Registry;
  allocator: ServiceAllocator;
  /** Resolves when the controllers have nothing left to do (tests). */
  settle(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts storage, registry, controllers and HTTP listeners.
 * @throws TendrilError (bad CIDR, listen failure, store errors).
 */
export async function startApiServer(options: ApiServerOptions): Promise<RunningApiServer> {
  const log = options.logger ?? nopLogger;
  let persistence: Persistence;
  if ((options.store ?? 'disk') === 'etcd') {
    if (!options.kvstore)
      throw new TendrilError('APISERVER_NO_ETCD', 'store "etcd" needs an etcd KVStore', {
        hint: 'pass --etcd-endpoints URL',
      });
    persistence = new EtcdPersistence(options.kvstore, {
      logger: log.child({ subsys: 'apiserver-etcd' }),
    });
  } else {
    persistence = new DiskPersistence(join(options.dataDir, 'store'), {
      logger: log,
      snapshotEvery: options.snapshotEvery,
    });
  }
  const allocator = new ServiceAllocator(options.serviceCIDR ?? '10.96.0.0/16');
  const registry = new Registry({
    persistence,
    logger: log.child({ subsys: 'registry' }),
    historySize: options.historySize,
    maxPodGraceSeconds: options.maxPodGraceSeconds,
  });
  await registry.start();
  allocator.attach(registry);
  // no DaemonSet controller runs here: only the supervisor's reflections of the agents are stored
  registry.addHooks('DaemonSet', {
    beforeCreate: refuseUnreflectedDaemonSet,
    beforeUpdate: (next) => refuseUnreflectedDaemonSet(next),
  });
  await bootstrapCluster(registry, { advertise: options.advertise });
  const controllers: Array<{ start(): void; stop(): void; idle(): Promise<void> }> = [];
  if (options.controllers ?? true) {
    const events = (component: string) =>
      new EventRecorder(registry, { component }, log.child({ subsys: 'events' }));
    controllers.push(
      new DeploymentController(
        registry,
        log.child({ subsys: 'deployment-controller' }),
        events('deployment-controller'),
      ),
      new Scheduler(registry, log.child({ subsys: 'scheduler' }), events('default-scheduler')),
      new EndpointSliceController(registry, log.child({ subsys: 'endpointslice-controller' })),
    );
    for (const c of controllers) c.start();
  }
  const stopExpiry = startEventExpiry(registry, log.child({ subsys: 'events' }), {
    ...(options.eventTTLMs !== undefined ? { ttlMs: options.eventTTLMs } : {}),
  });
  const http = new ApiHttpServer({
    registry,
    logger: log.child({ subsys: 'http' }),
    bookmarkIntervalMs: options.bookmarkIntervalMs,
    streams: new PodStreams({
      cluster: options.cluster,
      registry,
      log: log.child({ subsys: 'streams' }),
    }),
    ...(options.tls ? { tls: options.tls } : {}),
  });
  let port: number;
  let secureUrl: string | undefined;
  try {
    // first: a namespace without the address fails the start before anything answers
    if (options.secureNetnsTcp) {
      const { netns, host, port: nsPort } = options.secureNetnsTcp;
      const fd = bindInNetns(netns, host, nsPort);
      await http.listenFd(fd, `${host}:${nsPort} in network namespace ${netns}`, true);
    }
    port = await http.listenTcp(options.host ?? '127.0.0.1', options.port);
    if (options.socketPath) await http.listenUnix(options.socketPath);
    if (options.secureSocketPath) await http.listenUnix(options.secureSocketPath, true);
    if (options.secureTcp) {
      const p = await http.listenTcp(options.secureTcp.host, options.secureTcp.port, true);
      secureUrl = `https://${options.secureTcp.host}:${p}`;
    }
  } catch (err) {
    stopExpiry();
    for (const c of controllers) c.stop();
    await http.close();
    await registry.close();
    throw err;
  }
  const url = `http://${options.host ?? '127.0.0.1'}:${port}`;
  log.info('API server listening', {
    cluster: options.cluster,
    url,
    socket: options.socketPath ?? 'none',
    store: options.store ?? 'disk',
  });
  return {
    url,
    port,
    ...(secureUrl ? { secureUrl } : {}),
    registry,
    allocator,
    async settle() {
      // Controllers trigger each other; loop until a full pass finds them all idle.
      for (let i = 0; i < 50; i++) {
        const before = registry.currentRevision();
        await new Promise((r) => setImmediate(r));
        await Promise.all(controllers.map((c) => c.idle()));
        await new Promise((r) => setTimeout(r, 5));
        if (registry.currentRevision() === before) return;
      }
    },
    async close() {
      stopExpiry();
      for (const c of controllers) c.stop();
      await http.close();
      await registry.close();
    },
  };
}

/**
 * How an agent (or the operator) follows the mesh: from its clustermesh
 * config directory (Cilium's `clustermesh-config` shape, see
 * clustermesh-config.ts), it reads its own cluster's mesh etcd, where
 * kvstoremesh puts every remote cluster, with the `local-agent` certificate
 * (read-only on cilium/). Only the clusters the directory names are followed.
 *
 *   const mesh = new MeshStateSource({ configDir: '/var/lib/tendril/clustermesh', localCluster: 'cluster1', logger });
 *   mesh.on((ev) => ...);        // RemoteState events (see remote-state.ts)
 *   mesh.start();                // waits for the directory to name a remote, connects, follows
 *   ...
 *   await mesh.stop();
 *
 * The directory usually fills after the agents start (`clustermesh connect`),
 * so the source polls it; when it empties (disconnect, disable) the source
 * drops everything it knew (emitting deletions), and when a file or
 * certificate changes it reconnects.
 */
import type { EtcdKVStoreOptions } from '../kvstore/etcd.js';
import { EtcdKVStore } from '../kvstore/etcd.js';
import type { KVPair, KVStore, Watch, WatchEvent, WatchOptions } from '../kvstore/types.js';
import { nopLogger, type Logger } from '../util/log.js';
import { readClusterMeshConfig, sharedEtcdOptions } from './clustermesh-config.js';
import { RemoteState, type RemoteStateEvent, type RemoteStateListener } from './remote-state.js';

export interface MeshStateSourceOptions {
  /** The clustermesh config directory (`--clustermesh-config`). */
  configDir: string;
  /** The own cluster's mesh name (cluster-name). */
  localCluster: string;
  /** Also track the own cluster's exported state (default false). */
  includeLocal?: boolean;
  /** The local cluster's pod CIDRs: remote records overlapping them are refused (RemoteState). */
  localPodCIDRs?: () => readonly string[];
  /** How often to read the directory (default 2000 ms). */
  pollMs?: number;
  /** Override the store options (tests); default: from the directory's files. */
  storeOptions?: () => Promise<EtcdKVStoreOptions | undefined>;
  logger?: Logger;
}

/** A store wrapper whose `replace` swaps the etcd client under a stable RemoteState. */
class SwitchableStore implements Pick<KVStore, 'list' | 'watchPrefix'> {
  inner: KVStore | undefined;
  list(prefix: string): Promise<{ kvs: KVPair[]; revision: number }> {
    return this.inner!.list(prefix);
  }
  watchPrefix(
    prefix: string,
    onEvent: (ev: WatchEvent) => void,
    options?: WatchOptions,
  ): Promise<Watch> {
    return this.inner!.watchPrefix(prefix, onEvent, options);
  }
}

/** Follows the cluster's mesh etcd for an agent. */
export class MeshStateSource {
  private remote: RemoteState | undefined;
  private store: EtcdKVStore | undefined;
  private readonly switchable = new SwitchableStore();
  private readonly listeners = new Set<RemoteStateListener>();
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private stopped = false;
  private inflight: Promise<void> | undefined;
  private fingerprint: string | undefined;
  private readonly log: Logger;
  /** Last connection error (for the agent's status). */
  lastError: string | undefined;

  constructor(private readonly opts: MeshStateSourceOptions) {
    this.log = (opts.logger ?? nopLogger).child({ subsys: 'mesh-source' });
  }

  /** The current RemoteState (undefined while the mesh is not enabled or not reached yet). */
  get state(): RemoteState | undefined {
    return this.remote;
  }

  /** Subscribes to RemoteState events of whichever connection is current. */
  on(l: RemoteStateListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Starts polling for the mesh and following it. */
  start(): void {
    this.stopped = false;
    const tick = () => {
      if (this.busy || this.stopped) return;
      this.busy = true;
      this.inflight = this.reconcile()
        .catch((err) => {
          this.lastError = (err as Error).message;
          this.log.debug('mesh etcd not reachable yet', { error: err });
        })
        .finally(() => (this.busy = false));
    };
    tick();
    this.timer = setInterval(tick, this.opts.pollMs ?? 2000);
    this.timer.unref?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    // a reconcile under way may still connect: let it finish, then disconnect what it made
    await this.inflight;
    await this.disconnect(false);
  }

  private emit(ev: RemoteStateEvent): void {
    for (const l of this.listeners) {
      try {
        l(ev);
      } catch (err) {
        this.log.error('listener failed', { error: err });
      }
    }
  }

  /** The remote clusters the config directory names (empty: not in a mesh). */
  remoteNames: ReadonlySet<string> = new Set();

  private async reconcile(): Promise<void> {
    const remotes = readClusterMeshConfig(this.opts.configDir);
    this.remoteNames = new Set(remotes.map((r) => r.name));
    if (remotes.length === 0) {
      if (this.remote) {
        this.log.info('no remote cluster configured: dropping remote state');
        await this.disconnect(true);
      }
      this.lastError = undefined;
      return;
    }
    const shared = await sharedEtcdOptions(remotes);
    if (this.remote && this.fingerprint === shared.fingerprint) return;
    if (this.remote) await this.disconnect(true); // new endpoints or certificates
    const options = this.opts.storeOptions ? await this.opts.storeOptions() : shared.options;
    if (!options) return;
    const store = new EtcdKVStore({ ...options, logger: this.log });
    this.switchable.inner = store;
    const rs = new RemoteState({
      store: this.switchable,
      localCluster: this.opts.localCluster,
      includeLocal: this.opts.includeLocal,
      ...(this.opts.localPodCIDRs ? { localPodCIDRs: this.opts.localPodCIDRs } : {}),
      logger: this.log,
    });
    rs.on((ev) => this.emit(ev));
    try {
      await rs.start();
    } catch (err) {
      await store.close().catch(() => {});
      throw err;
    }
    this.store = store;
    this.remote = rs;
    this.fingerprint = shared.fingerprint;
    this.lastError = undefined;
    this.log.info('following the cluster mesh', {
      endpoints: options.endpoints,
      remotes: [...this.remoteNames],
    });
  }

  /** Stops following; with `emitRemovals`, emits deletions for everything known (the mesh went away). */
  private async disconnect(emitRemovals: boolean): Promise<void> {
    const rs = this.remote;
    this.remote = undefined;
    this.fingerprint = undefined;
    if (rs) {
      await rs.stop();
      if (emitRemovals) {
        for (const c of rs.clusters()) {
          if (c.local) continue;
          const kinds = [
            ['nodes', c.nodes],
            ['services', c.services],
            ['identities', c.identities],
            ['ip', c.ipcache],
            ['serviceexports', c.serviceExports],
          ] as const;
          for (const [kind, m] of kinds)
            for (const [k, v] of m as Map<unknown, unknown>)
              this.emit({ type: 'delete', cluster: c.name, kind, name: String(k), previous: v });
          this.emit({ type: 'cluster', cluster: c.name, change: 'removed' });
        }
      }
    }
    await this.store?.close().catch(() => {});
    this.store = undefined;
  }
}

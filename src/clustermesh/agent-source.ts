/**
 * How an agent (or the operator) of a lab cluster follows the mesh: it reads
 * only its own cluster's mesh etcd (kvstoremesh puts every remote cluster
 * there), with the `local-agent` certificate (read-only on cilium/).
 *
 *   const mesh = new MeshStateSource({ labCluster: 'cluster1', localCluster: 'cluster1', logger });
 *   mesh.state.on((ev) => ...);   // RemoteState events (see remote-state.ts)
 *   mesh.start();                  // waits for `clustermesh enable`, connects, follows; survives disable/enable
 *   ...
 *   await mesh.stop();
 *
 * The mesh is usually enabled after the agents start, so the source polls
 * for the cluster's mesh.json; when the mesh is disabled it drops
 * everything it knew (emitting deletions), and starts over on re-enable.
 */
import { readFile } from 'node:fs/promises';
import { EtcdKVStore, type EtcdKVStoreOptions } from '../kvstore/etcd.js';
import type { KVPair, KVStore, Watch, WatchEvent, WatchOptions } from '../kvstore/types.js';
import { nopLogger, type Logger } from '../util/log.js';
import { meshPaths, readMeshConfig } from './mesh-files.js';
import { ETCD_CLIENT_PORT } from './mesh-files.js';
import { RemoteState, type RemoteStateEvent, type RemoteStateListener } from './remote-state.js';

/**
 * KVStore options for the local agents of a lab cluster: the mesh etcd on
 * the control plane (https://<cp ip>:2379) with the local-agent certificate.
 * Undefined when the mesh is not enabled.
 */
export async function agentMeshStoreOptions(
  labCluster: string,
): Promise<EtcdKVStoreOptions | undefined> {
  const cfg = readMeshConfig(labCluster);
  if (!cfg) return undefined;
  const p = meshPaths(labCluster);
  const [ca, cert, key] = await Promise.all([
    readFile(p.caCert, 'utf8'),
    readFile(p.agentCert, 'utf8'),
    readFile(p.agentKey, 'utf8'),
  ]);
  return {
    endpoints: [`https://${cfg.listenIP}:${ETCD_CLIENT_PORT}`],
    tls: { ca, cert, key },
    dialTimeoutMs: 3000,
    requestTimeoutMs: 5000,
  };
}

export interface MeshStateSourceOptions {
  labCluster: string;
  /** The own cluster's mesh name (install --cluster-name). */
  localCluster: string;
  /** Also track the own cluster's exported state (default false). */
  includeLocal?: boolean;
  /** The local cluster's pod CIDRs: remote records overlapping them are refused (RemoteState). */
  localPodCIDRs?: () => readonly string[];
  /** How often to look for the mesh being enabled/disabled (default 2000 ms). */
  pollMs?: number;
  /** Override the store options (tests); default agentMeshStoreOptions(labCluster). */
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
  private enabledAt: string | undefined;
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
    const tick = () => {
      if (this.busy) return;
      this.busy = true;
      void this.reconcile()
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
    clearInterval(this.timer);
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

  private async reconcile(): Promise<void> {
    const cfg = readMeshConfig(this.opts.labCluster);
    if (!cfg) {
      if (this.remote) {
        this.log.info('cluster mesh disabled: dropping remote state');
        await this.disconnect(true);
      }
      return;
    }
    if (this.remote && this.enabledAt === cfg.enabledAt) return;
    if (this.remote) await this.disconnect(true); // re-enabled: new certificates
    const options = await (
      this.opts.storeOptions ?? (() => agentMeshStoreOptions(this.opts.labCluster))
    )();
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
    this.enabledAt = cfg.enabledAt;
    this.lastError = undefined;
    this.log.info('following the cluster mesh', { endpoints: options.endpoints });
  }

  /** Stops following; with `emitRemovals`, emits deletions for everything known (the mesh went away). */
  private async disconnect(emitRemovals: boolean): Promise<void> {
    const rs = this.remote;
    this.remote = undefined;
    this.enabledAt = undefined;
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

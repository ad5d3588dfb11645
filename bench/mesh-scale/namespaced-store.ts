/**
 * A KVStore seen through a key namespace: every key the caller names is
 * stored under `prefix + key`, and keys read back have the prefix removed.
 * The mesh-scale benchmark gives each simulated remote cluster its own
 * namespace in one shared etcd, so many "remote etcds" fit on one machine
 * while kvstoremesh talks to each through its own client session.
 *
 * `sever()` simulates the loss of this session's connection: every open
 * watch gets its onDisconnect hook (as the etcd backend calls it), which
 * makes a kvstoremesh session end and reconnect.
 */
import type {
  KVPair,
  KVStore,
  Lease,
  LeaseOptions,
  Watch,
  WatchEvent,
  WatchOptions,
} from '../../src/kvstore/types.js';

/** KVStore over `inner` with every key under `prefix`; closing it closes `inner`. */
export class NamespacedKVStore implements KVStore {
  private readonly hooks = new Set<WatchOptions>();

  constructor(
    private readonly inner: KVStore,
    readonly prefix: string,
    private readonly closeInner = true,
  ) {
    if (!prefix.endsWith('/'))
      throw new Error(`namespace prefix "${prefix}" must end with "/" (e.g. "sim/c001/")`);
  }

  private strip(kv: KVPair): KVPair {
    return { ...kv, key: kv.key.slice(this.prefix.length) };
  }

  async get(key: string): Promise<KVPair | undefined> {
    const kv = await this.inner.get(this.prefix + key);
    return kv ? this.strip(kv) : undefined;
  }

  async list(prefix: string): Promise<{ kvs: KVPair[]; revision: number }> {
    const r = await this.inner.list(this.prefix + prefix);
    return { kvs: r.kvs.map((kv) => this.strip(kv)), revision: r.revision };
  }

  put(key: string, value: string, options?: { lease?: Lease }): Promise<number> {
    return this.inner.put(this.prefix + key, value, options);
  }

  create(key: string, value: string, options?: { lease?: Lease }): Promise<boolean> {
    return this.inner.create(this.prefix + key, value, options);
  }

  delete(key: string): Promise<void> {
    return this.inner.delete(this.prefix + key);
  }

  deletePrefix(prefix: string): Promise<void> {
    return this.inner.deletePrefix(this.prefix + prefix);
  }

  async putMany(
    pairs: readonly { key: string; value: string }[],
    options?: { lease?: Lease },
  ): Promise<number> {
    const mapped = pairs.map((p) => ({ key: this.prefix + p.key, value: p.value }));
    if (this.inner.putMany) return this.inner.putMany(mapped, options);
    let rev = 0;
    for (const p of mapped) rev = await this.inner.put(p.key, p.value, options);
    return rev;
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    const mapped = keys.map((k) => this.prefix + k);
    if (this.inner.deleteMany) return this.inner.deleteMany(mapped);
    for (const k of mapped) await this.inner.delete(k);
  }

  async watchPrefix(
    prefix: string,
    onEvent: (ev: WatchEvent) => void,
    options: WatchOptions = {},
  ): Promise<Watch> {
    const strip = (kv: KVPair | undefined) => (kv ? this.strip(kv) : undefined);
    const w = await this.inner.watchPrefix(
      this.prefix + prefix,
      (ev) => {
        if (ev.type === 'put') {
          const prev = strip(ev.prev);
          onEvent({ type: 'put', kv: this.strip(ev.kv), ...(prev ? { prev } : {}) });
        } else {
          const prev = strip(ev.prev);
          onEvent({
            type: 'delete',
            key: ev.key.slice(this.prefix.length),
            modRevision: ev.modRevision,
            ...(prev ? { prev } : {}),
          });
        }
      },
      options,
    );
    this.hooks.add(options);
    return {
      close: async () => {
        this.hooks.delete(options);
        await w.close();
      },
    };
  }

  grantLease(ttlSeconds: number, options?: LeaseOptions): Promise<Lease> {
    return this.inner.grantLease(ttlSeconds, options);
  }

  /** Tells every open watch its connection was lost (their onDisconnect hooks). */
  sever(reason = 'session severed by the benchmark'): number {
    const hooks = [...this.hooks];
    for (const h of hooks) h.onDisconnect?.(new Error(reason));
    return hooks.length;
  }

  async close(): Promise<void> {
    this.hooks.clear();
    if (this.closeInner) await this.inner.close();
  }
}

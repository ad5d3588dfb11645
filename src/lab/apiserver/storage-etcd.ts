/**
 * The API server's "etcd" store: objects under /registry/... in etcd through
 * the KVStore interface (src/kvstore/types.ts), with etcd revisions as
 * resourceVersions, as in Kubernetes. KVStore.delete does not return the
 * revision of the delete, so a watch on /registry/ reports it: a delete waits
 * for its own event. The API server must be the only writer under /registry/.
 */
import type { KVStore, Watch } from '../../kvstore/types.js';
import { TendrilError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { nopLogger } from '../../util/log.js';
import type { Persistence, StoredKV } from './storage.js';

const PREFIX = '/registry/';

/** Persistence in etcd. */
export class EtcdPersistence implements Persistence {
  private watch: Watch | undefined;
  private readonly waiters = new Map<string, (rev: number) => void>();
  private readonly log: Logger;

  constructor(
    private readonly kv: KVStore,
    options: { logger?: Logger; deleteTimeoutMs?: number } = {},
  ) {
    this.log = options.logger ?? nopLogger;
    this.deleteTimeoutMs = options.deleteTimeoutMs ?? 10_000;
  }

  private readonly deleteTimeoutMs: number;

  async load(): Promise<{ kvs: StoredKV[]; revision: number }> {
    const { kvs, revision } = await this.kv.list(PREFIX);
    this.watch = await this.kv.watchPrefix(
      PREFIX,
      (ev) => {
        if (ev.type !== 'delete') return;
        const w = this.waiters.get(ev.key);
        if (w) {
          this.waiters.delete(ev.key);
          w(ev.modRevision);
        }
      },
      {
        afterRevision: revision,
        onError: (err) =>
          this.log.error('etcd watch on /registry/ broke; deletes will time out', { err }),
      },
    );
    return {
      kvs: kvs.map((k) => ({
        key: k.key,
        value: k.value,
        createRevision: k.createRevision,
        modRevision: k.modRevision,
      })),
      revision,
    };
  }

  async put(key: string, value: string): Promise<number> {
    return this.kv.put(key, value);
  }

  /** @throws TendrilError `APISERVER_ETCD_DELETE_TIMEOUT` if the delete's event never arrives. */
  async delete(key: string): Promise<number> {
    const seen = new Promise<number>((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters.delete(key);
        reject(
          new TendrilError(
            'APISERVER_ETCD_DELETE_TIMEOUT',
            `delete ${key} in etcd: no watch event within ${this.deleteTimeoutMs} ms`,
            { hint: 'check that etcd is healthy' },
          ),
        );
      }, this.deleteTimeoutMs);
      this.waiters.set(key, (rev) => {
        clearTimeout(t);
        resolve(rev);
      });
    });
    try {
      await this.kv.delete(key);
    } catch (err) {
      this.waiters.delete(key);
      seen.catch(() => {});
      throw err;
    }
    return seen;
  }

  async close(): Promise<void> {
    await this.watch?.close();
  }
}

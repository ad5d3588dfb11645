/**
 * Identities in the kvstore, Cilium's layout:
 *
 *   cilium/state/identities/v1/id/<id>         -> labels (Cilium's form, "k8s:a=b;k8s:c=d;")
 *   cilium/state/identities/v1/value/<labels>  -> <id>   (index; canonical label string)
 *
 * The index key decides: allocation creates the ID key (create-if-absent),
 * then the index key (create-if-absent). If another allocator's index key
 * won, ours is undone and theirs returned. So one label set never gets two
 * IDs, and one ID never two label sets, using only KVStore.create.
 */
import type { KVStore } from '../kvstore/types.js';
import type { AllocateResult, IdentityBackend, IdentityRecord } from './backend.js';
import { canonicalLabels, labelsKVValue, parseLabels } from './labels.js';

/** Default prefix of identity keys. STABLE. */
export const IDENTITIES_PREFIX = 'cilium/state/identities/v1/';

export interface KVStoreIdentityBackendOptions {
  /** Key prefix (default cilium/state/identities/v1/). */
  prefix?: string;
}

/** IdentityBackend over any KVStore. */
export class KVStoreIdentityBackend implements IdentityBackend {
  private readonly prefix: string;

  constructor(
    private readonly store: Pick<KVStore, 'get' | 'list' | 'create' | 'delete'>,
    options: KVStoreIdentityBackendOptions = {},
  ) {
    this.prefix = options.prefix ?? IDENTITIES_PREFIX;
  }

  /** `<prefix>id/<id>` */
  idKey(id: number): string {
    return `${this.prefix}id/${id}`;
  }

  /** `<prefix>value/<canonical labels>` */
  valueKey(labels: string): string {
    return `${this.prefix}value/${labels}`;
  }

  async lookup(labels: string): Promise<number | undefined> {
    labels = canonicalLabels(labels);
    const kv = await this.store.get(this.valueKey(labels));
    if (!kv) return undefined;
    const id = Number(kv.value);
    // An index entry whose ID key is gone (a crashed release) is no binding.
    const idkv = await this.store.get(this.idKey(id));
    if (!idkv || canonicalLabels(idkv.value) !== labels) return undefined;
    return id;
  }

  async get(id: number): Promise<string | undefined> {
    const kv = await this.store.get(this.idKey(id));
    return kv ? canonicalLabels(kv.value) : undefined;
  }

  async allocate(id: number, labels: string): Promise<AllocateResult> {
    labels = canonicalLabels(labels);
    const value = labelsKVValue(parseLabels(labels));
    for (let attempt = 0; attempt < 5; attempt++) {
      const existing = await this.store.get(this.valueKey(labels));
      if (existing) {
        const eid = Number(existing.value);
        const idkv = await this.store.get(this.idKey(eid));
        if (idkv && canonicalLabels(idkv.value) === labels) return { id: eid, created: false };
        // Stale index (its ID key was released or reused): remove it and retry.
        await this.store.delete(this.valueKey(labels));
        continue;
      }
      let ownIdKey = await this.store.create(this.idKey(id), value);
      if (!ownIdKey) {
        const cur = await this.store.get(this.idKey(id));
        if (!cur) continue; // released in between: retry
        if (canonicalLabels(cur.value) !== labels) return { taken: true };
        ownIdKey = false; // an orphan ID key for our labels (e.g. an allocator died before its index write): adopt it
      }
      if (await this.store.create(this.valueKey(labels), String(id))) return { id, created: true };
      // Another allocator bound the labels first. If it bound them to this very
      // ID (it adopted our ID key), the binding stands; else undo our ID key.
      const winner = await this.store.get(this.valueKey(labels));
      if (winner && Number(winner.value) === id) return { id, created: false };
      if (ownIdKey) await this.store.delete(this.idKey(id));
    }
    return { taken: true };
  }

  async release(id: number, labels: string): Promise<void> {
    labels = canonicalLabels(labels);
    const idx = await this.store.get(this.valueKey(labels));
    if (idx && Number(idx.value) === id) await this.store.delete(this.valueKey(labels));
    const cur = await this.store.get(this.idKey(id));
    if (cur && canonicalLabels(cur.value) === labels) await this.store.delete(this.idKey(id));
  }

  async list(): Promise<IdentityRecord[]> {
    const { kvs } = await this.store.list(`${this.prefix}id/`);
    const out: IdentityRecord[] = [];
    for (const kv of kvs) {
      const id = Number(kv.key.slice(this.prefix.length + 3));
      if (!Number.isInteger(id) || id <= 0) continue;
      try {
        out.push({ id, labels: canonicalLabels(kv.value) });
      } catch {
        // A value that is no label list is not ours to interpret; skip it.
      }
    }
    return out.sort((a, b) => a.id - b.id);
  }
}

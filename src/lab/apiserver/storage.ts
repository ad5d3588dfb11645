/**
 * Persistence behind the API server's object cache. Two backends:
 *  - DiskPersistence ("disk", the default): an append-only log of writes in the
 *    data directory plus a periodic snapshot; a restart replays snapshot + log,
 *    so every object and the resourceVersion counter survive.
 *  - EtcdPersistence ("etcd", storage-etcd.ts): keys under /registry/... in
 *    etcd through the KVStore interface; etcd revisions are resourceVersions.
 *
 * Values are object JSON without metadata.resourceVersion; the cache sets it
 * from the key's modRevision, as the Kubernetes API server does with etcd.
 */
import {
  closeSync,
  writeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { TendrilError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { nopLogger } from '../../util/log.js';

/** One stored object. */
export interface StoredKV {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
}

/** What the object cache needs from a store. Writes are issued one at a time by the caller. */
export interface Persistence {
  /** Every stored key under /registry/ and the store revision they were read at. */
  load(): Promise<{ kvs: StoredKV[]; revision: number }>;
  /** Writes a key; returns the revision of the write. */
  put(key: string, value: string): Promise<number>;
  /** Deletes a key; returns the revision of the delete. */
  delete(key: string): Promise<number>;
  close(): Promise<void>;
}

interface LogEntry {
  rev: number;
  key: string;
  /** Object JSON, or null for a delete. */
  value: string | null;
}

interface Snapshot {
  revision: number;
  kvs: StoredKV[];
}

/** Options of DiskPersistence. */
export interface DiskPersistenceOptions {
  /** Writes after which the log is folded into a new snapshot. Default 5000. */
  snapshotEvery?: number;
  logger?: Logger;
}

/**
 * In-memory map persisted as snapshot.json + wal.log in `dir`. Each write is
 * appended (write(2), so it survives the process being killed) before it is
 * acknowledged; the snapshot is rewritten atomically (tmp + rename) every
 * `snapshotEvery` writes and on close.
 */
export class DiskPersistence implements Persistence {
  private readonly kvs = new Map<string, StoredKV>();
  private revision = 0;
  private sinceSnapshot = 0;
  private readonly snapshotEvery: number;
  private readonly log: Logger;
  private readonly walPath: string;
  private readonly snapPath: string;
  private walFd: number | undefined;

  constructor(
    readonly dir: string,
    options: DiskPersistenceOptions = {},
  ) {
    this.snapshotEvery = options.snapshotEvery ?? 5000;
    this.log = options.logger ?? nopLogger;
    this.walPath = join(dir, 'wal.log');
    this.snapPath = join(dir, 'snapshot.json');
  }

  /** @throws TendrilError `apiserver.StoreCorrupt` if the snapshot cannot be parsed. */
  async load(): Promise<{ kvs: StoredKV[]; revision: number }> {
    mkdirSync(this.dir, { recursive: true });
    if (existsSync(this.snapPath)) {
      let snap: Snapshot;
      try {
        snap = JSON.parse(readFileSync(this.snapPath, 'utf8')) as Snapshot;
      } catch (err) {
        throw new TendrilError(
          'apiserver.StoreCorrupt',
          `read API store snapshot ${this.snapPath}: ${String(err)}`,
          {
            hint: 'the file is damaged; move it away to start with an empty store (objects will be lost)',
            cause: err,
          },
        );
      }
      this.revision = snap.revision;
      for (const kv of snap.kvs) this.kvs.set(kv.key, kv);
    }
    if (existsSync(this.walPath)) {
      const lines = readFileSync(this.walPath, 'utf8').split('\n');
      let replayed = 0;
      for (let i = 0; i < lines.length; i++) {
        const line = lines[i]!;
        if (!line) continue;
        let e: LogEntry;
        try {
          e = JSON.parse(line) as LogEntry;
        } catch {
          // A torn last line (killed mid-write) is expected; anything earlier is not.
          if (lines.slice(i + 1).some((l) => l.length > 0))
            this.log.warn('skipping unparsable API store log line', { line: i + 1 });
          continue;
        }
        if (e.rev <= this.revision) continue;
        this.apply(e);
        replayed++;
      }
      this.sinceSnapshot = replayed;
    }
    return { kvs: [...this.kvs.values()].map((kv) => ({ ...kv })), revision: this.revision };
  }

  private apply(e: LogEntry): void {
    this.revision = e.rev;
    if (e.value === null) this.kvs.delete(e.key);
    else {
      const prev = this.kvs.get(e.key);
      this.kvs.set(e.key, {
        key: e.key,
        value: e.value,
        createRevision: prev?.createRevision ?? e.rev,
        modRevision: e.rev,
      });
    }
  }

  private write(key: string, value: string | null): number {
    const e: LogEntry = { rev: this.revision + 1, key, value };
    this.walFd ??= openSync(this.walPath, 'a');
    writeSync(this.walFd, JSON.stringify(e) + '\n');
    this.apply(e);
    if (++this.sinceSnapshot >= this.snapshotEvery) this.snapshot();
    return e.rev;
  }

  async put(key: string, value: string): Promise<number> {
    return this.write(key, value);
  }

  async delete(key: string): Promise<number> {
    return this.write(key, null);
  }

  /** Writes snapshot.json atomically and empties the log. */
  snapshot(): void {
    const tmp = `${this.snapPath}.tmp`;
    const snap: Snapshot = { revision: this.revision, kvs: [...this.kvs.values()] };
    writeFileSync(tmp, JSON.stringify(snap));
    const fd = openSync(tmp, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.snapPath);
    // Entries at or below the snapshot revision are skipped on replay, so a crash between
    // the rename and this truncate is harmless.
    if (this.walFd !== undefined) {
      closeSync(this.walFd);
      this.walFd = undefined;
    }
    writeFileSync(this.walPath, '');
    this.sinceSnapshot = 0;
  }

  async close(): Promise<void> {
    if (this.sinceSnapshot > 0) this.snapshot();
    if (this.walFd !== undefined) {
      closeSync(this.walFd);
      this.walFd = undefined;
    }
  }
}

/** The storage key of an object: /registry/<plural>[/<group> for non-core-ish groups]/<ns>/<name>. */
export function registryKey(
  plural: string,
  group: string,
  namespace: string | undefined,
  name: string,
): string {
  const builtin = group === '' || group === 'apps' || group === 'discovery.k8s.io';
  const base = builtin ? `/registry/${plural}` : `/registry/${group}/${plural}`;
  return namespace ? `${base}/${namespace}/${name}` : `${base}/${name}`;
}

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
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { TendrilError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { nopLogger } from '../../util/log.js';
import { writeFileAtomic, writeFileAtomicSync } from '../../util/atomic-write.js';

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

/** Snapshot header (older snapshots were one document that also held `kvs`). */
interface Snapshot {
  revision: number;
  kvs?: StoredKV[];
}

/** Options of DiskPersistence. */
export interface DiskPersistenceOptions {
  /** Writes after which the log is folded into a new snapshot. Default 5000. */
  snapshotEvery?: number;
  logger?: Logger;
}

/**
 * In-memory map persisted in `dir` as snapshot.json plus write-ahead logs.
 * Each write is appended to wal.log (write(2), so it survives the process
 * being killed) before it is acknowledged. Every `snapshotEvery` writes the
 * log is rotated to wal-<revision>.log and a snapshot is written in the
 * background (JSON lines, in chunks, then fsync and an atomic rename), after
 * which the rotated logs are removed; writes go on meanwhile. Start = snapshot
 * + every remaining log, entries at or below the snapshot's revision skipped.
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
  private snapshotting: Promise<void> | undefined;
  private locked: string | undefined;

  constructor(
    readonly dir: string,
    options: DiskPersistenceOptions = {},
  ) {
    this.snapshotEvery = options.snapshotEvery ?? 5000;
    this.log = options.logger ?? nopLogger;
    this.walPath = join(dir, 'wal.log');
    this.snapPath = join(dir, 'snapshot.json');
  }

  /** Rotated logs (wal-<rev>.log), oldest first. */
  private rotatedLogs(): string[] {
    return readdirSync(this.dir)
      .map((n) => /^wal-(\d+)\.log$/.exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .sort((a, b) => Number(a[1]) - Number(b[1]))
      .map((m) => join(this.dir, m[0]));
  }

  /**
   * Takes the directory's lock (a pid file: one API server per store) and reads the store.
   * @throws TendrilError `APISERVER_STORE_LOCKED` if a live process holds the store,
   *   `APISERVER_STORE_CORRUPT` if the snapshot cannot be parsed.
   */
  async load(): Promise<{ kvs: StoredKV[]; revision: number }> {
    mkdirSync(this.dir, { recursive: true });
    this.lock();
    if (existsSync(this.snapPath)) {
      try {
        const lines = readFileSync(this.snapPath, 'utf8').split('\n').filter(Boolean);
        const head = JSON.parse(lines[0] ?? '{}') as Partial<Snapshot>;
        if (typeof head.revision !== 'number') throw new Error('no revision in the header');
        this.revision = head.revision;
        // One-document form ({revision, kvs}) or JSON lines (header, then one kv per line).
        const kvs = head.kvs ?? lines.slice(1).map((l) => JSON.parse(l) as StoredKV);
        for (const kv of kvs) this.kvs.set(kv.key, kv);
      } catch (err) {
        throw new TendrilError(
          'APISERVER_STORE_CORRUPT',
          `read API store snapshot ${this.snapPath}: ${String(err)}`,
          {
            hint: 'the file is damaged; move it away to start with an empty store (objects will be lost)',
            cause: err,
          },
        );
      }
    }
    for (const file of [...this.rotatedLogs(), this.walPath]) {
      if (!existsSync(file)) continue;
      const lines = readFileSync(file, 'utf8').split('\n');
      for (let i = 0; i < lines.length; i++) {
        const line = lines[i]!;
        if (!line) continue;
        let e: LogEntry;
        try {
          e = JSON.parse(line) as LogEntry;
        } catch {
          // A torn last line (killed mid-write) is expected; anything earlier is not.
          if (lines.slice(i + 1).some((l) => l.length > 0))
            this.log.warn('skipping unparsable API store log line', { file, line: i + 1 });
          continue;
        }
        if (e.rev <= this.revision) continue;
        this.apply(e);
        this.sinceSnapshot++;
      }
    }
    return { kvs: [...this.kvs.values()].map((kv) => ({ ...kv })), revision: this.revision };
  }

  private lock(): void {
    const lockPath = join(this.dir, 'LOCK');
    if (existsSync(lockPath)) {
      const pid = Number(readFileSync(lockPath, 'utf8').trim());
      if (pid && pid !== process.pid && processAlive(pid)) {
        throw new TendrilError(
          'APISERVER_STORE_LOCKED',
          `API store ${this.dir} is in use by process ${pid}`,
          {
            hint: 'another API server runs on this data directory; stop it first (tendril lab list)',
          },
        );
      }
    }
    writeFileSync(lockPath, `${process.pid}\n`);
    this.locked = lockPath;
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
    if (++this.sinceSnapshot >= this.snapshotEvery && !this.snapshotting) {
      this.snapshotting = this.snapshotInBackground()
        .catch((err) => this.log.error('API store snapshot failed; the logs are kept', { err }))
        .finally(() => (this.snapshotting = undefined));
    }
    return e.rev;
  }

  async put(key: string, value: string): Promise<number> {
    return this.write(key, value);
  }

  async delete(key: string): Promise<number> {
    return this.write(key, null);
  }

  private rotate(): void {
    if (this.walFd !== undefined) {
      closeSync(this.walFd);
      this.walFd = undefined;
    }
    if (existsSync(this.walPath))
      renameSync(this.walPath, join(this.dir, `wal-${this.revision}.log`));
    this.sinceSnapshot = 0;
  }

  private async snapshotInBackground(): Promise<void> {
    this.rotate();
    const revision = this.revision;
    // StoredKV entries are replaced on write, never changed in place: a shallow copy is a consistent view.
    const kvs = [...this.kvs.values()];
    await writeFileAtomic(
      this.snapPath,
      async (fh) => {
        await fh.write(JSON.stringify({ revision }) + '\n');
        for (let i = 0; i < kvs.length; i += 500) {
          await fh.write(
            kvs
              .slice(i, i + 500)
              .map((kv) => JSON.stringify(kv))
              .join('\n') + '\n',
          );
        }
      },
      { tmpPath: `${this.snapPath}.tmp` },
    );
    for (const f of this.rotatedLogs()) {
      if (Number(/wal-(\d+)\.log$/.exec(f)![1]) <= revision) rmSync(f, { force: true });
    }
  }

  /** Writes the snapshot now (synchronously) and removes every log. */
  snapshot(): void {
    this.rotate();
    const lines = [
      JSON.stringify({ revision: this.revision }),
      ...[...this.kvs.values()].map((kv) => JSON.stringify(kv)),
    ];
    writeFileAtomicSync(this.snapPath, lines.join('\n') + '\n', {
      tmpPath: `${this.snapPath}.tmp`,
    });
    for (const f of this.rotatedLogs()) rmSync(f, { force: true });
  }

  async close(): Promise<void> {
    await this.snapshotting;
    if (this.sinceSnapshot > 0 || this.rotatedLogs().length > 0) this.snapshot();
    if (this.walFd !== undefined) {
      closeSync(this.walFd);
      this.walFd = undefined;
    }
    if (this.locked) rmSync(this.locked, { force: true });
    this.locked = undefined;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
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

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
  fstatSync,
  fsync,
  fsyncSync,
  ftruncateSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  renameSync,
  rmSync,
  unlinkSync,
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
  /**
   * Writes a key; returns the revision of the write. The write is durable once
   * it resolves, or, for a store with `flush`, once a later `flush()` resolves.
   */
  put(key: string, value: string): Promise<number>;
  /** Deletes a key; returns the revision of the delete (durable as for put). */
  delete(key: string): Promise<number>;
  /**
   * Makes every write issued so far durable (group commit: callers that
   * arrive while an fsync runs share the next one). A store without it is
   * durable when put/delete resolve. Acknowledge a write only after this.
   */
  flush?(): Promise<void>;
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

/** Counters of a DiskPersistence. */
export interface DiskPersistenceStats {
  /** fsync(2) calls on the log since load. */
  fsyncs: number;
  /** Writes appended but not yet fsynced. */
  unsynced: number;
}

/**
 * In-memory map persisted in `dir` as snapshot.json plus write-ahead logs.
 * Each write is appended to wal.log (write(2), so it survives the process
 * being killed) and `flush()` fsyncs it (group commit) before the caller
 * acknowledges it. A failed append (disk full) is cut back off the log and
 * thrown, leaving the store as it was; a torn last line left by a crash is
 * cut at load, so the next append starts on a line of its own. Logs and
 * snapshots are read line by line (a store may exceed the longest string).
 * Every `snapshotEvery` writes the
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
  /** Bytes of wal.log that hold complete lines. */
  private walSize = 0;
  /** Writes appended since the last fsync began. */
  private unsynced = 0;
  private fsyncs = 0;
  private syncing: Promise<void> | undefined;
  /** Set once an fsync failed: the log's state on disk is unknown, so writes stop. */
  private failed: Error | undefined;

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
        let first = true;
        for (const { text } of readLines(this.snapPath)) {
          if (!text) continue;
          if (first) {
            first = false;
            const head = JSON.parse(text) as Partial<Snapshot>;
            if (typeof head.revision !== 'number') throw new Error('no revision in the header');
            this.revision = head.revision;
            // One-document form ({revision, kvs}) or JSON lines (header, then one kv per line).
            for (const kv of head.kvs ?? []) this.kvs.set(kv.key, kv);
            continue;
          }
          const kv = JSON.parse(text) as StoredKV;
          this.kvs.set(kv.key, kv);
        }
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
      // End of the last line that parsed; anything after it at the end of the file is torn.
      let goodEnd = 0;
      let bad: number[] = [];
      let lineNo = 0;
      for (const { text, end, complete } of readLines(file)) {
        lineNo++;
        if (text.charCodeAt(0) !== 0x7b /* { */ && !text.trim()) {
          if (complete && bad.length === 0) goodEnd = end;
          continue;
        }
        let e: LogEntry;
        try {
          if (!complete) throw new Error('no newline');
          e = JSON.parse(text) as LogEntry;
          if (typeof e.rev !== 'number' || typeof e.key !== 'string')
            throw new Error('not an entry');
        } catch {
          bad.push(lineNo);
          continue;
        }
        if (bad.length > 0) {
          // Damage in the middle of a log is not a crash's torn tail.
          this.log.warn('skipping unparsable API store log lines', { file, lines: bad });
          bad = [];
        }
        goodEnd = end;
        if (e.rev <= this.revision) continue;
        this.apply(e);
        this.sinceSnapshot++;
      }
      if (bad.length > 0 || fileSize(file) > goodEnd) {
        // A torn tail (killed mid-write, never acknowledged): cut it, or the next
        // append would be glued onto it and lost at the following load.
        this.log.warn('cutting a torn last line off the API store log', { file, at: goodEnd });
        const fd = openSync(file, 'r+');
        try {
          ftruncateSync(fd, goodEnd);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
      }
    }
    return { kvs: [...this.kvs.values()].map((kv) => ({ ...kv })), revision: this.revision };
  }

  /**
   * The lock file holds "<pid> <start time>" of its holder. It is taken over
   * when that process is gone, or when the pid now names another process (a
   * lock left before a reboot); it is created with O_EXCL, or replaced by a
   * link(2) of a fully written file, so two servers starting at once cannot
   * both win.
   */
  private lock(): void {
    const lockPath = join(this.dir, 'LOCK');
    const mine = `${process.pid} ${processStartTime(process.pid) ?? ''}\n`;
    for (let attempt = 0; attempt < 3; attempt++) {
      const tmp = join(this.dir, `LOCK.${process.pid}.tmp`);
      writeFileSync(tmp, mine);
      try {
        linkSync(tmp, lockPath);
        this.locked = lockPath;
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      } finally {
        rmSync(tmp, { force: true });
      }
      let held = '';
      try {
        held = readFileSync(lockPath, 'utf8');
      } catch {
        continue; // removed meanwhile: try again
      }
      const [pidText, start] = held.trim().split(/\s+/);
      const pid = Number(pidText);
      const alive =
        Number.isInteger(pid) &&
        pid > 0 &&
        pid !== process.pid &&
        processAlive(pid) &&
        (!start || processStartTime(pid) === start);
      if (alive) {
        throw new TendrilError(
          'APISERVER_STORE_LOCKED',
          `API store ${this.dir} is in use by process ${pid}`,
          {
            hint: 'another API server runs on this data directory; stop it first (tendril lab list)',
          },
        );
      }
      this.log.warn('taking over a stale API store lock', { lock: lockPath, holder: held.trim() });
      try {
        unlinkSync(lockPath);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    throw new TendrilError(
      'APISERVER_STORE_LOCKED',
      `could not take the lock of API store ${this.dir}`,
      {
        hint: 'another API server is starting on this data directory',
      },
    );
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
    if (this.failed) {
      throw new TendrilError(
        'APISERVER_STORE_FAILED',
        `API store ${this.dir} stopped taking writes after a failed fsync: ${this.failed.message}`,
        { hint: 'check the disk, then restart the API server', cause: this.failed },
      );
    }
    const e: LogEntry = { rev: this.revision + 1, key, value };
    this.append(Buffer.from(JSON.stringify(e) + '\n'));
    this.apply(e);
    this.unsynced++;
    if (++this.sinceSnapshot >= this.snapshotEvery && !this.snapshotting) {
      this.snapshotting = this.snapshotInBackground()
        .catch((err) => this.log.error('API store snapshot failed; the logs are kept', { err }))
        .finally(() => (this.snapshotting = undefined));
    }
    return e.rev;
  }

  /** Appends whole lines or nothing: a failed (e.g. short, disk full) write is cut back off. */
  private append(buf: Buffer): void {
    if (this.walFd === undefined) {
      this.walFd = openSync(this.walPath, 'a');
      this.walSize = fstatSync(this.walFd).size;
    }
    let off = 0;
    try {
      while (off < buf.length) off += writeSync(this.walFd, buf, off, buf.length - off);
    } catch (err) {
      try {
        ftruncateSync(this.walFd, this.walSize);
      } catch (cutErr) {
        this.log.error('could not cut a failed write off the API store log', { err: cutErr });
      }
      const code = (err as NodeJS.ErrnoException).code;
      throw new TendrilError(
        code === 'ENOSPC' || code === 'EDQUOT' ? 'APISERVER_STORE_FULL' : 'APISERVER_STORE_WRITE',
        code === 'ENOSPC' || code === 'EDQUOT'
          ? `API store ${this.dir} is out of disk space (${code}); the write was not stored: free space on that disk`
          : `write to API store log ${this.walPath}: ${(err as Error).message}; the write was not stored`,
        { cause: err },
      );
    }
    this.walSize += buf.length;
  }

  async put(key: string, value: string): Promise<number> {
    return this.write(key, value);
  }

  async delete(key: string): Promise<number> {
    return this.write(key, null);
  }

  /** Counters: fsyncs done and writes not yet fsynced. */
  stats(): DiskPersistenceStats {
    return { fsyncs: this.fsyncs, unsynced: this.unsynced };
  }

  /**
   * Makes every write issued so far durable. One fsync runs at a time;
   * callers that arrive meanwhile share the next one.
   * @throws TendrilError `APISERVER_STORE_FAILED` if fsync fails (the store then refuses writes).
   */
  async flush(): Promise<void> {
    while (this.unsynced > 0 || this.syncing) {
      if (this.failed) break;
      if (this.syncing) {
        const waitFor = this.syncing;
        await waitFor.catch(() => {});
        continue;
      }
      const fd = this.walFd;
      if (fd === undefined) {
        // Rotated away since the write: rotate() fsynced it.
        this.unsynced = 0;
        break;
      }
      this.unsynced = 0;
      this.fsyncs++;
      this.syncing = new Promise<void>((resolve, reject) =>
        fsync(fd, (err) => (err ? reject(err) : resolve())),
      );
      try {
        await this.syncing;
      } catch (err) {
        this.failed = err as Error;
      } finally {
        this.syncing = undefined;
      }
    }
    if (this.failed) {
      throw new TendrilError(
        'APISERVER_STORE_FAILED',
        `fsync of API store log ${this.walPath}: ${this.failed.message}; recent writes may not be on disk`,
        { hint: 'check the disk, then restart the API server', cause: this.failed },
      );
    }
  }

  private rotate(): void {
    if (this.walFd !== undefined) {
      // Writes not yet flushed become durable here, before the log is renamed.
      fsyncSync(this.walFd);
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

  /** Resolves when no background snapshot is being written (tests simulate a crash after it). */
  async backgroundDone(): Promise<void> {
    while (this.snapshotting) await this.snapshotting;
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
    if (!this.failed && (this.sinceSnapshot > 0 || this.rotatedLogs().length > 0)) {
      try {
        this.snapshot();
      } catch (err) {
        // The logs are still there and replay at the next start.
        this.log.error('API store snapshot at close failed; the logs are kept', { err });
        if (this.walFd !== undefined) fsyncSync(this.walFd);
      }
    }
    if (this.walFd !== undefined) {
      closeSync(this.walFd);
      this.walFd = undefined;
    }
    if (this.locked) rmSync(this.locked, { force: true });
    this.locked = undefined;
  }
}

/** One line of a file, read in chunks: `end` is the byte offset after its newline. */
interface FileLine {
  text: string;
  end: number;
  /** False for bytes after the last newline. */
  complete: boolean;
}

/** Reads a file line by line in 1 MiB chunks (files may exceed the longest string). */
function* readLines(path: string): Generator<FileLine> {
  const fd = openSync(path, 'r');
  try {
    const chunk = Buffer.alloc(1024 * 1024);
    let carry: Buffer[] = [];
    let carryLen = 0;
    let pos = 0;
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, pos);
      if (n === 0) break;
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf(0x0a, start);
        if (nl < 0 || nl >= n) break;
        const part = chunk.subarray(start, nl);
        const text = carryLen
          ? Buffer.concat([...carry, part]).toString('utf8')
          : part.toString('utf8');
        carry = [];
        carryLen = 0;
        yield { text, end: pos + nl + 1, complete: true };
        start = nl + 1;
      }
      if (start < n) {
        carry.push(Buffer.from(chunk.subarray(start, n)));
        carryLen += n - start;
      }
      pos += n;
    }
    if (carryLen) yield { text: Buffer.concat(carry).toString('utf8'), end: pos, complete: false };
  } finally {
    closeSync(fd);
  }
}

function fileSize(path: string): number {
  const fd = openSync(path, 'r');
  try {
    return fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or undefined. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(') ') + 2).split(' ')[19];
  } catch {
    return undefined;
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

/**
 * Per-line times of a container's log. A container writes its output
 * straight into `<container>.log` (see runtime.ts); the kubelet watches that
 * file (inotify through fs.watch, and a 1 s poll as a backstop) and, for every
 * line that appears, appends `<byte offset of the line> <wall-clock time in
 * ns>` to `<container>.log.times` — the time the kubelet saw the line, a few
 * milliseconds after the write (as a CRI runtime stamps a line when it reads it
 * from the container's pipe). Lines written while no kubelet watched (between
 * a kubelet's death and its successor) get the time they were found.
 *
 * The API server's pods/log reads both files for `timestamps`, `sinceSeconds`
 * and `sinceTime` (src/lab/apiserver/streaming.ts).
 */
import {
  appendFileSync,
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  readSync,
  statSync,
  watch,
  type FSWatcher,
} from 'node:fs';

/** The time index of a log file. */
export function timesPath(logPath: string): string {
  return `${logPath}.times`;
}

const hrBase = process.hrtime.bigint();
const wallBase = BigInt(Date.now()) * 1_000_000n;

/** Wall-clock time in nanoseconds since the epoch (millisecond-accurate origin, nanosecond steps). */
export function wallNanos(): bigint {
  return wallBase + (process.hrtime.bigint() - hrBase);
}

/** A time as Go's RFC3339Nano prints it in UTC (trailing zeros of the fraction dropped). */
export function rfc3339Nano(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const base = new Date(ms).toISOString().slice(0, 19);
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${base}${frac ? `.${frac}` : ''}Z`;
}

/** Parses an RFC 3339 time with up to nanosecond precision; undefined if it is not one. */
export function parseRfc3339Nanos(text: string): bigint | undefined {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/i.exec(
    text.trim(),
  );
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (!Number.isFinite(ms)) return undefined;
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}

/** Line start offsets and their times, ascending by offset. */
export interface LineTimes {
  offsets: number[];
  nanos: bigint[];
}

/** Reads a time index (missing file: empty). A torn last record is ignored. */
export function readLineTimes(logPath: string): LineTimes {
  const out: LineTimes = { offsets: [], nanos: [] };
  let text: string;
  try {
    text = readFileSync(timesPath(logPath), 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    const sp = line.indexOf(' ');
    if (sp <= 0) continue;
    const off = Number(line.slice(0, sp));
    const ns = line.slice(sp + 1);
    if (!Number.isSafeInteger(off) || !/^\d+$/.test(ns)) continue;
    out.offsets.push(off);
    out.nanos.push(BigInt(ns));
  }
  return out;
}

/** The time of the line starting at `offset`, if indexed. */
export function timeAt(t: LineTimes, offset: number): bigint | undefined {
  let lo = 0;
  let hi = t.offsets.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const v = t.offsets[mid]!;
    if (v === offset) return t.nanos[mid];
    if (v < offset) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

/** Watches one container log and appends a time for every new line to its index. */
export class LogTimeIndexer {
  private scanned = 0;
  private atLineStart = true;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private queued = false;
  private stopped = false;

  constructor(
    readonly logPath: string,
    private readonly now: () => bigint = wallNanos,
  ) {}

  /** Starts watching; lines already in the log and not yet indexed are stamped now. */
  start(): void {
    const known = readLineTimes(this.logPath);
    if (known.offsets.length) {
      // resume after the last indexed line start (its own record is kept)
      this.scanned = known.offsets[known.offsets.length - 1]! + 1;
      this.atLineStart = false;
    }
    this.scan();
    try {
      this.watcher = watch(this.logPath, () => this.kick());
      this.watcher.on('error', () => {});
      this.watcher.unref();
    } catch {
      this.watcher = undefined; // the poll below still runs
    }
    this.timer = setInterval(() => this.scan(), 1000);
    this.timer.unref();
  }

  private kick(): void {
    if (this.queued || this.stopped) return;
    this.queued = true;
    setImmediate(() => {
      this.queued = false;
      this.scan();
    });
  }

  /** Indexes what was appended since the last scan. */
  scan(): void {
    let size: number;
    try {
      size = statSync(this.logPath).size;
    } catch {
      return;
    }
    if (size < this.scanned) {
      // the file was replaced or truncated: start over
      this.scanned = 0;
      this.atLineStart = true;
    }
    if (size === this.scanned) return;
    const ns = this.now().toString();
    let records = '';
    const fd = openSync(this.logPath, 'r');
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      while (this.scanned < size) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, size - this.scanned), this.scanned);
        if (n <= 0) break;
        for (let i = 0; i < n; i++) {
          if (this.atLineStart) records += `${this.scanned + i} ${ns}\n`;
          this.atLineStart = buf[i] === 0x0a;
        }
        this.scanned += n;
      }
    } finally {
      closeSync(fd);
    }
    if (records) appendFileSync(timesPath(this.logPath), records, { mode: 0o600 });
  }

  /** A last scan, then stops watching. */
  stop(): void {
    if (this.stopped) return;
    this.scan();
    this.stopped = true;
    this.watcher?.close();
    clearInterval(this.timer);
  }
}

/** True when a log has a time index (logs from before this kubelet have none). */
export function hasLineTimes(logPath: string): boolean {
  return existsSync(timesPath(logPath));
}

/**
 * Reads a time index as it grows (each refresh parses only what was
 * appended) and answers the time of a line start.
 */
export class LineTimesReader {
  readonly times: LineTimes = { offsets: [], nanos: [] };
  private pos = 0;
  private rest = '';

  constructor(readonly logPath: string) {}

  /** Parses records appended since the last refresh. */
  refresh(): void {
    let fd: number;
    try {
      fd = openSync(timesPath(this.logPath), 'r');
    } catch {
      return;
    }
    try {
      const size = statSync(timesPath(this.logPath)).size;
      if (size <= this.pos) return;
      const buf = Buffer.allocUnsafe(size - this.pos);
      const n = readSync(fd, buf, 0, buf.length, this.pos);
      this.pos += n;
      const text = this.rest + buf.subarray(0, n).toString('utf8');
      const lines = text.split('\n');
      this.rest = lines.pop() ?? '';
      for (const line of lines) {
        const sp = line.indexOf(' ');
        const off = Number(line.slice(0, sp));
        const ns = line.slice(sp + 1);
        if (sp <= 0 || !Number.isSafeInteger(off) || !/^\d+$/.test(ns)) continue;
        this.times.offsets.push(off);
        this.times.nanos.push(BigInt(ns));
      }
    } finally {
      closeSync(fd);
    }
  }

  /** The time of the line starting at `offset` (refreshing once if it is not known yet). */
  at(offset: number): bigint | undefined {
    const t = timeAt(this.times, offset);
    if (t !== undefined) return t;
    this.refresh();
    return timeAt(this.times, offset);
  }
}

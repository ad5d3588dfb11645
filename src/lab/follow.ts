/**
 * Reading a log file that grows (tail -f): polls its size and reads what was
 * appended; starts over when the file is replaced or truncated (a restarted
 * container's log).
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';

/** Reads `path` from `offset` to its end; returns the bytes read and the new offset. */
export function readFrom(
  path: string,
  offset: number,
): { data: Buffer; offset: number; ino: number } | undefined {
  let st;
  try {
    st = statSync(path);
  } catch {
    return undefined;
  }
  if (st.size < offset) offset = 0;
  if (st.size === offset) return { data: Buffer.alloc(0), offset, ino: st.ino };
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(st.size - offset);
    const n = readSync(fd, buf, 0, buf.length, offset);
    return { data: buf.subarray(0, n), offset: offset + n, ino: st.ino };
  } finally {
    closeSync(fd);
  }
}

/**
 * Calls onData with the file's content from `offset` (default 0), then with
 * every append, until `signal` aborts or `until()` returns true after a final
 * read. Polls every `intervalMs` (default 100).
 */
export async function followFile(
  path: string,
  onData: (data: Buffer) => void,
  options: {
    signal?: AbortSignal;
    until?: () => boolean | Promise<boolean>;
    offset?: number;
    intervalMs?: number;
  } = {},
): Promise<void> {
  let offset = options.offset ?? 0;
  let ino: number | undefined;
  const interval = options.intervalMs ?? 100;
  for (;;) {
    const stop = options.signal?.aborted || (options.until ? await options.until() : false);
    const r = readFrom(path, offset);
    if (r) {
      if (ino !== undefined && r.ino !== ino) {
        // replaced: read the new file from its start
        const fresh = readFrom(path, 0);
        if (fresh) {
          if (fresh.data.length) onData(fresh.data);
          offset = fresh.offset;
          ino = fresh.ino;
        }
      } else {
        if (r.data.length) onData(r.data);
        offset = r.offset;
        ino = r.ino;
      }
    }
    if (stop) return;
    await new Promise((res) => setTimeout(res, interval));
  }
}

/**
 * The one atomic file write: data goes to a temporary file beside the target,
 * which is fsynced, renamed over the target, and then the directory is
 * fsynced so the rename itself survives a crash. A reader sees the old file or
 * the new one, never half of one.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Options of {@link writeFileAtomicSync} and {@link writeFileAtomic}. */
export interface AtomicWriteOptions {
  /** Mode of the new file (default 0o644 before umask; 0o600 for secrets). */
  mode?: number;
  /** Mode of directories created on the way (default 0o755 before umask). */
  dirMode?: number;
  /**
   * A fixed temp path (default: unique per write). A fixed one is reused by
   * the next write, so a crash between write and rename leaves no litter.
   */
  tmpPath?: string;
}

let seq = 0;
function tmpName(path: string): string {
  return `${path}.tmp-${process.pid}-${++seq}`;
}

/** fsyncs a directory so a rename inside it is durable; filesystems that refuse it are ignored. */
function fsyncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // some filesystems (and /proc-like ones) do not fsync directories; the rename is still atomic
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Writes `data` to `path` atomically and durably (temp file, fsync, rename,
 * fsync of the directory). Creates the parent directory.
 * @throws the fs error (ENOSPC, EACCES, ...) with the temp file removed.
 */
export function writeFileAtomicSync(
  path: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions = {},
): void {
  const dir = dirname(path);
  mkdirSync(dir, {
    recursive: true,
    ...(options.dirMode !== undefined ? { mode: options.dirMode } : {}),
  });
  const tmp = options.tmpPath ?? tmpName(path);
  try {
    const fd = openSync(tmp, 'w', options.mode ?? 0o644);
    try {
      const buf = typeof data === 'string' ? Buffer.from(data) : data;
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDirSync(dir);
}

/**
 * Async form of {@link writeFileAtomicSync}. `data` may be a function that
 * writes into the open temp file (for large files written in pieces).
 * @throws the fs error with the temp file removed.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array | ((fh: FileHandle) => Promise<void>),
  options: AtomicWriteOptions = {},
): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, {
    recursive: true,
    ...(options.dirMode !== undefined ? { mode: options.dirMode } : {}),
  });
  const tmp = options.tmpPath ?? tmpName(path);
  try {
    const fh = await open(tmp, 'w', options.mode ?? 0o644);
    try {
      if (typeof data === 'function') await data(fh);
      else await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  fsyncDirSync(dir);
}

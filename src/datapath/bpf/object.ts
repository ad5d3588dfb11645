/**
 * Operations shared by maps, programs and links: pin to bpffs, open a pinned
 * object, read an object's info (BPF_OBJ_GET_INFO_BY_FD).
 */
import { unlinkSync } from 'node:fs';
import { BPF_ATTR_SIZE, Cmd, addressOf, bpf, stableBuffer } from './syscall.js';

/** A NUL-terminated C string in a stable buffer. */
export function cString(s: string): Buffer {
  const b = stableBuffer(Buffer.byteLength(s) + 1);
  b.write(s, 0);
  return b;
}

/** Pins fd at path (BPF_OBJ_PIN). Throws BpfError (EEXIST when something is pinned there). */
export function pinObject(fd: number, path: string, what: string): void {
  const p = cString(path);
  const attr = stableBuffer(BPF_ATTR_SIZE);
  attr.writeBigUInt64LE(addressOf(p), 0);
  attr.writeUInt32LE(fd, 8);
  bpf(Cmd.ObjPin, attr, `pin ${what} at ${path}`);
}

/** Opens the object pinned at path (BPF_OBJ_GET); returns the raw fd. */
export function getPinnedObject(path: string, what: string, fileFlags = 0): number {
  const p = cString(path);
  const attr = stableBuffer(BPF_ATTR_SIZE);
  attr.writeBigUInt64LE(addressOf(p), 0);
  attr.writeUInt32LE(fileFlags, 12);
  return bpf(Cmd.ObjGet, attr, `open pinned ${what} ${path}`);
}

/** Removes a pin (the object lives on while something else holds it). */
export function unpinPath(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/** Reads the info struct of a bpf object fd into a buffer of `size` bytes. */
export function objectInfo(fd: number, size: number, what: string): Buffer {
  const info = stableBuffer(size);
  const attr = stableBuffer(BPF_ATTR_SIZE);
  attr.writeUInt32LE(fd, 0);
  attr.writeUInt32LE(size, 4);
  attr.writeBigUInt64LE(addressOf(info), 8);
  bpf(Cmd.ObjGetInfoByFd, attr, `get info of ${what}`);
  return info;
}

/** Reads a NUL-terminated string of at most n bytes. */
export function readCString(buf: Buffer, off: number, n: number): string {
  const end = buf.indexOf(0, off);
  return buf.toString('latin1', off, end < 0 || end > off + n ? off + n : end);
}

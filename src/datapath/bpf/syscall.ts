/**
 * The bpf(2) syscall and the few libc calls the library needs, through koffi.
 *
 * Buffers handed to the kernel are allocated with `stableBuffer()` (an
 * ArrayBuffer-backed Buffer: V8 never moves its backing store) and the caller
 * keeps a reference while the kernel may use it. Functions are declared once;
 * the hot path (`bpfAddr`) takes the attr's address as a number, so a call
 * allocates nothing.
 */
import koffi from 'koffi';
import { BpfError, bpfError } from './errors.js';

/** SYS_bpf on x86_64. */
export const SYS_BPF = 321;
/** sizeof(union bpf_attr) on kernel 6.18. Smaller sizes are accepted (the rest is zero). */
export const BPF_ATTR_SIZE = 168;

/** bpf(2) commands (enum bpf_cmd). */
export const Cmd = {
  MapCreate: 0,
  MapLookupElem: 1,
  MapUpdateElem: 2,
  MapDeleteElem: 3,
  MapGetNextKey: 4,
  ProgLoad: 5,
  ObjPin: 6,
  ObjGet: 7,
  ProgAttach: 8,
  ProgDetach: 9,
  ProgTestRun: 10,
  ProgGetNextId: 11,
  MapGetNextId: 12,
  ProgGetFdById: 13,
  MapGetFdById: 14,
  ObjGetInfoByFd: 15,
  ProgQuery: 16,
  MapLookupAndDeleteElem: 21,
  MapFreeze: 22,
  MapLookupBatch: 24,
  MapLookupAndDeleteBatch: 25,
  MapUpdateBatch: 26,
  MapDeleteBatch: 27,
  LinkCreate: 28,
  LinkUpdate: 29,
  LinkGetFdById: 30,
  LinkGetNextId: 31,
  LinkDetach: 34,
} as const;

const libc = koffi.load('libc.so.6');
const sysPtr = libc.func('long syscall(long nr, long cmd, void *attr, uint32 size)');
const sysAddr = libc.func('int syscall(int nr, int cmd, uint64 attr, int size)');
const cClose = libc.func('int close(int fd)');
const cOpen = libc.func('int open(const char *path, int flags, int mode)');
const cSetns = libc.func('int setns(int fd, int nstype)');
const cIfNameToIndex = libc.func('uint32 if_nametoindex(const char *name)');
const cMmap = libc.func(
  'void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64 off)',
);
const cMunmap = libc.func('int munmap(void *addr, size_t len)');
const cMount = libc.func(
  'int mount(const char *src, const char *target, const char *fstype, unsigned long flags, const void *data)',
);

/** An ArrayBuffer-backed Buffer of n zero bytes: its memory never moves, so the kernel can hold its address. */
export function stableBuffer(n: number): Buffer {
  return Buffer.from(new ArrayBuffer(Math.max(n, 1)), 0, n);
}

/** The address of a stable buffer's first byte, as a bigint (for writing into attrs). */
export function addressOf(buf: Buffer | Uint8Array): bigint {
  return koffi.address(buf) as bigint;
}

/**
 * The address of a stable buffer's first byte as a plain number, for the hot
 * path: x86_64 user addresses fit in 47 bits, and passing a number to koffi
 * skips the BigInt conversion (about 50 ns of a ~2 us map update).
 */
export function addressNumber(buf: Buffer | Uint8Array): number {
  const a = addressOf(buf);
  if (a > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`address ${a} above 2^53`);
  return Number(a);
}

/** The errno of the last failed call on this thread. */
export function lastErrno(): number {
  return koffi.errno();
}

/**
 * bpf(cmd, attr, size): returns the non-negative result, throws BpfError on failure.
 * `context` prefixes the message ("create map foo").
 */
export function bpf(
  cmd: number,
  attr: Buffer,
  context?: string,
  size: number = attr.length,
): number {
  const r = Number(sysPtr(SYS_BPF, cmd, attr, size));
  if (r < 0) throw bpfError(cmd, koffi.errno(), context);
  return r;
}

/**
 * The hot path: bpf(cmd) on an attr at a known address (from `addressOf` of a
 * stable buffer the caller keeps alive). Returns the result or -errno; never throws.
 */
export function bpfAddr(cmd: number, attrAddr: bigint | number, size: number): number {
  const r = sysAddr(SYS_BPF, cmd, attrAddr, size) as number;
  return r < 0 ? -koffi.errno() : r;
}

/** close(2) on a raw fd (prefer the objects' close()). */
export function closeFd(fd: number): void {
  cClose(fd);
}

export const O_RDONLY = 0;
export const O_RDWR = 2;
export const O_DIRECTORY = 0o200000;
export const O_CLOEXEC = 0o2000000;

/** open(2); throws BpfError("open") naming the path. */
export function openFd(path: string, flags: number): number {
  const fd = cOpen(path, flags | O_CLOEXEC, 0) as number;
  if (fd < 0) {
    const errno = koffi.errno();
    throw new BpfError('open', errno, { context: `open ${path}` });
  }
  return fd;
}

export const CLONE_NEWNET = 0x40000000;

/** setns(2) for the calling thread; returns 0 or -errno. */
export function setnsRaw(fd: number, nstype: number): number {
  const r = cSetns(fd, nstype) as number;
  return r < 0 ? -koffi.errno() : r;
}

/** if_nametoindex(3) in the calling thread's network namespace; 0 when absent. */
export function ifNameToIndex(name: string): number {
  return cIfNameToIndex(name) as number;
}

export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 1;

/** mmap(2) of a file descriptor; returns the pointer or throws BpfError("mmap"). */
export function mmapFd(
  len: number,
  prot: number,
  fd: number,
  offset: number,
  context: string,
): unknown {
  const p = cMmap(null, len, prot, MAP_SHARED, fd, offset);
  // mmap failure is MAP_FAILED (all ones), not NULL.
  const addr = p === null ? -1n : (koffi.address(p) as bigint);
  if (addr === 0xffffffffffffffffn || addr === -1n)
    throw new BpfError('mmap', koffi.errno(), { context });
  return p;
}

/** munmap(2). */
export function munmap(ptr: unknown, len: number): void {
  cMunmap(ptr, len);
}

/** A view on mapped memory (no copy). */
export function viewOf(ptr: unknown, len: number): ArrayBuffer {
  return koffi.view(ptr, len) as ArrayBuffer;
}

/** mount(2); throws BpfError("mount"). */
export function mountFs(source: string, target: string, fstype: string): void {
  const r = cMount(source, target, fstype, 0, null) as number;
  if (r < 0)
    throw new BpfError('mount', koffi.errno(), { context: `mount ${fstype} at ${target}` });
}

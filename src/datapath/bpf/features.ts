/**
 * Feature probes: does this kernel support a map type, a program type, TCX,
 * cgroup BPF links? Each probe makes the smallest real request the feature
 * needs and reads the errno; answers are memoised for the process.
 * `requireFeature` throws NotSupportedError naming the feature and the kernel.
 */
import { asm } from './asm/builders.js';
import { encode } from './asm/encode.js';
import { NotSupportedError, errnoName } from './errors.js';
import { cString } from './object.js';
import { BPF_ATTR_SIZE, Cmd, addressOf, bpfAddr, closeFd, stableBuffer } from './syscall.js';
import {
  AttachType,
  MapFlags,
  MapType,
  ProgramType,
  mapTypeName,
  programTypeName,
} from './types.js';

/** Names of the probes. */
export type Feature = 'tcx' | 'cgroup_link' | `map:${number}` | `prog:${number}`;

const cache = new Map<string, boolean>();

function memo(key: string, probe: () => boolean): boolean {
  let v = cache.get(key);
  if (v === undefined) {
    v = probe();
    cache.set(key, v);
  }
  return v;
}

/** Forgets memoised answers (tests). */
export function resetFeatureCache(): void {
  cache.clear();
}

function createMapFd(type: number): number {
  const attr = stableBuffer(BPF_ATTR_SIZE);
  let key = 4;
  let value = 4;
  let max = 1;
  let flags = 0;
  if (type === MapType.LpmTrie) {
    key = 8;
    flags = MapFlags.NoPrealloc;
  }
  if (type === MapType.Ringbuf) {
    key = 0;
    value = 0;
    max = 4096;
  }
  if (type === MapType.Queue || type === MapType.Stack || type === MapType.BloomFilter) key = 0;
  attr.writeUInt32LE(type, 0);
  attr.writeUInt32LE(key, 4);
  attr.writeUInt32LE(value, 8);
  attr.writeUInt32LE(max, 12);
  attr.writeUInt32LE(flags, 16);
  return bpfAddr(Cmd.MapCreate, addressOf(attr), BPF_ATTR_SIZE);
}

/** Loads `r0 = 0; exit` as `type`; returns the fd or -errno. */
function loadTrivial(type: number, expectedAttachType = 0): number {
  const code = stableBuffer(16);
  encode(asm.retImm(0)).copy(code);
  const license = cString('GPL');
  const attr = stableBuffer(BPF_ATTR_SIZE);
  attr.writeUInt32LE(type, 0);
  attr.writeUInt32LE(2, 4);
  attr.writeBigUInt64LE(addressOf(code), 8);
  attr.writeBigUInt64LE(addressOf(license), 16);
  attr.writeUInt32LE(expectedAttachType, 68);
  return bpfAddr(Cmd.ProgLoad, addressOf(attr), BPF_ATTR_SIZE);
}

/** Whether the kernel can create maps of this type. */
export function haveMapType(type: number): boolean {
  return memo(`map:${type}`, () => {
    const fd = createMapFd(type);
    if (fd >= 0) closeFd(fd);
    return fd >= 0;
  });
}

/** Whether the kernel can load programs of this type. */
export function haveProgramType(type: number): boolean {
  return memo(`prog:${type}`, () => {
    const eat = type === ProgramType.CgroupSockAddr ? AttachType.CgroupInet4Connect : 0;
    const fd = loadTrivial(type, eat);
    if (fd >= 0) closeFd(fd);
    return fd >= 0;
  });
}

/** Link create with a trivial program; returns -errno (never succeeds: the target is invalid). */
function probeLinkCreate(progType: number, expectedAttachType: number, target: number): number {
  const prog = loadTrivial(progType, expectedAttachType);
  if (prog < 0) return prog;
  try {
    const attr = stableBuffer(BPF_ATTR_SIZE);
    attr.writeUInt32LE(prog, 0);
    attr.writeUInt32LE(target, 4);
    attr.writeUInt32LE(expectedAttachType, 8);
    const r = bpfAddr(Cmd.LinkCreate, addressOf(attr), BPF_ATTR_SIZE);
    if (r >= 0) closeFd(r);
    return r;
  } finally {
    closeFd(prog);
  }
}

/** Whether TCX (BPF links on tc ingress/egress, kernel >= 6.6) is available. */
export function haveTcx(): boolean {
  // Ifindex 0 never exists: a kernel with TCX answers ENODEV, one without EINVAL.
  return memo(
    'tcx',
    () => errnoName(-probeLinkCreate(ProgramType.SchedCls, AttachType.TcxIngress, 0)) === 'ENODEV',
  );
}

/** Whether cgroup programs can be attached with BPF links (kernel >= 5.7). */
export function haveCgroupLink(): boolean {
  // An invalid cgroup fd: EBADF when cgroup links exist, EINVAL otherwise.
  return memo('cgroup_link', () => {
    const r = probeLinkCreate(
      ProgramType.CgroupSockAddr,
      AttachType.CgroupInet4Connect,
      0x7fffffff,
    );
    return errnoName(-r) === 'EBADF';
  });
}

/** Human name of a feature, for NotSupportedError. */
export function featureName(f: Feature): string {
  if (f === 'tcx') return 'TCX (tc BPF links)';
  if (f === 'cgroup_link') return 'cgroup BPF links';
  if (f.startsWith('map:')) return `map type ${mapTypeName(Number(f.slice(4)))}`;
  if (f.startsWith('prog:')) return `program type ${programTypeName(Number(f.slice(5)))}`;
  return f;
}

/** Whether a feature is available. */
export function haveFeature(f: Feature): boolean {
  if (f === 'tcx') return haveTcx();
  if (f === 'cgroup_link') return haveCgroupLink();
  if (f.startsWith('map:')) return haveMapType(Number(f.slice(4)));
  if (f.startsWith('prog:')) return haveProgramType(Number(f.slice(5)));
  return false;
}

/** Throws NotSupportedError (naming the feature and kernel version) when the feature is missing. */
export function requireFeature(f: Feature): void {
  if (!haveFeature(f)) throw new NotSupportedError(featureName(f));
}

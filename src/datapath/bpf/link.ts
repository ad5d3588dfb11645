/**
 * Links: attachments of programs to hooks. Attaching tries the modern way (a
 * BPF link, which detaches when its last fd closes unless pinned) and falls
 * back to the older mechanism (PROG_ATTACH; legacy tc) where the kernel lacks it.
 * Every attach returns a `Link` with close(); a BPF link can be pinned so it
 * outlives the process.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { NotSupportedError, bpfError, errnoName } from './errors.js';
import { FD } from './fd.js';
import { getPinnedObject, objectInfo, pinObject, unpinPath } from './object.js';
import type { Program } from './program.js';
import {
  BPF_ATTR_SIZE,
  Cmd,
  O_DIRECTORY,
  O_RDONLY,
  addressOf,
  bpfAddr,
  closeFd,
  openFd,
  stableBuffer,
} from './syscall.js';
import { AttachFlags, attachTypeName, type AttachTypeId } from './types.js';

/** What the kernel says about a link. */
export interface LinkInfo {
  type: number;
  id: number;
  programId: number;
}

/** An attachment. close() detaches it, except a pinned BPF link, which stays until unpinned. */
export interface Link {
  /** 'bpf_link' (a kernel link object), 'prog_attach' (legacy cgroup attach) or 'tc' (legacy tc filter). */
  readonly kind: 'bpf_link' | 'prog_attach' | 'tc';
  /** What is attached where, for messages ("cgroup /sys/fs/cgroup/x connect4"). */
  readonly description: string;
  /** Where the link is pinned, if it is. */
  readonly pinnedPath: string | undefined;
  /** Pins the link (BPF links only; throws NotSupportedError for other kinds). */
  pin(path: string): void;
  /** Removes the pin (the attachment stays while this object is open). */
  unpin(): void;
  /** Detaches now, even if pinned or shared (BPF_LINK_DETACH / PROG_DETACH / tc filter del). */
  detach(): void;
  /** Releases this handle: detaches unless it is a pinned BPF link. Idempotent. */
  close(): void;
}

/** A kernel BPF link object (BPF_LINK_CREATE). */
export class BpfLink implements Link {
  readonly kind = 'bpf_link' as const;
  readonly description: string;
  pinnedPath: string | undefined;
  readonly #fd: FD;

  constructor(fd: FD, description: string) {
    this.#fd = fd;
    this.description = description;
  }

  get fd(): number {
    return this.#fd.raw;
  }

  get closed(): boolean {
    return this.#fd.closed;
  }

  info(): LinkInfo {
    const b = objectInfo(this.#fd.raw, 64, `link ${this.description}`);
    return { type: b.readUInt32LE(0), id: b.readUInt32LE(4), programId: b.readUInt32LE(8) };
  }

  pin(path: string): void {
    pinObject(this.#fd.raw, path, `link ${this.description}`);
    this.pinnedPath = path;
  }

  unpin(): void {
    if (this.pinnedPath !== undefined) unpinPath(this.pinnedPath);
    this.pinnedPath = undefined;
  }

  /**
   * Atomically replaces the link's program (BPF_LINK_UPDATE), e.g. when a restarted
   * agent loads a new version. With `expected`, fails (EPERM) unless that program is
   * the one attached. Throws BpfError.
   */
  update(program: Program, options: { expected?: Program } = {}): void {
    const attr = stableBuffer(BPF_ATTR_SIZE);
    attr.writeUInt32LE(this.#fd.raw, 0);
    attr.writeUInt32LE(program.fd, 4);
    if (options.expected) {
      attr.writeUInt32LE(AttachFlags.Replace, 8);
      attr.writeUInt32LE(options.expected.fd, 12);
    }
    const r = bpfAddr(Cmd.LinkUpdate, addressOf(attr), BPF_ATTR_SIZE);
    if (r < 0)
      throw bpfError(
        Cmd.LinkUpdate,
        -r,
        `replace the program of link ${this.description} with ${program.name}`,
      );
  }

  detach(): void {
    const attr = stableBuffer(BPF_ATTR_SIZE);
    attr.writeUInt32LE(this.#fd.raw, 0);
    const r = bpfAddr(Cmd.LinkDetach, addressOf(attr), BPF_ATTR_SIZE);
    if (r < 0) throw bpfError(Cmd.LinkDetach, -r, `detach link ${this.description}`);
  }

  close(): void {
    this.#fd.close();
  }
}

/** Opens a BPF link pinned at path. */
export function openPinnedLink(path: string): BpfLink {
  const raw = getPinnedObject(path, 'link');
  const l = new BpfLink(new FD(raw, 'link', path), `pinned ${path}`);
  l.pinnedPath = path;
  return l;
}

/** Creates a BPF link; returns the fd or -errno. */
export function linkCreate(
  progFd: number,
  target: number,
  attachType: number,
  flags = 0,
  extra?: (attr: Buffer) => void,
): number {
  const attr = stableBuffer(BPF_ATTR_SIZE);
  attr.writeUInt32LE(progFd, 0);
  attr.writeUInt32LE(target, 4);
  attr.writeUInt32LE(attachType, 8);
  attr.writeUInt32LE(flags, 12);
  extra?.(attr);
  return bpfAddr(Cmd.LinkCreate, addressOf(attr), BPF_ATTR_SIZE);
}

/** A legacy cgroup attachment (BPF_PROG_ATTACH); close() detaches it. */
export class ProgAttachment implements Link {
  readonly kind = 'prog_attach' as const;
  readonly description: string;
  readonly pinnedPath = undefined;
  #attached = true;
  readonly #cgroup: string;
  /** Our own reference to the program, so detach works after the caller closes theirs. */
  readonly #program: FD;
  readonly #attachType: number;

  constructor(program: Program, cgroup: string, attachType: number, description: string) {
    this.#program = programFdById(program.info().id, description);
    this.#cgroup = cgroup;
    this.#attachType = attachType;
    this.description = description;
  }

  pin(): void {
    throw new NotSupportedError('pinning a PROG_ATTACH attachment (it persists until detached)', {
      hint: 'cgroup BPF links (kernel >= 5.7) can be pinned',
    });
  }

  unpin(): void {}

  detach(): void {
    if (!this.#attached) return;
    const cg = openFd(this.#cgroup, O_RDONLY | O_DIRECTORY);
    try {
      const attr = stableBuffer(BPF_ATTR_SIZE);
      attr.writeUInt32LE(cg, 0);
      attr.writeUInt32LE(this.#program.raw, 4);
      attr.writeUInt32LE(this.#attachType, 8);
      const r = bpfAddr(Cmd.ProgDetach, addressOf(attr), BPF_ATTR_SIZE);
      if (r < 0) throw bpfError(Cmd.ProgDetach, -r, `detach ${this.description}`);
      this.#attached = false;
      this.#program.close();
    } finally {
      closeFd(cg);
    }
  }

  close(): void {
    this.detach();
  }
}

/** Opens a new fd for a program by its id. */
function programFdById(id: number, what: string): FD {
  const attr = stableBuffer(BPF_ATTR_SIZE);
  attr.writeUInt32LE(id, 0);
  const r = bpfAddr(Cmd.ProgGetFdById, addressOf(attr), BPF_ATTR_SIZE);
  if (r < 0) throw bpfError(Cmd.ProgGetFdById, -r, `reference program of ${what}`);
  return new FD(r, 'program', what);
}

/** Options of attachCgroup. */
export interface CgroupAttachOptions {
  /** The cgroup v2 directory, e.g. /sys/fs/cgroup/unified/tendril. */
  cgroup: string;
  attachType: AttachTypeId;
  /** Flags for the PROG_ATTACH fallback (default AllowMulti). */
  fallbackFlags?: number;
  /** Skip the BPF link and use PROG_ATTACH (for tests of the fallback). */
  forceLegacy?: boolean;
}

/**
 * Attaches a program to a cgroup v2 directory: BPF_LINK_CREATE first, then
 * BPF_PROG_ATTACH (with BPF_F_ALLOW_MULTI) when the kernel lacks cgroup links.
 * Throws BpfError naming the cgroup and attach type (ENOENT: no such cgroup;
 * EINVAL: program type / expected attach type mismatch).
 */
export function attachCgroup(program: Program, options: CgroupAttachOptions): Link {
  const what = `cgroup ${options.cgroup} ${attachTypeName(options.attachType)} (program ${program.name})`;
  const cg = openFd(options.cgroup, O_RDONLY | O_DIRECTORY);
  try {
    let linkErr = 0;
    if (!options.forceLegacy) {
      const fd = linkCreate(program.fd, cg, options.attachType);
      if (fd >= 0) return new BpfLink(new FD(fd, 'link', what), what);
      linkErr = -fd;
      const e = errnoName(linkErr);
      if (e !== 'EINVAL' && e !== 'EOPNOTSUPP' && e !== 'ENOTSUPP' && e !== 'ENOSYS') {
        throw bpfError(Cmd.LinkCreate, linkErr, `attach ${what}`);
      }
    }
    const attr = stableBuffer(BPF_ATTR_SIZE);
    attr.writeUInt32LE(cg, 0);
    attr.writeUInt32LE(program.fd, 4);
    attr.writeUInt32LE(options.attachType, 8);
    attr.writeUInt32LE(options.fallbackFlags ?? AttachFlags.AllowMulti, 12);
    const r = bpfAddr(Cmd.ProgAttach, addressOf(attr), BPF_ATTR_SIZE);
    if (r < 0) {
      const ctx = linkErr
        ? `attach ${what} (BPF link failed with ${errnoName(linkErr)}, then PROG_ATTACH)`
        : `attach ${what}`;
      throw bpfError(Cmd.ProgAttach, -r, ctx);
    }
    return new ProgAttachment(program, options.cgroup, options.attachType, what);
  } finally {
    closeFd(cg);
  }
}

/**
 * Keeps a pinned attachment across restarts: when a BPF link is pinned at `path`,
 * opens it and atomically replaces its program with `program`; otherwise calls
 * `attach()` and pins the new link there (legacy attachments, which cannot be
 * pinned, are returned unpinned). Throws BpfError.
 */
export function createOrUpdatePinnedLink(path: string, program: Program, attach: () => Link): Link {
  if (existsSync(path)) {
    const link = openPinnedLink(path);
    try {
      link.update(program);
    } catch (e) {
      link.close();
      throw e;
    }
    return link;
  }
  const link = attach();
  if (link.kind === 'bpf_link') {
    try {
      mkdirSync(dirname(path), { recursive: true });
      link.pin(path);
    } catch (e) {
      link.close();
      throw e;
    }
  }
  return link;
}

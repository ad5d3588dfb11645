/**
 * eBPF programs. A `ProgramSpec` describes a program (type, expected attach
 * type, name, license, instructions); `loadProgram` resolves its labels and
 * map references and loads it. A verifier rejection throws a VerifierError
 * carrying the full log and the formatted program. `Program.testRun` runs the
 * program on given input with BPF_PROG_TEST_RUN.
 */
import { encode, slotCount, type EncodeOptions } from './asm/encode.js';
import { formatProgram } from './asm/format.js';
import { decodeInstructions } from './asm/decode.js';
import type { Instruction, ProgramText } from './asm/instruction.js';
import { SpecError, VerifierError, bpfError, errnoNumber } from './errors.js';
import { FD } from './fd.js';
import {
  cString,
  getPinnedObject,
  objectInfo,
  pinObject,
  readCString,
  unpinPath,
} from './object.js';
import { BPF_ATTR_SIZE, Cmd, addressOf, bpfAddr, stableBuffer } from './syscall.js';
import { programTypeName, type AttachTypeId, type ProgramTypeId } from './types.js';

const ENOSPC = errnoNumber('ENOSPC')!;

/** Describes a program to load. */
export interface ProgramSpec {
  /** Kernel name: up to 15 characters of [A-Za-z0-9_.]. */
  name: string;
  type: ProgramTypeId;
  /** Required by some types (cgroup sock_addr: e.g. AttachType.CgroupInet4Connect). */
  expectedAttachType?: AttachTypeId;
  /** Default "GPL" (some helpers are GPL-only). */
  license?: string;
  instructions: ProgramText;
  /** Maps referenced by name in the instructions. */
  maps?: EncodeOptions['maps'];
  /** prog_flags (e.g. BPF_F_ANY_ALIGNMENT); default 0. */
  flags?: number;
}

/** Options for loading. */
export interface LoadOptions {
  /** Verifier log level when retrying after a rejection (1 = basic, 2 = verbose). Default 1. */
  logLevel?: 1 | 2;
  /** Initial log buffer size for the retry (default 1 MiB; doubled on ENOSPC up to 64 MiB). */
  logSize?: number;
  /** Always load with the log on and keep it in program.verifierLog (slower). */
  keepLog?: boolean;
}

/** Result of a test run. */
export interface TestRunResult {
  /** The program's return value (R0). */
  retval: number;
  /** The packet/data after the run (for programs that can modify it). */
  dataOut: Buffer;
  /** Average run time in nanoseconds, as the kernel measured it. */
  durationNs: number;
}

/** Input of a test run. */
export interface TestRunOptions {
  /** Packet or data input (for SchedCls/Xdp: a full Ethernet frame). */
  data?: Buffer;
  /** Context input (e.g. a struct __sk_buff). */
  ctx?: Buffer;
  /** Times to run (the kernel averages duration). Default 1. */
  repeat?: number;
  /** Output buffer size (default data length + 256). */
  dataOutSize?: number;
}

/** What the kernel says about a program. */
export interface ProgramInfo {
  type: number;
  id: number;
  tag: string;
  name: string;
  xlatedLen: number;
  jitedLen: number;
}

const NAME_RE = /^[A-Za-z0-9_.]{0,15}$/;

/**
 * Loads a program. Throws SpecError (bad name, empty program), AsmError (labels,
 * unbound maps), VerifierError (with the verifier's log) or BpfError (EPERM: not root).
 */
export function loadProgram(spec: ProgramSpec, options: LoadOptions = {}): Program {
  if (!NAME_RE.test(spec.name))
    throw new SpecError(
      `program name "${spec.name}" is invalid`,
      'use at most 15 characters of A-Z a-z 0-9 _ .',
    );
  const insns = encode(spec.instructions, { maps: spec.maps });
  if (insns.length === 0) throw new SpecError(`program ${spec.name} has no instructions`);
  const code = stableBuffer(insns.length);
  insns.copy(code);
  const license = cString(spec.license ?? 'GPL');
  const attr = stableBuffer(BPF_ATTR_SIZE);
  const fill = (logBuf: Buffer | undefined, level: number) => {
    attr.fill(0);
    attr.writeUInt32LE(spec.type, 0);
    attr.writeUInt32LE(insns.length / 8, 4);
    attr.writeBigUInt64LE(addressOf(code), 8);
    attr.writeBigUInt64LE(addressOf(license), 16);
    if (logBuf) {
      attr.writeUInt32LE(level, 24);
      attr.writeUInt32LE(logBuf.length, 28);
      attr.writeBigUInt64LE(addressOf(logBuf), 32);
    }
    attr.writeUInt32LE(spec.flags ?? 0, 44);
    attr.write(spec.name, 48, 15, 'latin1');
    attr.writeUInt32LE(spec.expectedAttachType ?? 0, 68);
  };
  const attrAddr = addressOf(attr);
  let log: Buffer | undefined;
  let fd: number;
  if (options.keepLog) {
    log = stableBuffer(options.logSize ?? 1 << 20);
    fill(log, options.logLevel ?? 1);
    fd = bpfAddr(Cmd.ProgLoad, attrAddr, BPF_ATTR_SIZE);
  } else {
    fill(undefined, 0);
    fd = bpfAddr(Cmd.ProgLoad, attrAddr, BPF_ATTR_SIZE);
  }
  if (fd < 0) {
    const firstErrno = -fd;
    // Retry with the verifier log on, growing the buffer until the log fits.
    let size = options.logSize ?? 1 << 20;
    for (;;) {
      log = stableBuffer(size);
      fill(log, options.logLevel ?? 1);
      fd = bpfAddr(Cmd.ProgLoad, attrAddr, BPF_ATTR_SIZE);
      if (fd >= 0 || -fd !== ENOSPC || size >= 64 << 20) break;
      size *= 4;
    }
    if (fd < 0) {
      const text = readCString(log, 0, log.length);
      if (text.trim() !== '')
        throw new VerifierError(
          spec.name,
          -fd,
          text,
          formatProgram(spec.instructions, { maps: spec.maps }),
        );
      throw bpfError(
        Cmd.ProgLoad,
        firstErrno,
        `load program ${spec.name} (${programTypeName(spec.type)})`,
      );
    }
  }
  const p = new Program(new FD(fd, 'program', spec.name), spec.name, spec.type);
  if (options.keepLog && log) p.verifierLog = readCString(log, 0, log.length);
  p.instructionCount = slotCount(spec.instructions);
  return p;
}

/** Opens the program pinned at path. Throws BpfError (ENOENT when nothing is pinned there). */
export function openPinnedProgram(path: string): Program {
  const raw = getPinnedObject(path, 'program');
  const fd = new FD(raw, 'program', path);
  try {
    const info = programInfoOf(raw, path);
    const p = new Program(fd, info.name, info.type as ProgramTypeId);
    p.pinnedPath = path;
    return p;
  } catch (e) {
    fd.close();
    throw e;
  }
}

function programInfoOf(fd: number, what: string): ProgramInfo {
  const b = objectInfo(fd, 232, `program ${what}`);
  return {
    type: b.readUInt32LE(0),
    id: b.readUInt32LE(4),
    tag: b.subarray(8, 16).toString('hex'),
    jitedLen: b.readUInt32LE(16),
    xlatedLen: b.readUInt32LE(20),
    name: readCString(b, 64, 16),
  };
}

/** A loaded program. Holds a file descriptor: close() it (attachments made through links keep it alive). */
export class Program {
  readonly name: string;
  readonly type: ProgramTypeId;
  pinnedPath: string | undefined;
  /** The verifier log, when loaded with keepLog. */
  verifierLog: string | undefined;
  /** Number of instruction slots loaded (0 when opened from a pin). */
  instructionCount = 0;
  readonly #fd: FD;

  constructor(fd: FD, name: string, type: ProgramTypeId) {
    this.#fd = fd;
    this.name = name;
    this.type = type;
  }

  /** The raw file descriptor (throws after close()). */
  get fd(): number {
    return this.#fd.raw;
  }

  get closed(): boolean {
    return this.#fd.closed;
  }

  /** The kernel's view of this program (id, tag, ...). */
  info(): ProgramInfo {
    return programInfoOf(this.#fd.raw, this.name);
  }

  /**
   * The instructions as the kernel holds them after verification and rewriting
   * (xlated), decoded; format them with formatProgram. Throws BpfError.
   */
  translatedInstructions(): Instruction[] {
    const len = this.info().xlatedLen;
    const insns = stableBuffer(len);
    const info = stableBuffer(232);
    info.writeUInt32LE(len, 20);
    info.writeBigUInt64LE(addressOf(insns), 32);
    const attr = stableBuffer(BPF_ATTR_SIZE);
    attr.writeUInt32LE(this.#fd.raw, 0);
    attr.writeUInt32LE(info.length, 4);
    attr.writeBigUInt64LE(addressOf(info), 8);
    const r = bpfAddr(Cmd.ObjGetInfoByFd, addressOf(attr), BPF_ATTR_SIZE);
    if (r < 0) throw bpfError(Cmd.ObjGetInfoByFd, -r, `read instructions of program ${this.name}`);
    return decodeInstructions(insns.subarray(0, Math.min(len, info.readUInt32LE(20))));
  }

  /**
   * Runs the program once (or `repeat` times) on the given input with BPF_PROG_TEST_RUN.
   * Throws BpfError (EINVAL: input too short for the program type; ENOTSUPP: type cannot be test-run).
   */
  testRun(options: TestRunOptions = {}): TestRunResult {
    const data = options.data ?? Buffer.alloc(0);
    const dataIn = stableBuffer(data.length);
    data.copy(dataIn);
    const outSize = options.dataOutSize ?? data.length + 256;
    const dataOut = stableBuffer(outSize);
    const ctx = options.ctx ? stableBuffer(options.ctx.length) : undefined;
    if (ctx && options.ctx) options.ctx.copy(ctx);
    const attr = stableBuffer(BPF_ATTR_SIZE);
    attr.writeUInt32LE(this.#fd.raw, 0);
    attr.writeUInt32LE(data.length, 8);
    attr.writeUInt32LE(outSize, 12);
    if (data.length > 0) attr.writeBigUInt64LE(addressOf(dataIn), 16);
    attr.writeBigUInt64LE(addressOf(dataOut), 24);
    attr.writeUInt32LE(options.repeat ?? 1, 32);
    if (ctx) {
      attr.writeUInt32LE(ctx.length, 40);
      attr.writeBigUInt64LE(addressOf(ctx), 48);
    }
    const r = bpfAddr(Cmd.ProgTestRun, addressOf(attr), 80);
    if (r < 0) throw bpfError(Cmd.ProgTestRun, -r, `test run of program ${this.name}`);
    const outLen = attr.readUInt32LE(12);
    return {
      retval: attr.readInt32LE(4),
      dataOut: Buffer.from(dataOut.subarray(0, Math.min(outLen, outSize))),
      durationNs: attr.readUInt32LE(36),
    };
  }

  /** Pins the program at path. */
  pin(path: string): void {
    pinObject(this.#fd.raw, path, `program ${this.name}`);
    this.pinnedPath = path;
  }

  /** Removes the program's pin, if any. */
  unpin(): void {
    if (this.pinnedPath !== undefined) unpinPath(this.pinnedPath);
    this.pinnedPath = undefined;
  }

  /** Closes the fd. The program lives on while attached or pinned. Idempotent. */
  close(): void {
    this.#fd.close();
  }
}

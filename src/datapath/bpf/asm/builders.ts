/**
 * Builders that read like the operation, after cilium/ebpf:
 *
 *   asm.mov.imm(R0, 1)          r0 = 1           (64-bit; .imm32/.reg32 for 32-bit)
 *   asm.add.reg(R1, R2)         r1 += r2
 *   asm.jeq.imm(R1, 0, 'out')   if r1 == 0 goto out
 *   asm.ldxw(R0, R1, 4)         r0 = *(u32 *)(r1 + 4)
 *   asm.stxdw(R10, -8, R1)      *(u64 *)(r10 - 8) = r1
 *   asm.loadMapPtr(R1, map)     r1 = map (fd bound when encoding)
 *   asm.call(Helper.MapLookupElem)
 *   asm.label('out'), asm.exit()
 */
import { AsmError } from '../errors.js';
import type { HelperId } from './helpers.js';
import type { Instruction, Label, MapReference } from './instruction.js';
import {
  AluOp,
  AtomicOp,
  Class,
  End,
  JmpOp,
  Mode,
  Pseudo,
  Size,
  Src,
  sizeCode,
  type AluOpName,
  type CondJumpName,
  type Register,
  type SizeName,
} from './opcodes.js';

function reg(r: number, what: string): Register {
  if (!Number.isInteger(r) || r < 0 || r > 10)
    throw new AsmError(`${what}: register r${r} does not exist`, 'registers are R0..R10');
  return r as Register;
}

function imm32(v: number, what: string): number {
  if (!Number.isInteger(v) || v < -0x80000000 || v > 0xffffffff) {
    throw new AsmError(
      `${what}: immediate ${v} does not fit in 32 bits`,
      'use asm.ldImm64 for 64-bit constants',
    );
  }
  return v | 0;
}

function off16(v: number, what: string): number {
  if (!Number.isInteger(v) || v < -0x8000 || v > 0x7fff)
    throw new AsmError(`${what}: offset ${v} does not fit in 16 bits`);
  return v;
}

function insn(
  opcode: number,
  dst: number,
  src: number,
  off: number,
  imm: number,
  extra: Partial<Instruction> = {},
): Instruction {
  return { kind: 'insn', opcode, dst: dst as Register, src, off, imm, ...extra };
}

/** Builders for one ALU operation. `imm`/`reg` are 64-bit (ALU64), `imm32`/`reg32` 32-bit (ALU). */
export interface AluBuilder {
  imm(dst: number, imm: number): Instruction;
  reg(dst: number, src: number): Instruction;
  imm32(dst: number, imm: number): Instruction;
  reg32(dst: number, src: number): Instruction;
}

/** Builders for one ALU operation at a fixed width. */
export interface AluWidthBuilder {
  imm(dst: number, imm: number): Instruction;
  reg(dst: number, src: number): Instruction;
}

function alu(op: AluOpName): AluBuilder {
  const mk = (c: number, s: number) => (dst: number, v: number) =>
    s === Src.K
      ? insn(c | op2(op) | Src.K, reg(dst, op), 0, 0, imm32(v, op))
      : insn(c | op2(op) | Src.X, reg(dst, op), reg(v, op), 0, 0);
  return {
    imm: mk(Class.ALU64, Src.K),
    reg: mk(Class.ALU64, Src.X),
    imm32: mk(Class.ALU, Src.K),
    reg32: mk(Class.ALU, Src.X),
  };
}

function op2(op: AluOpName): number {
  return AluOp[op];
}

function width(b: AluBuilder, bits: 32 | 64): AluWidthBuilder {
  return bits === 64 ? { imm: b.imm, reg: b.reg } : { imm: b.imm32, reg: b.reg32 };
}

/** Builders for one conditional jump. `imm`/`reg` compare 64 bits (JMP), `imm32`/`reg32` 32 bits (JMP32). */
export interface JumpBuilder {
  imm(dst: number, imm: number, target: string): Instruction;
  reg(dst: number, src: number, target: string): Instruction;
  imm32(dst: number, imm: number, target: string): Instruction;
  reg32(dst: number, src: number, target: string): Instruction;
}

function jump(op: CondJumpName): JumpBuilder {
  const mk = (c: number, s: number) => (dst: number, v: number, target: string) => {
    label(target);
    return s === Src.K
      ? insn(c | JmpOp[op] | Src.K, reg(dst, op), 0, 0, imm32(v, op), { target })
      : insn(c | JmpOp[op] | Src.X, reg(dst, op), reg(v, op), 0, 0, { target });
  };
  return {
    imm: mk(Class.JMP, Src.K),
    reg: mk(Class.JMP, Src.X),
    imm32: mk(Class.JMP32, Src.K),
    reg32: mk(Class.JMP32, Src.X),
  };
}

/** A label marking the next instruction's position. Names are non-empty strings. */
function label(name: string): Label {
  if (typeof name !== 'string' || name === '')
    throw new AsmError(`label name must be a non-empty string, got ${JSON.stringify(name)}`);
  return { kind: 'label', name };
}

function loadMem(size: SizeName) {
  return (dst: number, src: number, off: number): Instruction =>
    insn(
      Class.LDX | Mode.MEM | sizeCode[size],
      reg(dst, `ldx${size}`),
      reg(src, `ldx${size}`),
      off16(off, `ldx${size}`),
      0,
    );
}

function storeReg(size: SizeName) {
  return (dst: number, off: number, src: number): Instruction =>
    insn(
      Class.STX | Mode.MEM | sizeCode[size],
      reg(dst, `stx${size}`),
      reg(src, `stx${size}`),
      off16(off, `stx${size}`),
      0,
    );
}

function storeImm(size: SizeName) {
  return (dst: number, off: number, imm: number): Instruction =>
    insn(
      Class.ST | Mode.MEM | sizeCode[size],
      reg(dst, `st${size}`),
      0,
      off16(off, `st${size}`),
      imm32(imm, `st${size}`),
    );
}

function swap(cls: number, dir: number, bits: 16 | 32 | 64) {
  return (dst: number): Instruction =>
    insn(cls | AluOp.end | dir, reg(dst, 'byte swap'), 0, 0, bits);
}

function ldImm64(dst: number, value: bigint | number): Instruction {
  const v = BigInt.asUintN(64, BigInt(value));
  const lo = Number(v & 0xffffffffn) | 0;
  return insn(Class.LD | Mode.IMM | Size.DW, reg(dst, 'ldImm64'), 0, 0, lo, { imm64: v });
}

const adds = alu('add');
const subs = alu('sub');
const muls = alu('mul');
const divs = alu('div');
const ors = alu('or');
const ands = alu('and');
const lshs = alu('lsh');
const rshs = alu('rsh');
const mods = alu('mod');
const xors = alu('xor');
const movs = alu('mov');
const arshs = alu('arsh');

/** The assembler's builders. See the file comment for the reading. */
export const asm = {
  // ALU: 64-bit by default, like cilium/ebpf; `*64` aliases and `*32` fixed-width variants.
  add: adds,
  sub: subs,
  mul: muls,
  div: divs,
  or: ors,
  and: ands,
  lsh: lshs,
  rsh: rshs,
  mod: mods,
  xor: xors,
  mov: movs,
  arsh: arshs,
  add64: width(adds, 64),
  sub64: width(subs, 64),
  mul64: width(muls, 64),
  div64: width(divs, 64),
  or64: width(ors, 64),
  and64: width(ands, 64),
  lsh64: width(lshs, 64),
  rsh64: width(rshs, 64),
  mod64: width(mods, 64),
  xor64: width(xors, 64),
  mov64: width(movs, 64),
  arsh64: width(arshs, 64),
  add32: width(adds, 32),
  sub32: width(subs, 32),
  mul32: width(muls, 32),
  div32: width(divs, 32),
  or32: width(ors, 32),
  and32: width(ands, 32),
  lsh32: width(lshs, 32),
  rsh32: width(rshs, 32),
  mod32: width(mods, 32),
  xor32: width(xors, 32),
  mov32: width(movs, 32),
  arsh32: width(arshs, 32),
  /** dst = -dst (64-bit). */
  neg: (dst: number): Instruction => insn(Class.ALU64 | AluOp.neg, reg(dst, 'neg'), 0, 0, 0),
  /** dst = -dst (32-bit). */
  neg32: (dst: number): Instruction => insn(Class.ALU | AluOp.neg, reg(dst, 'neg32'), 0, 0, 0),

  // Byte swaps: host (little-endian) <-> big-endian (network order) and to little-endian (truncation).
  be16: swap(Class.ALU, End.TO_BE, 16),
  be32: swap(Class.ALU, End.TO_BE, 32),
  be64: swap(Class.ALU, End.TO_BE, 64),
  le16: swap(Class.ALU, End.TO_LE, 16),
  le32: swap(Class.ALU, End.TO_LE, 32),
  le64: swap(Class.ALU, End.TO_LE, 64),
  /** Unconditional byte swap (cpu v4, kernel >= 6.6). */
  bswap16: swap(Class.ALU64, End.TO_LE, 16),
  bswap32: swap(Class.ALU64, End.TO_LE, 32),
  bswap64: swap(Class.ALU64, End.TO_LE, 64),

  // Jumps.
  jeq: jump('jeq'),
  jne: jump('jne'),
  jgt: jump('jgt'),
  jge: jump('jge'),
  jlt: jump('jlt'),
  jle: jump('jle'),
  jsgt: jump('jsgt'),
  jsge: jump('jsge'),
  jslt: jump('jslt'),
  jsle: jump('jsle'),
  jset: jump('jset'),
  /** goto target. */
  ja: (target: string): Instruction => {
    label(target);
    return insn(Class.JMP | JmpOp.ja, 0, 0, 0, 0, { target });
  },
  /** Marks the position of the next instruction. */
  label,

  // Memory.
  ldxb: loadMem('b'),
  ldxh: loadMem('h'),
  ldxw: loadMem('w'),
  ldxdw: loadMem('dw'),
  stxb: storeReg('b'),
  stxh: storeReg('h'),
  stxw: storeReg('w'),
  stxdw: storeReg('dw'),
  stb: storeImm('b'),
  sth: storeImm('h'),
  stw: storeImm('w'),
  stdw: storeImm('dw'),
  /** dst = *(size *)(src + off). */
  loadMem: (dst: number, src: number, off: number, size: SizeName): Instruction =>
    loadMem(size)(dst, src, off),
  /** *(size *)(dst + off) = src. */
  storeMem: (dst: number, off: number, src: number, size: SizeName): Instruction =>
    storeReg(size)(dst, off, src),
  /** *(size *)(dst + off) = imm. */
  storeImm: (dst: number, off: number, imm: number, size: SizeName): Instruction =>
    storeImm(size)(dst, off, imm),
  /**
   * lock *(size *)(dst + off) += src. size 'w' or 'dw'. With `fetch`, src receives the old value.
   */
  atomicAdd: (
    dst: number,
    off: number,
    src: number,
    size: 'w' | 'dw' = 'dw',
    options: { fetch?: boolean } = {},
  ): Instruction =>
    insn(
      Class.STX | Mode.ATOMIC | sizeCode[size],
      reg(dst, 'atomicAdd'),
      reg(src, 'atomicAdd'),
      off16(off, 'atomicAdd'),
      AtomicOp.ADD | (options.fetch ? AtomicOp.FETCH : 0),
    ),

  // 64-bit immediates.
  /** dst = value (64-bit; two slots). */
  ldImm64,
  /** dst = pointer to `map` (BPF_PSEUDO_MAP_FD; fd bound when encoding). */
  loadMapPtr: (dst: number, map: MapReference): Instruction =>
    insn(Class.LD | Mode.IMM | Size.DW, reg(dst, 'loadMapPtr'), Pseudo.MAP_FD, 0, 0, {
      imm64: 0n,
      map,
    }),
  /** dst = pointer to `map`'s value + offset (BPF_PSEUDO_MAP_VALUE; array maps, key 0). */
  loadMapValue: (dst: number, map: MapReference, offset = 0): Instruction => {
    if (!Number.isInteger(offset) || offset < 0 || offset > 0xffffffff)
      throw new AsmError(`loadMapValue: bad offset ${offset}`);
    return insn(Class.LD | Mode.IMM | Size.DW, reg(dst, 'loadMapValue'), Pseudo.MAP_VALUE, 0, 0, {
      imm64: 0n,
      map,
      mapOffset: offset,
    });
  },

  // Calls and exit.
  /** Calls a helper: asm.call(Helper.MapLookupElem). Arguments in R1..R5, result in R0. */
  call: (helper: HelperId | number): Instruction =>
    insn(Class.JMP | JmpOp.call, 0, 0, 0, imm32(helper, 'call')),
  /** Calls a BPF function (bpf-to-bpf) starting at `target`. */
  callLabel: (target: string): Instruction => {
    label(target);
    return insn(Class.JMP | JmpOp.call, 0, Pseudo.CALL, 0, 0, { target });
  },
  /** Returns R0. */
  exit: (): Instruction => insn(Class.JMP | JmpOp.exit, 0, 0, 0, 0),
  /** Returns R0 (alias of exit). */
  ret: (): Instruction => insn(Class.JMP | JmpOp.exit, 0, 0, 0, 0),
  /** r0 = value; exit. */
  retImm: (value: number): Instruction[] => [
    movs.imm(0, value),
    insn(Class.JMP | JmpOp.exit, 0, 0, 0, 0),
  ],
  /** An instruction from raw fields (for what the builders do not cover). */
  raw: (opcode: number, dst: number, src: number, off: number, imm: number): Instruction =>
    insn(opcode & 0xff, reg(dst, 'raw'), src & 0xf, off16(off, 'raw'), imm32(imm, 'raw')),
  /** The same instruction with a comment for the formatter. */
  comment: (i: Instruction, text: string): Instruction => ({ ...i, comment: text }),
};

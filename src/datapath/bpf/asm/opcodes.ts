/**
 * eBPF instruction set constants (Documentation/bpf/standardization/instruction-set.rst).
 * Stable kernel ABI.
 */

/** Instruction classes (low 3 bits of the opcode). */
export const Class = {
  LD: 0x00,
  LDX: 0x01,
  ST: 0x02,
  STX: 0x03,
  ALU: 0x04,
  JMP: 0x05,
  JMP32: 0x06,
  ALU64: 0x07,
} as const;

/** Load/store sizes. */
export const Size = { W: 0x00, H: 0x08, B: 0x10, DW: 0x18 } as const;
export type SizeName = 'b' | 'h' | 'w' | 'dw';
export const sizeCode: Record<SizeName, number> = { b: Size.B, h: Size.H, w: Size.W, dw: Size.DW };
export const sizeBytes: Record<SizeName, number> = { b: 1, h: 2, w: 4, dw: 8 };

/** Load/store modes. */
export const Mode = {
  IMM: 0x00,
  ABS: 0x20,
  IND: 0x40,
  MEM: 0x60,
  MEMSX: 0x80,
  ATOMIC: 0xc0,
} as const;

/** Operand source: immediate (K) or register (X). */
export const Src = { K: 0x00, X: 0x08 } as const;

/** ALU operations. */
export const AluOp = {
  add: 0x00,
  sub: 0x10,
  mul: 0x20,
  div: 0x30,
  or: 0x40,
  and: 0x50,
  lsh: 0x60,
  rsh: 0x70,
  neg: 0x80,
  mod: 0x90,
  xor: 0xa0,
  mov: 0xb0,
  arsh: 0xc0,
  end: 0xd0,
} as const;
export type AluOpName = Exclude<keyof typeof AluOp, 'end' | 'neg'>;

/** Jump operations. */
export const JmpOp = {
  ja: 0x00,
  jeq: 0x10,
  jgt: 0x20,
  jge: 0x30,
  jset: 0x40,
  jne: 0x50,
  jsgt: 0x60,
  jsge: 0x70,
  call: 0x80,
  exit: 0x90,
  jlt: 0xa0,
  jle: 0xb0,
  jslt: 0xc0,
  jsle: 0xd0,
} as const;
export type CondJumpName = Exclude<keyof typeof JmpOp, 'ja' | 'call' | 'exit'>;

/** Byte-swap directions (ALU class END). */
export const End = { TO_LE: 0x00, TO_BE: 0x08 } as const;

/** Atomic operations (imm of an STX|ATOMIC instruction). */
export const AtomicOp = {
  ADD: 0x00,
  OR: 0x40,
  AND: 0x50,
  XOR: 0xa0,
  FETCH: 0x01,
  XCHG: 0xe1,
  CMPXCHG: 0xf1,
} as const;

/** src_reg values of a 64-bit immediate load. */
export const Pseudo = {
  /** imm = map fd: dst = pointer to the map. */
  MAP_FD: 1,
  /** imm = map fd, next imm = offset: dst = pointer into the map's value (array maps). */
  MAP_VALUE: 2,
  /** src_reg of a call to a BPF function (imm = relative offset). */
  CALL: 1,
} as const;

/** Registers. R10 is the read-only frame pointer. */
export const R0 = 0;
export const R1 = 1;
export const R2 = 2;
export const R3 = 3;
export const R4 = 4;
export const R5 = 5;
export const R6 = 6;
export const R7 = 7;
export const R8 = 8;
export const R9 = 9;
export const R10 = 10;
/** The frame pointer (R10). */
export const RFP = 10;
export type Register = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10;

export function cls(opcode: number): number {
  return opcode & 0x07;
}

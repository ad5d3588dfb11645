/**
 * Decoding kernel bytes back into instructions (a disassembler), e.g. to
 * print a pinned program's translated instructions. Jumps keep their numeric
 * offsets (there are no labels in bytes); map references become
 * `{ fd, name: 'fd<N>' }`.
 */
import { AsmError } from '../errors.js';
import type { Instruction } from './instruction.js';
import { Class, Mode, Pseudo, Size, type Register } from './opcodes.js';

/** Decodes 8-byte instruction slots. Throws AsmError on a truncated buffer or a dangling 64-bit load. */
export function decodeInstructions(buf: Buffer): Instruction[] {
  if (buf.length % 8 !== 0)
    throw new AsmError(`decode: ${buf.length} bytes is not a whole number of instructions`);
  const out: Instruction[] = [];
  for (let p = 0; p < buf.length; p += 8) {
    const opcode = buf[p]!;
    const dst = (buf[p + 1]! & 0x0f) as Register;
    const src = buf[p + 1]! >> 4;
    const off = buf.readInt16LE(p + 2);
    const imm = buf.readInt32LE(p + 4);
    if (opcode === (Class.LD | Mode.IMM | Size.DW)) {
      if (p + 16 > buf.length)
        throw new AsmError(`decode: 64-bit load at slot ${p / 8} has no second slot`);
      const hi = buf.readInt32LE(p + 12);
      const imm64 = (BigInt(hi >>> 0) << 32n) | BigInt(imm >>> 0);
      const base: Instruction = { kind: 'insn', opcode, dst, src, off, imm, imm64 };
      if (src === Pseudo.MAP_FD)
        out.push({ ...base, imm64: 0n, map: { fd: imm, name: `fd${imm}` } });
      else if (src === Pseudo.MAP_VALUE)
        out.push({ ...base, imm64: 0n, map: { fd: imm, name: `fd${imm}` }, mapOffset: hi >>> 0 });
      else out.push(base);
      p += 8;
      continue;
    }
    out.push({ kind: 'insn', opcode, dst, src, off, imm });
  }
  return out;
}

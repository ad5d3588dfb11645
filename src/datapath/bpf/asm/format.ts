/**
 * Prints a program readably, in the verifier's notation, with instruction
 * indexes (slot numbers, as in the verifier log) and labels:
 *
 *   connect4:
 *      0: (61) r6 = *(u32 *)(r1 +4)
 *      1: (55) if r6 != 0x302010a goto +3 <pass>
 */
import { helperName } from './helpers.js';
import type { ProgramText } from './instruction.js';
import { resolve, type EncodeOptions, type ResolvedInstruction } from './encode.js';
import { AluOp, Class, JmpOp, Mode, Pseudo, Src, cls } from './opcodes.js';

const aluSym: Record<number, string> = {
  [AluOp.add]: '+=',
  [AluOp.sub]: '-=',
  [AluOp.mul]: '*=',
  [AluOp.div]: '/=',
  [AluOp.or]: '|=',
  [AluOp.and]: '&=',
  [AluOp.lsh]: '<<=',
  [AluOp.rsh]: '>>=',
  [AluOp.mod]: '%=',
  [AluOp.xor]: '^=',
  [AluOp.mov]: '=',
  [AluOp.arsh]: 's>>=',
};

const jmpSym: Record<number, string> = {
  [JmpOp.jeq]: '==',
  [JmpOp.jgt]: '>',
  [JmpOp.jge]: '>=',
  [JmpOp.jset]: '&',
  [JmpOp.jne]: '!=',
  [JmpOp.jsgt]: 's>',
  [JmpOp.jsge]: 's>=',
  [JmpOp.jlt]: '<',
  [JmpOp.jle]: '<=',
  [JmpOp.jslt]: 's<',
  [JmpOp.jsle]: 's<=',
};

const sizeName: Record<number, string> = { 0x00: 'u32', 0x08: 'u16', 0x10: 'u8', 0x18: 'u64' };

function hex(v: number): string {
  return v < 0 ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`;
}

function offs(v: number): string {
  return v < 0 ? `${v}` : `+${v}`;
}

function mapName(r: ResolvedInstruction): string {
  const m = r.insn.map;
  return typeof m === 'string' ? m : (m?.name ?? '?');
}

/** One instruction in the verifier's notation (without index). */
export function formatInstruction(r: ResolvedInstruction): string {
  const i = r.insn;
  const op = i.opcode;
  const c = cls(op);
  const d = i.dst;
  const s = i.src;
  switch (c) {
    case Class.ALU:
    case Class.ALU64: {
      const p = c === Class.ALU64 ? 'r' : 'w';
      const code = op & 0xf0;
      if (code === AluOp.neg) return `${p}${d} = -${p}${d}`;
      if (code === AluOp.end) {
        if (c === Class.ALU64) return `r${d} = bswap${r.imm} r${d}`;
        return `r${d} = ${op & Src.X ? 'be' : 'le'}${r.imm} r${d}`;
      }
      const sym = aluSym[code] ?? `alu(${hex(code)})`;
      return op & Src.X ? `${p}${d} ${sym} ${p}${s}` : `${p}${d} ${sym} ${r.imm}`;
    }
    case Class.LDX:
      return `r${d} = *(${sizeName[op & 0x18]} *)(r${s} ${offs(r.off)})`;
    case Class.ST:
      return `*(${sizeName[op & 0x18]} *)(r${d} ${offs(r.off)}) = ${r.imm}`;
    case Class.STX:
      if ((op & 0xe0) === Mode.ATOMIC) {
        const fetch = r.imm & 1 ? ' (fetch)' : '';
        return `lock *(${sizeName[op & 0x18]} *)(r${d} ${offs(r.off)}) += r${s}${fetch}`;
      }
      return `*(${sizeName[op & 0x18]} *)(r${d} ${offs(r.off)}) = r${s}`;
    case Class.LD:
      if (i.imm64 !== undefined) {
        if (s === Pseudo.MAP_FD) return `r${d} = map[${mapName(r)}] ll`;
        if (s === Pseudo.MAP_VALUE) return `r${d} = map_value[${mapName(r)}] + ${r.imm2} ll`;
        return `r${d} = 0x${i.imm64.toString(16)} ll`;
      }
      return `ld ${hex(op)}`;
    case Class.JMP:
    case Class.JMP32: {
      const code = op & 0xf0;
      const lbl = i.target !== undefined ? ` <${i.target}>` : '';
      if (code === JmpOp.exit) return 'exit';
      if (code === JmpOp.call) {
        if (s === Pseudo.CALL) return `call pc${offs(r.imm)}${lbl}`;
        return `call ${helperName(r.imm) ?? 'unknown'}#${r.imm}`;
      }
      if (code === JmpOp.ja) return `goto pc${offs(r.off)}${lbl}`;
      const p = c === Class.JMP ? 'r' : 'w';
      const rhs = op & Src.X ? `${p}${s}` : hex(r.imm);
      return `if ${p}${d} ${jmpSym[code] ?? '?'} ${rhs} goto pc${offs(r.off)}${lbl}`;
    }
    default:
      return `unknown ${hex(op)}`;
  }
}

/** Formats a program: one line per instruction with its index and opcode, labels on their own lines. */
export function formatProgram(text: ProgramText, options: EncodeOptions = {}): string {
  const resolved = resolve(text, { ...options, allowUnboundMaps: true });
  const width = String(resolved.length ? resolved[resolved.length - 1]!.index : 0).length;
  const lines: string[] = [];
  for (const r of resolved) {
    for (const l of r.labels) lines.push(`${l}:`);
    const code = r.insn.opcode.toString(16).padStart(2, '0');
    const comment = r.insn.comment ? `  ; ${r.insn.comment}` : '';
    lines.push(`  ${String(r.index).padStart(width)}: (${code}) ${formatInstruction(r)}${comment}`);
  }
  return lines.join('\n');
}

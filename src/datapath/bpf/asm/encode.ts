/**
 * Label resolution and encoding. `resolve` assigns every instruction its slot
 * index (a 64-bit immediate load takes two), resolves jump targets into
 * relative offsets and map references into fds; `encode` writes the 8-byte
 * little-endian instructions the kernel takes.
 */
import { AsmError } from '../errors.js';
import { flatten, type Instruction, type MapReference, type ProgramText } from './instruction.js';
import { Class, JmpOp, Pseudo, cls } from './opcodes.js';

/** How map references by name are bound at encode time. */
export interface EncodeOptions {
  /** Maps referenced by name in loadMapPtr/loadMapValue. */
  maps?: Readonly<Record<string, { readonly fd: number }>>;
  /** Leave map fds at 0 instead of failing when a map is unbound (for formatting and tests). */
  allowUnboundMaps?: boolean;
}

/** An instruction with its slot index, its labels and final fields. */
export interface ResolvedInstruction {
  readonly insn: Instruction;
  /** Index of the first slot (what the verifier log calls the instruction index). */
  readonly index: number;
  /** Labels that point at this instruction. */
  readonly labels: string[];
  readonly off: number;
  readonly imm: number;
  /** Second-slot immediate of a 64-bit load. */
  readonly imm2: number;
}

/** Resolves labels and map references. Throws AsmError on unknown/duplicate labels or offsets out of range. */
export function resolve(text: ProgramText, options: EncodeOptions = {}): ResolvedInstruction[] {
  const items = flatten(text);
  const labelAt = new Map<string, number>();
  const pending: string[] = [];
  const placed: { insn: Instruction; index: number; labels: string[] }[] = [];
  let slot = 0;
  for (const it of items) {
    if (it.kind === 'label') {
      if (labelAt.has(it.name))
        throw new AsmError(
          `duplicate label "${it.name}"`,
          'every label name must be unique in a program',
        );
      labelAt.set(it.name, slot);
      pending.push(it.name);
      continue;
    }
    if (it.kind !== 'insn') throw new AsmError(`not an instruction: ${JSON.stringify(it)}`);
    placed.push({ insn: it, index: slot, labels: pending.splice(0) });
    slot += it.imm64 !== undefined ? 2 : 1;
  }
  if (pending.length > 0) {
    throw new AsmError(
      `label "${pending[0]}" is at the end of the program, after the last instruction`,
      'a label must precede an instruction',
    );
  }
  return placed.map(({ insn, index, labels }) => {
    let off = insn.off;
    let imm = insn.imm;
    let imm2 = 0;
    if (insn.target !== undefined) {
      const at = labelAt.get(insn.target);
      if (at === undefined)
        throw new AsmError(
          `instruction ${index}: jump to unknown label "${insn.target}"`,
          'add asm.label(name) where the jump should land',
        );
      const rel = at - (index + 1);
      const isPseudoCall = cls(insn.opcode) === Class.JMP && (insn.opcode & 0xf0) === JmpOp.call;
      if (isPseudoCall) {
        imm = rel;
      } else {
        if (rel < -0x8000 || rel > 0x7fff) {
          throw new AsmError(
            `instruction ${index}: jump to "${insn.target}" is ${rel} instructions away, beyond the 16-bit range (-32768..32767)`,
            'split the program or move the target closer',
          );
        }
        off = rel;
      }
    }
    if (insn.imm64 !== undefined) {
      if (insn.map !== undefined) {
        imm = mapFd(insn.map, index, options);
        imm2 = insn.src === Pseudo.MAP_VALUE ? (insn.mapOffset ?? 0) | 0 : 0;
      } else {
        imm = Number(insn.imm64 & 0xffffffffn) | 0;
        imm2 = Number(insn.imm64 >> 32n) | 0;
      }
    }
    return { insn, index, labels, off, imm, imm2 };
  });
}

function mapFd(ref: MapReference, index: number, options: EncodeOptions): number {
  if (typeof ref === 'string') {
    const m = options.maps?.[ref];
    if (m === undefined) {
      if (options.allowUnboundMaps) return 0;
      throw new AsmError(
        `instruction ${index}: map "${ref}" is not bound`,
        `pass it in the program spec's maps: { ${ref}: map }`,
      );
    }
    return m.fd;
  }
  if (options.allowUnboundMaps) {
    try {
      return ref.fd;
    } catch {
      return 0;
    }
  }
  return ref.fd;
}

/** Number of 8-byte slots the program takes (its instruction count for the kernel). */
export function slotCount(text: ProgramText): number {
  let n = 0;
  for (const i of flatten(text)) if (i.kind === 'insn') n += i.imm64 !== undefined ? 2 : 1;
  return n;
}

/** Encodes resolved instructions into `out` (a fresh buffer if omitted). */
export function encodeResolved(resolved: readonly ResolvedInstruction[], out?: Buffer): Buffer {
  const last = resolved[resolved.length - 1];
  const n = last === undefined ? 0 : last.index + (last.insn.imm64 !== undefined ? 2 : 1);
  const buf = out ?? Buffer.alloc(n * 8);
  if (buf.length < n * 8)
    throw new AsmError(`encode: buffer of ${buf.length} bytes is smaller than ${n * 8}`);
  for (const r of resolved) {
    const p = r.index * 8;
    buf[p] = r.insn.opcode;
    buf[p + 1] = (r.insn.dst & 0x0f) | ((r.insn.src & 0x0f) << 4);
    buf.writeInt16LE(r.off, p + 2);
    buf.writeInt32LE(r.imm, p + 4);
    if (r.insn.imm64 !== undefined) {
      buf.fill(0, p + 8, p + 12);
      buf.writeInt32LE(r.imm2, p + 12);
    }
  }
  return buf;
}

/** Resolves and encodes a program into kernel bytes (8 per slot). */
export function encode(text: ProgramText, options: EncodeOptions = {}): Buffer {
  return encodeResolved(resolve(text, options));
}

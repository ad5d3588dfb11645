/**
 * Instructions as values. An `Instruction` is one eBPF instruction (two slots
 * for a 64-bit immediate load); a `Label` marks the position of the next
 * instruction. Jumps name labels; offsets are computed when encoding.
 */
import type { Register } from './opcodes.js';

/** Anything a 64-bit immediate can reference as a map: an object with an fd (a BpfMap), or a name bound at load time. */
export type MapReference = { readonly fd: number; readonly name: string } | string;

/** One eBPF instruction. */
export interface Instruction {
  readonly kind: 'insn';
  readonly opcode: number;
  readonly dst: Register;
  readonly src: number;
  readonly off: number;
  readonly imm: number;
  /** For a 64-bit immediate load (two slots): the full value. */
  readonly imm64?: bigint;
  /** Jump target label: resolved into `off` (or `imm` for calls to BPF functions). */
  readonly target?: string;
  /** For map pointer / map value loads: the map, fd resolved when encoding. */
  readonly map?: MapReference;
  /** For map value loads: offset into the value. */
  readonly mapOffset?: number;
  /** Free text shown by the formatter. */
  readonly comment?: string;
}

/** Marks the position of the next instruction. */
export interface Label {
  readonly kind: 'label';
  readonly name: string;
}

export type Insn = Instruction | Label;

/** A program text: instructions and labels, possibly nested (flattened on encode). */
export type ProgramText = ReadonlyArray<Insn | ProgramText>;

/** Flattens nested program text. */
export function flatten(text: ProgramText): Insn[] {
  const out: Insn[] = [];
  const walk = (t: ProgramText) => {
    for (const x of t) {
      if (Array.isArray(x)) walk(x as ProgramText);
      else out.push(x as Insn);
    }
  };
  walk(text);
  return out;
}

/** Number of 8-byte slots an instruction takes. */
export function slots(i: Instruction): number {
  return i.imm64 !== undefined ? 2 : 1;
}

/** The eBPF assembler: instructions as values, labels, encoding, formatting. */
export * from './opcodes.js';
export * from './instruction.js';
export * from './builders.js';
export * from './encode.js';
export * from './decode.js';
export * from './format.js';
export * from './helpers.js';

/**
 * datapath/bpf: a general eBPF library (a TypeScript counterpart of
 * cilium/ebpf). It owns the bpf(2) syscall layer, the assembler, maps,
 * programs, links, the ring buffer reader and bpffs helpers. It knows nothing
 * of clusters or services. See docs/datapath-bpf.md.
 */
export * from './asm/index.js';
export * from './bpffs.js';
export * from './codec.js';
export * from './errors.js';
export * from './features.js';
export { FD, liveFds, openFdCount, type LiveFd } from './fd.js';
export * from './link.js';
export * from './map.js';
export * from './netns.js';
export * from './program.js';
export * from './query.js';
export * from './ringbuf.js';
export * from './tcx.js';
export * from './types.js';
export {
  Cmd,
  SYS_BPF,
  BPF_ATTR_SIZE,
  bpf,
  bpfAddr,
  stableBuffer,
  addressOf,
  ifNameToIndex,
} from './syscall.js';

/**
 * bpf-maps: the cost of map operations and program loads from JS.
 *   npm run bench -- bpf-maps
 * Needs root. Figures: single_update_us (median per update through BpfMap.update,
 * the preallocated fast path), batch_update_per_s / batch_lookup_per_s (100k
 * entries, with codecs), load_4k_insns_ms; plus raw variants for reference.
 */
import koffi from 'koffi';
import { loadavg } from 'node:os';
import { median, report, type Figure } from '../lib/report.js';
import { asm, R0 } from '../../src/datapath/bpf/asm/index.js';
import { u32 } from '../../src/datapath/bpf/codec.js';
import { newMap } from '../../src/datapath/bpf/map.js';
import { loadProgram } from '../../src/datapath/bpf/program.js';
import { MapType, ProgramType } from '../../src/datapath/bpf/types.js';

if (process.getuid?.() !== 0) {
  console.error('bpf-maps needs root (bpf(2))');
  process.exit(2);
}

const N = 100_000;
const now = () => Number(process.hrtime.bigint()) / 1e6; // ms

function singleUpdate(): { update: number; lookup: number } {
  const m = newMap({ name: 'bench_one', type: MapType.Hash, maxEntries: 1024, key: u32, value: u32 });
  try {
    const ROUNDS = 40;
    const PER = 2000;
    const up: number[] = [];
    const lk: number[] = [];
    for (let i = 0; i < 20000; i++) m.update(i & 1023, i); // warm-up (JIT, all keys present)
    for (let r = 0; r < ROUNDS; r++) {
      let t = now();
      for (let i = 0; i < PER; i++) m.update(i & 1023, i);
      up.push(((now() - t) * 1000) / PER);
      t = now();
      for (let i = 0; i < PER; i++) m.lookup(i & 1023);
      lk.push(((now() - t) * 1000) / PER);
    }
    return { update: median(up), lookup: median(lk) };
  } finally {
    m.close();
  }
}

function batch(): { update: number; updateRaw: number; lookup: number; lookupRaw: number } {
  const m = newMap({ name: 'bench_batch', type: MapType.Hash, maxEntries: N, key: u32, value: u32 });
  try {
    const keys = Array.from({ length: N }, (_, i) => i);
    const values = keys.map((k) => k * 3);
    const kb = Buffer.alloc(N * 4);
    const vb = Buffer.alloc(N * 4);
    keys.forEach((k, i) => (kb.writeUInt32LE(k, i * 4), vb.writeUInt32LE(values[i]!, i * 4)));
    const up: number[] = [];
    const upRaw: number[] = [];
    const lk: number[] = [];
    const lkRaw: number[] = [];
    for (let w = 0; w < 3; w++) m.batchUpdate(keys, values); // warm-up (JIT)
    for (let r = 0; r < 5; r++) {
      // Interleave the variants so machine noise hits them alike.
      let t = now();
      m.batchUpdate(keys, values);
      up.push(now() - t);
      t = now();
      m.batchUpdateRaw(kb, vb, N);
      upRaw.push(now() - t);
      t = now();
      const all = m.batchLookup({ batchSize: 8192 });
      lk.push(now() - t);
      if (all.length !== N) throw new Error(`batch lookup returned ${all.length} entries, expected ${N}`);
      t = now();
      const n = m.batchLookupRaw(() => {}, { batchSize: 8192 });
      lkRaw.push(now() - t);
      if (n !== N) throw new Error(`raw batch lookup returned ${n} entries`);
    }
    const perS = (ms: number) => (N / ms) * 1000;
    return { update: perS(median(up)), updateRaw: perS(median(upRaw)), lookup: perS(median(lk)), lookupRaw: perS(median(lkRaw)) };
  } finally {
    m.close();
  }
}

function load4k(): number {
  const insns = [asm.mov.imm(R0, 0), ...Array.from({ length: 4094 }, (_, i) => asm.add.imm(R0, i & 7)), asm.exit()];
  const times: number[] = [];
  for (let r = 0; r < 7; r++) {
    const t = now();
    const p = loadProgram({ name: 'bench4k', type: ProgramType.SocketFilter, instructions: insns });
    times.push(now() - t);
    if (p.instructionCount !== 4096) throw new Error('expected 4096 instructions');
    p.close();
  }
  return median(times);
}

/** The floor on this machine right now: one trivial syscall through koffi (getpid). */
function syscallFloor(): number {
  const getpid = koffi.load('libc.so.6').func('int getpid()');
  const xs: number[] = [];
  for (let r = 0; r < 20; r++) {
    const t = now();
    for (let i = 0; i < 5000; i++) getpid();
    xs.push(((now() - t) * 1000) / 5000);
  }
  return median(xs);
}

const load = loadavg()[0]!;
const floor = syscallFloor();
const s = singleUpdate();
const b = batch();
const l = load4k();
const figures: Figure[] = [
  { name: 'single_update_us', value: s.update, unit: 'us', note: 'median; BpfMap.update (u32->u32 hash, codecs, preallocated attr)' },
  { name: 'single_lookup_us', value: s.lookup, unit: 'us', note: 'median; BpfMap.lookup' },
  { name: 'batch_update_per_s', value: b.update, unit: 'entries/s', note: `${N} entries, BpfMap.batchUpdate with codecs` },
  { name: 'batch_update_raw_per_s', value: b.updateRaw, unit: 'entries/s', note: 'batchUpdateRaw, pre-encoded buffers' },
  { name: 'batch_lookup_per_s', value: b.lookup, unit: 'entries/s', note: `${N} entries decoded, batch size 8192` },
  { name: 'batch_lookup_raw_per_s', value: b.lookupRaw, unit: 'entries/s', note: 'batchLookupRaw, no decoding' },
  { name: 'load_4k_insns_ms', value: l, unit: 'ms', note: 'median of 7 loads of a 4096-instruction program' },
  { name: 'koffi_getpid_us', value: floor, unit: 'us', note: 'calibration: a trivial syscall through koffi on this machine now' },
  { name: 'loadavg_1m', value: load, unit: '', note: 'machine load when the run started (2 vCPUs shared)' },
];
report('bpf-maps', figures);

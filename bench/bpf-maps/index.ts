/**
 * bpf-maps: the cost of map operations and program loads from JS.
 *   npm run bench -- bpf-maps
 * Needs root. Figures: single_update_us (median per update through BpfMap.update,
 * the preallocated fast path), batch_update_per_s / batch_lookup_per_s (100k
 * entries into a hash map, with codecs), load_4k_insns_ms; plus raw variants.
 *
 * The machine is a shared 2-vCPU VM: wall-clock figures move with the load
 * (recorded as loadavg_1m, with koffi_getpid_us as the syscall floor). Each
 * wall figure has a `_cpu` twin measured in process CPU time (user + system),
 * which is what the operation costs when the process is not descheduled.
 */
import koffi from 'koffi';
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
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

/** Wall and CPU time of fn, in ms. */
function timed(fn: () => void): { wall: number; cpu: number } {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  fn();
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1000 };
}

const NATIVE_FLOOR = fileURLToPath(new URL('./native-floor.pl', import.meta.url));
let nativeMissing = '';

/** One round of `per` updates by perl's syscall() (no Node.js, no koffi), in us per update. */
function nativeRound(per: number): number | undefined {
  if (nativeMissing) return undefined;
  const r = spawnSync('perl', [NATIVE_FLOOR, '1', String(per)], { encoding: 'utf8' });
  const us = Number(r.stdout?.trim());
  if (r.status !== 0 || !Number.isFinite(us)) {
    nativeMissing = (r.error?.message ?? r.stderr?.trim()) || `exit ${r.status}`;
    console.error(`native floor not measured (perl): ${nativeMissing}`);
    return undefined;
  }
  return us;
}

function singleOps() {
  const m = newMap({
    name: 'bench_one',
    type: MapType.Hash,
    maxEntries: 1024,
    key: u32,
    value: u32,
  });
  try {
    const ROUNDS = 40;
    const PER = 2000;
    const up = { wall: [] as number[], cpu: [] as number[] };
    const lk = { wall: [] as number[], cpu: [] as number[] };
    const native: number[] = [];
    const ratio: number[] = [];
    for (let i = 0; i < 20000; i++) m.update(i & 1023, i); // warm-up (JIT; all keys present)
    for (let r = 0; r < ROUNDS; r++) {
      const a = timed(() => {
        for (let i = 0; i < PER; i++) m.update(i & 1023, i);
      });
      up.wall.push((a.wall * 1000) / PER);
      up.cpu.push((a.cpu * 1000) / PER);
      // The same round without Node.js: the kernel's floor, interleaved so noise hits both.
      const n = nativeRound(PER);
      if (n !== undefined) {
        native.push(n);
        ratio.push((a.wall * 1000) / PER / n);
      }
      const b = timed(() => {
        for (let i = 0; i < PER; i++) m.lookup(i & 1023);
      });
      lk.wall.push((b.wall * 1000) / PER);
      lk.cpu.push((b.cpu * 1000) / PER);
    }
    return {
      update: median(up.wall),
      updateCpu: median(up.cpu),
      lookup: median(lk.wall),
      lookupCpu: median(lk.cpu),
      native: native.length ? median(native) : NaN,
      vsNative: ratio.length ? median(ratio) : NaN,
    };
  } finally {
    m.close();
  }
}

function batchOps() {
  const m = newMap({
    name: 'bench_batch',
    type: MapType.Hash,
    maxEntries: N,
    key: u32,
    value: u32,
  });
  try {
    const keys = Array.from({ length: N }, (_, i) => i);
    const values = keys.map((k) => k * 3);
    const kb = Buffer.alloc(N * 4);
    const vb = Buffer.alloc(N * 4);
    keys.forEach((k, i) => (kb.writeUInt32LE(k, i * 4), vb.writeUInt32LE(values[i]!, i * 4)));
    const empty = () => m.batchLookupRaw(() => {}, { andDelete: true, batchSize: 8192 });
    for (let w = 0; w < 3; w++) {
      m.batchUpdate(keys, values); // warm-up (JIT)
      m.batchLookup({ batchSize: 8192 });
      empty();
    }
    const s = {
      up: [] as number[][],
      upRaw: [] as number[][],
      lk: [] as number[][],
      lkRaw: [] as number[][],
    };
    for (let r = 0; r < 5; r++) {
      // Interleave the variants so machine noise hits them alike; each update fills an empty map.
      const a = timed(() => m.batchUpdate(keys, values));
      let all: unknown[] = [];
      const c = timed(() => (all = m.batchLookup({ batchSize: 8192 })));
      if (all.length !== N)
        throw new Error(`batch lookup returned ${all.length} entries, expected ${N}`);
      let n = 0;
      const d = timed(() => (n = m.batchLookupRaw(() => {}, { batchSize: 8192 })));
      if (n !== N) throw new Error(`raw batch lookup returned ${n} entries`);
      empty();
      const b = timed(() => m.batchUpdateRaw(kb, vb, N));
      empty();
      s.up.push([a.wall, a.cpu]);
      s.upRaw.push([b.wall, b.cpu]);
      s.lk.push([c.wall, c.cpu]);
      s.lkRaw.push([d.wall, d.cpu]);
    }
    const perS = (xs: number[][], i: number) => (N / median(xs.map((x) => x[i]!))) * 1000;
    return {
      update: perS(s.up, 0),
      updateCpu: perS(s.up, 1),
      updateRaw: perS(s.upRaw, 0),
      lookup: perS(s.lk, 0),
      lookupCpu: perS(s.lk, 1),
      lookupRaw: perS(s.lkRaw, 0),
    };
  } finally {
    m.close();
  }
}

function load4k(): { wall: number; cpu: number } {
  const insns = [
    asm.mov.imm(R0, 0),
    ...Array.from({ length: 4094 }, (_, i) => asm.add.imm(R0, i & 7)),
    asm.exit(),
  ];
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < 7; r++) {
    const t = timed(() => {
      const p = loadProgram({
        name: 'bench4k',
        type: ProgramType.SocketFilter,
        instructions: insns,
      });
      if (p.instructionCount !== 4096) throw new Error('expected 4096 instructions');
      p.close();
    });
    wall.push(t.wall);
    cpu.push(t.cpu);
  }
  return { wall: median(wall), cpu: median(cpu) };
}

/** The floor on this machine right now: one trivial syscall through koffi (getpid). */
function syscallFloor(): number {
  const getpid = koffi.load('libc.so.6').func('int getpid()');
  const xs: number[] = [];
  for (let r = 0; r < 20; r++) {
    const t = timed(() => {
      for (let i = 0; i < 5000; i++) getpid();
    });
    xs.push((t.wall * 1000) / 5000);
  }
  return median(xs);
}

const load = loadavg()[0]!;
const floor = syscallFloor();
const s = singleOps();
const b = batchOps();
const l = load4k();
const figures: Figure[] = [
  {
    name: 'single_update_us',
    value: s.update,
    unit: 'us',
    note: 'median wall; BpfMap.update (u32->u32 hash, codecs, preallocated attr)',
  },
  { name: 'single_update_cpu_us', value: s.updateCpu, unit: 'us', note: 'same, process CPU time' },
  {
    name: 'native_update_us',
    value: s.native,
    unit: 'us',
    note: 'calibration: the same updates by perl syscall(), no Node.js (kernel floor)',
  },
  {
    name: 'single_update_vs_native',
    value: s.vsNative,
    unit: 'x',
    note: 'median per-round ratio, BpfMap.update / native (rounds interleaved)',
  },
  { name: 'single_lookup_us', value: s.lookup, unit: 'us', note: 'median wall; BpfMap.lookup' },
  { name: 'single_lookup_cpu_us', value: s.lookupCpu, unit: 'us', note: 'same, process CPU time' },
  {
    name: 'batch_update_per_s',
    value: b.update,
    unit: 'entries/s',
    note: `${N} entries into an empty hash, batchUpdate with codecs`,
  },
  {
    name: 'batch_update_cpu_per_s',
    value: b.updateCpu,
    unit: 'entries/s',
    note: 'same, process CPU time',
  },
  {
    name: 'batch_update_raw_per_s',
    value: b.updateRaw,
    unit: 'entries/s',
    note: 'batchUpdateRaw, pre-encoded buffers (wall)',
  },
  {
    name: 'batch_lookup_per_s',
    value: b.lookup,
    unit: 'entries/s',
    note: `${N} entries decoded, batch size 8192 (wall)`,
  },
  {
    name: 'batch_lookup_cpu_per_s',
    value: b.lookupCpu,
    unit: 'entries/s',
    note: 'same, process CPU time',
  },
  {
    name: 'batch_lookup_raw_per_s',
    value: b.lookupRaw,
    unit: 'entries/s',
    note: 'batchLookupRaw, no decoding (wall)',
  },
  {
    name: 'load_4k_insns_ms',
    value: l.wall,
    unit: 'ms',
    note: 'median wall of 7 loads of a 4096-instruction program',
  },
  { name: 'load_4k_insns_cpu_ms', value: l.cpu, unit: 'ms', note: 'same, process CPU time' },
  {
    name: 'koffi_getpid_us',
    value: floor,
    unit: 'us',
    note: 'calibration: a trivial syscall through koffi, wall',
  },
  {
    name: 'loadavg_1m',
    value: load,
    unit: '',
    note: 'machine load when the run started (2 vCPUs, shared)',
  },
];
report('bpf-maps', figures);

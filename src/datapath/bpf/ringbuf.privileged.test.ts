import assert from 'node:assert/strict';
import { privilegedTest } from '../../../test/helpers/privileged.js';
import { asm, Helper, R1, R2, R3, R4, R10 } from './asm/index.js';
import { SpecError } from './errors.js';
import { liveFds } from './fd.js';
import { newMap } from './map.js';
import { loadProgram } from './program.js';
import { openRingBuffer } from './ringbuf.js';
import { MapType, ProgramType } from './types.js';

privilegedTest(
  'privileged: ring buffer records stay whole and in order across many wrap-arounds',
  async () => {
    const before = liveFds().length;
    const rb = newMap({ name: 'wrap', type: MapType.Ringbuf, maxEntries: 4096 });
    // Emits a 20-byte record whose first u32 is the packet length (so each record is identifiable).
    const prog = loadProgram({
      name: 'emit',
      type: ProgramType.SocketFilter,
      instructions: [
        asm.ldxw(R2, R1, 0),
        asm.stxdw(R10, -24, R2),
        asm.stxdw(R10, -16, R2),
        asm.stxdw(R10, -8, R2),
        asm.loadMapPtr(R1, rb),
        asm.mov.reg(R2, R10),
        asm.add.imm(R2, -24),
        asm.mov.imm(R3, 20),
        asm.mov.imm(R4, 0),
        asm.call(Helper.RingbufOutput),
        asm.retImm(0),
      ],
    });
    const reader = openRingBuffer(rb);
    try {
      await reader.ready();
      // 32 bytes per record in a 4 KiB ring: 40 rounds of 100 wrap it ~30 times.
      for (let round = 0; round < 40; round++) {
        for (let i = 0; i < 100; i++)
          prog.testRun({ data: Buffer.alloc(14 + ((round * 100 + i) % 1000) + 1) });
        for (let i = 0; i < 100; i++) {
          const rec = await reader.read();
          assert.ok(rec);
          assert.equal(rec.length, 20);
          assert.equal(rec.readUInt32LE(0), ((round * 100 + i) % 1000) + 1);
        }
      }
    } finally {
      await reader.close();
      prog.close();
      rb.close();
    }
    assert.equal(liveFds().length, before);
  },
);

privilegedTest(
  'privileged: with batchDelayMs, records written while the reader waits come in one batch, whole and in order',
  async () => {
    const rb = newMap({ name: 'batch', type: MapType.Ringbuf, maxEntries: 1 << 16 });
    const prog = loadProgram({
      name: 'emit',
      type: ProgramType.SocketFilter,
      instructions: [
        asm.ldxw(R2, R1, 0),
        asm.stxdw(R10, -8, R2),
        asm.loadMapPtr(R1, rb),
        asm.mov.reg(R2, R10),
        asm.add.imm(R2, -8),
        asm.mov.imm(R3, 8),
        asm.mov.imm(R4, 0),
        asm.call(Helper.RingbufOutput),
        asm.retImm(0),
      ],
    });
    const reader = openRingBuffer(rb, { batchDelayMs: 500 });
    try {
      await reader.ready();
      prog.testRun({ data: Buffer.alloc(15) }); // wakes the reader: a batch of one
      assert.equal((await reader.read())?.readUInt32LE(0), 1);
      // written 1 ms apart while the worker waits out its 500 ms: no wake-ups, one
      // batch (without the delay the worker hands over about one batch per record)
      const before = reader.batches;
      for (let i = 2; i <= 51; i++) {
        prog.testRun({ data: Buffer.alloc(14 + i) });
        await new Promise((r) => setTimeout(r, 1));
      }
      for (let i = 2; i <= 51; i++) assert.equal((await reader.read())?.readUInt32LE(0), i);
      assert.ok(reader.batches - before <= 2, `${reader.batches - before} batches for 50 records`);
    } finally {
      await reader.close();
      prog.close();
      rb.close();
    }
  },
);

privilegedTest(
  'privileged: closing an idle ring buffer reader stops its worker promptly',
  async () => {
    const rb = newMap({ name: 'idle', type: MapType.Ringbuf, maxEntries: 4096 });
    const reader = openRingBuffer(rb);
    try {
      await reader.ready();
      const pending = reader.read();
      const t0 = Date.now();
      await reader.close();
      assert.equal(await pending, undefined);
      assert.ok(Date.now() - t0 < 1000, 'eventfd wakes the worker');
      await reader.close(); // idempotent
    } finally {
      rb.close();
    }
    const notRing = newMap({
      name: 'h',
      type: MapType.Hash,
      maxEntries: 1,
      keySize: 4,
      valueSize: 4,
    });
    try {
      assert.throws(() => openRingBuffer(notRing), SpecError);
    } finally {
      notRing.close();
    }
  },
);

import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { privilegedTest } from '../../../test/helpers/privileged.js';
import { BPFFS_ROOT } from '../../util/paths.js';
import { asm, formatProgram, R0, R1, R2 } from './asm/index.js';
import { u32, u64 } from './codec.js';
import { AsmError, VerifierError } from './errors.js';
import { liveFds } from './fd.js';
import { newMap } from './map.js';
import { loadProgram, openPinnedProgram } from './program.js';
import { dropUdpPort, udpFrame, uniqueName } from './testing.js';
import { MapType, ProgramType, TcAction } from './types.js';

privilegedTest('privileged: a SchedCls program loads and test-runs on crafted packets', () => {
  const before = liveFds().length;
  const counter = newMap({
    name: 'drops',
    type: MapType.Array,
    maxEntries: 1,
    key: u32,
    value: u64,
  });
  const prog = loadProgram({
    name: 'drop_udp',
    type: ProgramType.SchedCls,
    instructions: dropUdpPort(9999, counter),
  });
  try {
    assert.equal(prog.testRun({ data: udpFrame(9999) }).retval, TcAction.Drop);
    assert.equal(prog.testRun({ data: udpFrame(53) }).retval, TcAction.Pass);
    const r = prog.testRun({ data: udpFrame(9999), repeat: 10 });
    assert.equal(r.retval, TcAction.Drop);
    assert.equal(r.dataOut.length, udpFrame(9999).length);
    assert.equal(counter.lookup(0), 11n);
    const info = prog.info();
    assert.equal(info.name, 'drop_udp');
    assert.equal(info.type, ProgramType.SchedCls);
    assert.match(info.tag, /^[0-9a-f]{16}$/);
    const xlated = formatProgram(prog.translatedInstructions());
    assert.match(xlated, /r6 = r1/);
    assert.match(xlated, /exit/);
  } finally {
    prog.close();
    counter.close();
  }
  assert.equal(liveFds().length, before);
});

privilegedTest(
  'privileged: a verifier rejection raises VerifierError with the log and the program',
  () => {
    const bad = [asm.mov.reg(R0, R2), asm.exit()]; // R2 is uninitialised
    assert.throws(
      () => loadProgram({ name: 'bad', type: ProgramType.SocketFilter, instructions: bad }),
      (e: unknown) =>
        e instanceof VerifierError &&
        /R2 !read_ok/.test(e.log) &&
        e.program.includes('0: (bf) r0 = r2') &&
        e.errnoName === 'EACCES' &&
        /R2 !read_ok/.test(e.message),
    );
    // A store the ctx rejects: bpf_sock_addr.family (offset 28) is read-only.
    assert.throws(
      () =>
        loadProgram({
          name: 'ro',
          type: ProgramType.CgroupSockAddr,
          expectedAttachType: 10,
          instructions: [asm.stw(R1, 28, 2), asm.retImm(1)],
        }),
      (e: unknown) => e instanceof VerifierError && /invalid bpf_context access/.test(e.log),
    );
    assert.throws(
      () =>
        loadProgram({
          name: 'x',
          type: ProgramType.SocketFilter,
          instructions: [asm.ja('nowhere'), asm.exit()],
        }),
      AsmError,
    );
  },
);

privilegedTest('privileged: a 4096-instruction program loads', () => {
  const body = Array.from({ length: 4094 }, (_, i) => asm.add.imm(R0, i & 7));
  const prog = loadProgram({
    name: 'big',
    type: ProgramType.SocketFilter,
    instructions: [asm.mov.imm(R0, 0), ...body, asm.exit()],
  });
  try {
    assert.equal(prog.instructionCount, 4096);
    assert.equal(prog.info().xlatedLen, 4096 * 8);
    const expected = body.reduce((s, _, i) => s + (i & 7), 0);
    assert.equal(prog.testRun({ data: Buffer.alloc(64) }).retval, expected);
  } finally {
    prog.close();
  }
});

privilegedTest('privileged: a program pinned and reopened keeps running', () => {
  const dir = join(BPFFS_ROOT, uniqueName('progpin'));
  mkdirSync(dir, { recursive: true });
  const prog = loadProgram({
    name: 'seven',
    type: ProgramType.SocketFilter,
    instructions: asm.retImm(7),
  });
  try {
    prog.pin(join(dir, 'seven'));
    prog.close();
    const again = openPinnedProgram(join(dir, 'seven'));
    assert.equal(again.name, 'seven');
    assert.equal(again.testRun({ data: Buffer.alloc(64) }).retval, 7);
    again.unpin();
    again.close();
  } finally {
    prog.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

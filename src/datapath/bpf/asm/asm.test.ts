import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AsmError } from '../errors.js';
import { asm } from './builders.js';
import { decodeInstructions } from './decode.js';
import { encode, resolve, slotCount } from './encode.js';
import { formatProgram } from './format.js';
import { Helper, helperName } from './helpers.js';
import { R0, R1, R2, R3, R6, R10 } from './opcodes.js';

const hex = (insns: Parameters<typeof encode>[0]) =>
  encode(insns, { allowUnboundMaps: true }).toString('hex');

test('mov r0, 1 and exit encode to the known bytes', () => {
  assert.equal(hex([asm.mov.imm(R0, 1)]), 'b700000001000000');
  assert.equal(hex([asm.exit()]), '9500000000000000');
  assert.equal(hex([asm.ret()]), '9500000000000000');
  assert.equal(hex(asm.retImm(1)), 'b700000001000000' + '9500000000000000');
});

test('ALU encodings: 64/32-bit, immediate/register, negative immediates', () => {
  assert.equal(hex([asm.mov64.reg(R6, R1)]), 'bf16000000000000');
  assert.equal(hex([asm.mov.reg(R2, R10)]), 'bfa2000000000000');
  assert.equal(hex([asm.add.imm(R2, -8)]), '0702000' + '0f8ffffff');
  assert.equal(hex([asm.add64.imm(R2, -8)]), '07020000f8ffffff');
  assert.equal(hex([asm.add32.imm(R1, 5)]), '0401000005000000');
  assert.equal(hex([asm.mov32.imm(R0, 2)]), 'b400000002000000');
  assert.equal(hex([asm.mov.imm32(R0, 2)]), 'b400000002000000');
  assert.equal(hex([asm.sub.reg(R1, R2)]), '1f21000000000000');
  assert.equal(hex([asm.and.imm(R3, 0xffff)]), '57030000ffff0000');
  assert.equal(hex([asm.lsh.imm(R1, 32)]), '6701000020000000');
  assert.equal(hex([asm.rsh32.reg(R1, R2)]), '7c21000000000000');
  assert.equal(hex([asm.xor.reg(R0, R0)]), 'af00000000000000');
  assert.equal(hex([asm.arsh.imm(R1, 1)]), 'c701000001000000');
  assert.equal(hex([asm.neg(R1)]), '8701000000000000');
  assert.equal(hex([asm.mov.imm(R0, 0xffffffff)]), 'b7000000ffffffff');
});

test('byte swaps', () => {
  assert.equal(hex([asm.be16(R1)]), 'dc01000010000000');
  assert.equal(hex([asm.be32(R1)]), 'dc01000020000000');
  assert.equal(hex([asm.be64(R1)]), 'dc01000040000000');
  assert.equal(hex([asm.le16(R1)]), 'd401000010000000');
  assert.equal(hex([asm.bswap32(R2)]), 'd702000020000000');
});

test('loads, stores, immediate stores and atomic add', () => {
  assert.equal(hex([asm.ldxw(R0, R1, 4)]), '6110040000000000');
  assert.equal(hex([asm.ldxh(R0, R1, 2)]), '6910020000000000');
  assert.equal(hex([asm.ldxb(R0, R1, 1)]), '7110010000000000');
  assert.equal(hex([asm.ldxdw(R0, R1, -8)]), '7910f8ff00000000');
  assert.equal(hex([asm.stxw(R10, -4, R1)]), '631afcff00000000');
  assert.equal(hex([asm.stxdw(R10, -8, R1)]), '7b1af8ff00000000');
  assert.equal(hex([asm.stxh(R10, -2, R1)]), '6b1afeff00000000');
  assert.equal(hex([asm.stxb(R10, -1, R1)]), '731affff00000000');
  assert.equal(hex([asm.stw(R1, 4, 0x0100007f)]), '620104007f000001');
  assert.equal(hex([asm.stdw(R10, -8, 0)]), '7a0af8ff00000000');
  assert.equal(hex([asm.atomicAdd(R0, 0, R1, 'dw')]), 'db10000000000000');
  assert.equal(hex([asm.atomicAdd(R0, 0, R1, 'w')]), 'c310000000000000');
  assert.equal(hex([asm.atomicAdd(R0, 8, R1, 'dw', { fetch: true })]), 'db10080001000000');
  assert.equal(hex([asm.loadMem(R0, R1, 4, 'w')]), '6110040000000000');
});

test('64-bit immediate loads take two slots; map references carry the fd in src_reg=1 / 2', () => {
  assert.equal(
    hex([asm.ldImm64(R1, 0x1122334455667788n)]),
    '1801000088776655' + '0000000044332211',
  );
  const map = { fd: 7, name: 'm' };
  assert.equal(hex([asm.loadMapPtr(R1, map)]), '1811000007000000' + '0000000000000000');
  assert.equal(hex([asm.loadMapValue(R2, map, 16)]), '1822000007000000' + '0000000010000000');
  assert.equal(
    encode([asm.loadMapPtr(R1, 'byname')], { maps: { byname: { fd: 9 } } }).toString('hex'),
    '1811000009000000' + '0000000000000000',
  );
  assert.throws(
    () => encode([asm.loadMapPtr(R1, 'missing')]),
    (e: unknown) => e instanceof AsmError && /map "missing" is not bound/.test(e.message),
  );
  assert.equal(slotCount([asm.ldImm64(R1, 1), asm.exit()]), 3);
});

test('helper calls by name', () => {
  assert.equal(hex([asm.call(Helper.MapLookupElem)]), '8500000001000000');
  assert.equal(hex([asm.call(Helper.RingbufOutput)]), '8500000082000000');
  assert.equal(Helper.KtimeGetNs, 5);
  assert.equal(Helper.Redirect, 23);
  assert.equal(Helper.GetSocketCookie, 46);
  assert.equal(helperName(1), 'MapLookupElem');
});

test('jumps resolve labels forward and backward, counting 64-bit loads as two slots', () => {
  const prog = [
    asm.label('top'),
    asm.jeq.imm(R1, 0, 'out'), // 0 -> out at 4: off 3
    asm.ldImm64(R2, 1), // 1-2
    asm.ja('top'), // 3 -> 0: off -4
    asm.label('out'),
    asm.exit(), // 4
  ];
  assert.equal(
    hex(prog),
    '1501030000000000' +
      '1802000001000000' +
      '0000000000000000' +
      '0500fcff00000000' +
      '9500000000000000',
  );
  const r = resolve(prog);
  assert.deepEqual(
    r.map((x) => [x.index, x.labels]),
    [
      [0, ['top']],
      [1, []],
      [3, []],
      [4, ['out']],
    ],
  );
  assert.equal(
    hex([asm.jne.reg(R1, R2, 'x'), asm.label('x'), asm.exit()]),
    '5d21000000000000' + '9500000000000000',
  );
  assert.equal(
    hex([asm.jgt.imm32(R1, 5, 'x'), asm.label('x'), asm.exit()]),
    '2601000005000000' + '9500000000000000',
  );
  assert.equal(
    hex([asm.callLabel('fn'), asm.exit(), asm.label('fn'), asm.retImm(0)]),
    '8510000001000000' + '9500000000000000' + 'b700000000000000' + '9500000000000000',
  );
});

test('unknown, duplicate and dangling labels, and out-of-range jumps are errors', () => {
  assert.throws(
    () => encode([asm.ja('nowhere'), asm.exit()]),
    (e: unknown) => e instanceof AsmError && /unknown label "nowhere"/.test(e.message),
  );
  assert.throws(
    () => encode([asm.label('a'), asm.exit(), asm.label('a'), asm.exit()]),
    (e: unknown) => e instanceof AsmError && /duplicate label "a"/.test(e.message),
  );
  assert.throws(
    () => encode([asm.exit(), asm.label('end')]),
    (e: unknown) => e instanceof AsmError && /at the end of the program/.test(e.message),
  );
  const far = [
    asm.ja('end'),
    ...Array.from({ length: 40000 }, () => asm.mov.imm(R0, 0)),
    asm.label('end'),
    asm.exit(),
  ];
  assert.throws(
    () => encode(far),
    (e: unknown) => e instanceof AsmError && /beyond the 16-bit range/.test(e.message),
  );
  const ok = [
    asm.ja('end'),
    ...Array.from({ length: 32767 }, () => asm.mov.imm(R0, 0)),
    asm.label('end'),
    asm.exit(),
  ];
  assert.equal(encode(ok).readInt16LE(2), 32767);
  assert.throws(() => asm.label(''), AsmError);
});

test('bad operands fail at build time', () => {
  assert.throws(() => asm.mov.imm(11, 0), /register r11 does not exist/);
  assert.throws(() => asm.mov.imm(R0, 2 ** 33), /does not fit in 32 bits/);
  assert.throws(() => asm.ldxw(R0, R1, 40000), /does not fit in 16 bits/);
});

test('the formatter prints indexes, opcodes, labels and map names', () => {
  const text = formatProgram([
    asm.mov.reg(R6, R1),
    asm.ldxw(R2, R6, 4),
    asm.loadMapPtr(R1, { fd: 3, name: 'svc' }),
    asm.jne.imm(R2, 0x0302010a, 'out'),
    asm.stw(R6, 24, 0x5000),
    asm.call(Helper.MapLookupElem),
    asm.atomicAdd(R0, 0, R1),
    asm.be16(R2),
    asm.label('out'),
    asm.retImm(1),
  ]);
  assert.equal(
    text,
    [
      '   0: (bf) r6 = r1',
      '   1: (61) r2 = *(u32 *)(r6 +4)',
      '   2: (18) r1 = map[svc] ll',
      '   4: (55) if r2 != 0x302010a goto pc+4 <out>',
      '   5: (62) *(u32 *)(r6 +24) = 20480',
      '   6: (85) call MapLookupElem#1',
      '   7: (db) lock *(u64 *)(r0 +0) += r1',
      '   8: (dc) r2 = be16 r2',
      'out:',
      '   9: (b7) r0 = 1',
      '  10: (95) exit',
    ].join('\n'),
  );
});

test('decoding kernel bytes round-trips through encode', () => {
  const map = { fd: 5, name: 'm' };
  const prog = [
    asm.mov.reg(R6, R1),
    asm.loadMapPtr(R1, map),
    asm.loadMapValue(R2, map, 8),
    asm.ldImm64(R3, 0xdeadbeef12345678n),
    asm.jeq.imm(R1, 0, 'x'),
    asm.stw(R10, -4, -1),
    asm.label('x'),
    asm.exit(),
  ];
  const bytes = encode(prog);
  const decoded = decodeInstructions(bytes);
  assert.equal(decoded.length, 7);
  assert.equal(encode(decoded).toString('hex'), bytes.toString('hex'));
  assert.match(formatProgram(decoded), /r1 = map\[fd5\] ll/);
  assert.match(formatProgram(decoded), /if r1 == 0x0 goto pc\+1/);
  assert.throws(() => decodeInstructions(Buffer.alloc(12)), AsmError);
  assert.throws(() => decodeInstructions(Buffer.from('1801000000000000', 'hex')), /no second slot/);
});

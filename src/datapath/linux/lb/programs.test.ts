import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encode, formatProgram } from '../../bpf/asm/index.js';
import { forwardProgram, HOOKS, reverseProgram } from './programs.js';

// Stand-in map references: encoding only reads `fd` into the ld_imm64.
const maps = {
  services: { fd: 101, name: 'lb4_services' },
  backends: { fd: 102, name: 'lb4_backends' },
  revnat: { fd: 103, name: 'lb4_revnat_sk' },
  maglev: { fd: 104, name: 'lb4_maglev' },
} as never;

test('lb programs: assemble, labels resolve, maps are referenced by fd', () => {
  const fwd = encode(forwardProgram(maps));
  const rev = encode(reverseProgram(maps));
  assert.ok(fwd.length / 8 < 200, `forward program is small (${fwd.length / 8} slots)`);
  assert.ok(rev.length / 8 < 40);
  const text = formatProgram(forwardProgram(maps));
  for (const l of ['pass:', 'refuse:', 'maglev:', 'backend:', 'allow:'])
    assert.match(text, new RegExp(l));
  // every map appears as a BPF_PSEUDO_MAP_FD load
  const fds = new Set<number>();
  for (let i = 0; i < fwd.length; i += 8)
    if (fwd[i] === 0x18 && fwd[i + 1]! >> 4 === 1) fds.add(fwd.readInt32LE(i + 4));
  assert.deepEqual([...fds].sort(), [101, 102, 103, 104]);
});

test('lb programs: the refuse path sets -ECONNREFUSED and returns 0; others return 1', () => {
  const text = formatProgram(forwardProgram(maps));
  assert.match(
    text,
    /refuse:\n\s+\d+: \(b7\) r1 = -111\n\s+\d+: \(85\) call SetRetval#187\n\s+\d+: \(b7\) r0 = 0\n\s+\d+: \(95\) exit/,
  );
  assert.match(text, /pass:\n\s+\d+: \(b7\) r0 = 1\n\s+\d+: \(95\) exit/);
  assert.match(
    formatProgram(reverseProgram(maps)),
    /out:\n\s+\d+: \(b7\) r0 = 1\n\s+\d+: \(95\) exit\s*$/,
  );
  assert.deepEqual(
    HOOKS.map((h) => h.name.length <= 15),
    [true, true, true, true],
  );
});

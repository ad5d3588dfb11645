import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TendrilError } from '../../util/errors.js';
import {
  BpfError,
  MapMismatchError,
  NotSupportedError,
  VerifierError,
  bpfError,
  commandName,
  errnoName,
  errnoNumber,
  hintFor,
} from './errors.js';
import { BPF_ATTR_SIZE, Cmd, bpf, stableBuffer } from './syscall.js';

test('errno numbers map to names and back', () => {
  assert.equal(errnoName(1), 'EPERM');
  assert.equal(errnoName(7), 'E2BIG');
  assert.equal(errnoName(13), 'EACCES');
  assert.equal(errnoName(524), 'ENOTSUPP');
  assert.equal(errnoName(9999), 'E9999');
  assert.equal(errnoNumber('ENOENT'), 2);
});

test('command numbers map to names', () => {
  assert.equal(commandName(Cmd.MapCreate), 'BPF_MAP_CREATE');
  assert.equal(commandName(Cmd.MapUpdateBatch), 'BPF_MAP_UPDATE_BATCH');
  assert.equal(commandName(Cmd.LinkCreate), 'BPF_LINK_CREATE');
  assert.equal(commandName(Cmd.LinkDetach), 'BPF_LINK_DETACH');
});

test('a bpf error names the command, errno, context and a hint', () => {
  const e = bpfError(Cmd.MapUpdateElem, 7, 'update map svc');
  assert.ok(e instanceof BpfError && e instanceof TendrilError);
  assert.equal(e.code, 'BPF_SYSCALL');
  assert.equal(e.command, 'BPF_MAP_UPDATE_ELEM');
  assert.equal(e.errnoName, 'E2BIG');
  assert.equal(e.message, 'update map svc: BPF_MAP_UPDATE_ELEM: E2BIG (Argument list too long)');
  assert.match(e.hint!, /map is full/);
  assert.match(hintFor(Cmd.MapCreate, 1)!, /root or CAP_BPF/);
  assert.match(hintFor(Cmd.ObjPin, 17)!, /already pinned/);
  assert.match(hintFor(Cmd.ObjGet, 2)!, /nothing is pinned/);
});

test('VerifierError carries the log and the program; NotSupportedError names feature and kernel', () => {
  const v = new VerifierError(
    'bad',
    13,
    '0: (95) exit\nR0 !read_ok\nprocessed 1 insns',
    '   0: (95) exit',
  );
  assert.ok(v instanceof BpfError);
  assert.equal(v.code, 'BPF_VERIFIER');
  assert.match(v.message, /load program "bad": the verifier rejected it: EACCES/);
  assert.match(v.message, /R0 !read_ok/);
  assert.equal(v.program, '   0: (95) exit');
  const n = new NotSupportedError('TCX attach');
  assert.equal(n.code, 'BPF_NOT_SUPPORTED');
  assert.match(n.message, /^TCX attach is not supported by kernel \S+/);
  const m = new MapMismatchError('/sys/fs/bpf/x', ['keySize 4 != 8']);
  assert.match(m.message, /does not match its spec: keySize 4 != 8/);
  assert.match(m.hint!, /rm \/sys\/fs\/bpf\/x/);
});

test('a real failing bpf(2) call becomes a BpfError naming the command (EBADF as root, EPERM otherwise)', () => {
  const attr = stableBuffer(BPF_ATTR_SIZE);
  attr.writeInt32LE(-1, 0); // map_fd = -1
  assert.throws(
    () => bpf(Cmd.MapLookupElem, attr, 'lookup in map nothing'),
    (e: unknown) =>
      e instanceof BpfError &&
      e.command === 'BPF_MAP_LOOKUP_ELEM' &&
      ['EBADF', 'EPERM'].includes(e.errnoName) &&
      e.message.startsWith('lookup in map nothing: BPF_MAP_LOOKUP_ELEM: ') &&
      e.hint !== undefined,
  );
});

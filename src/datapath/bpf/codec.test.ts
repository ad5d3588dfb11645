import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CodecError } from './errors.js';
import {
  array,
  be16,
  be32,
  bytes,
  i32,
  ipv4,
  ipv4ToU32,
  ipv6,
  lpmKey,
  mac,
  pad,
  struct,
  u16,
  u32,
  u64,
  u64n,
  u8,
} from './codec.js';

function enc<T>(c: { size: number; encode(v: T, b: Buffer, o: number): void }, v: T): string {
  const b = Buffer.alloc(c.size);
  c.encode(v, b, 0);
  return b.toString('hex');
}

test('scalars encode in host or network order', () => {
  assert.equal(enc(u8, 0xab), 'ab');
  assert.equal(enc(u16, 0x1234), '3412');
  assert.equal(enc(be16, 0x1234), '1234');
  assert.equal(enc(u32, 0x01020304), '04030201');
  assert.equal(enc(be32, 0x01020304), '01020304');
  assert.equal(enc(i32, -2), 'feffffff');
  assert.equal(enc(u64, 0x0102030405060708n), '0807060504030201');
  assert.equal(enc(u64n, 2 ** 40 + 5), '0500000000010000');
  assert.equal(u64n.decode(Buffer.from('0500000000010000', 'hex'), 0), 2 ** 40 + 5);
  assert.equal(enc(ipv4, '10.1.2.3'), '0a010203');
  assert.equal(ipv4.decode(Buffer.from('7f000001', 'hex'), 0), '127.0.0.1');
  assert.equal(ipv4ToU32('10.1.2.3'), 0x0302010a);
  assert.equal(enc(ipv6, 'fd00::1'), 'fd000000000000000000000000000001');
  assert.equal(ipv6.decode(Buffer.from('fd000000000000000000000000000001', 'hex'), 0), 'fd00::1');
  assert.equal(enc(mac, '02:00:00:aa:bb:cc'), '020000aabbcc');
  assert.equal(mac.decode(Buffer.from('020000aabbcc', 'hex'), 0), '02:00:00:aa:bb:cc');
  assert.equal(enc(array(u16, 3), [1, 2, 3]), '010002000300');
  assert.deepEqual(bytes(2).decode(Buffer.from('abcd', 'hex'), 0), Buffer.from('abcd', 'hex'));
});

test('out-of-range and malformed values are CodecErrors', () => {
  assert.throws(() => enc(u8, 256), CodecError);
  assert.throws(() => enc(u16, -1), CodecError);
  assert.throws(() => enc(u32, 1.5), CodecError);
  assert.throws(() => enc(be16, 70000), CodecError);
  assert.throws(() => enc(u64, 5 as unknown as bigint), CodecError);
  assert.throws(() => enc(ipv4, '10.1.2'), /not a dotted IPv4 address/);
  assert.throws(() => enc(ipv4, '10.1.2.300'), CodecError);
  assert.throws(() => enc(ipv6, 'fd00:::1'), CodecError);
  assert.throws(() => enc(bytes(4), Buffer.alloc(3)), /got 3 bytes, expected 4/);
});

test('struct places fields at fixed offsets, zeroes gaps, and round-trips', () => {
  const key = struct('lb4_key', 12, {
    ip: [0, ipv4],
    port: [4, be16],
    slot: [6, u16],
    proto: [8, u8],
  });
  assert.equal(key.size, 12);
  const b = Buffer.alloc(12, 0xff);
  key.encode({ ip: '10.96.0.10', port: 53, slot: 2, proto: 17 }, b, 0);
  assert.equal(b.toString('hex'), '0a60000a' + '0035' + '0200' + '11' + '000000');
  assert.deepEqual(key.decode(b, 0), { ip: '10.96.0.10', port: 53, slot: 2, proto: 17 });
  const withPad = struct('x', 8, { a: [0, u32], p: [4, pad(4)] });
  assert.deepEqual(withPad.decode(Buffer.alloc(8), 0), { a: 0 });
  assert.equal(enc(withPad, { a: 1 }), '0100000000000000');
});

test('struct layout errors are caught at definition, field errors name the field', () => {
  assert.throws(() => struct('s', 4, { a: [0, u32], b: [2, u16] }), /field b at 2 overlaps a/);
  assert.throws(() => struct('s', 4, { a: [2, u32] }), /ends at 6, beyond the size 4/);
  const s = struct('s', 8, { ip: [0, ipv4], port: [4, be16] });
  assert.throws(() => enc(s, { ip: '1.2.3.4' } as never), /field port is missing/);
  assert.throws(() => enc(s, { ip: '1.2.3.4', port: 1e6 }), /struct s\.port: be16/);
});

test('lpmKey is a host-order prefix length then the address', () => {
  const k = lpmKey(ipv4);
  assert.equal(k.size, 8);
  assert.equal(enc(k, { prefixLen: 24, addr: '10.244.1.0' }), '18000000' + '0af40100');
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  backendValue,
  maglevValue,
  MAGLEV_M,
  Off,
  revNatKey,
  revNatValue,
  serviceKey,
  serviceValue,
} from './maps.js';

test('lb maps: service key layout (vip be32, dport be16, proto, slot u16)', () => {
  assert.equal(serviceKey.size, Off.svcKey.size);
  const b = Buffer.alloc(12, 0xee);
  serviceKey.encode({ vip: '10.96.0.10', dport: 53, proto: 17, slot: 258 }, b, 0);
  assert.equal(b.subarray(Off.svcKey.vip, 4).toString('hex'), '0a60000a');
  assert.equal(b.readUInt16BE(Off.svcKey.dport), 53);
  assert.equal(b[Off.svcKey.proto], 17);
  assert.equal(b.readUInt16LE(Off.svcKey.slot), 258);
  assert.equal(b[7], 0, 'padding zeroed (the program hashes the whole key)');
  assert.equal(b.readUInt16LE(10), 0);
  assert.deepEqual(serviceKey.decode(b, 0), { vip: '10.96.0.10', dport: 53, proto: 17, slot: 258 });
});

test('lb maps: service value layout', () => {
  assert.equal(serviceValue.size, 12);
  const b = Buffer.alloc(12);
  serviceValue.encode({ backendId: 0x01020304, count: 3, revNat: 7, flags: 1 }, b, 0);
  assert.equal(b.readUInt32LE(Off.svcValue.backendId), 0x01020304);
  assert.equal(b.readUInt16LE(Off.svcValue.count), 3);
  assert.equal(b.readUInt16LE(Off.svcValue.revNat), 7);
  assert.equal(b[Off.svcValue.flags], 1);
});

test('lb maps: backend, reverse-NAT and maglev layouts', () => {
  assert.equal(backendValue.size, 12);
  const b = Buffer.alloc(12);
  backendValue.encode({ ip: '10.244.1.5', port: 8080, proto: 6, flags: 0, clusterId: 2 }, b, 0);
  assert.equal(b.subarray(Off.backend.ip, 4).toString('hex'), '0af40105');
  assert.equal(b.readUInt16BE(Off.backend.port), 8080);
  assert.equal(b.readUInt16LE(8), 2);

  assert.equal(revNatKey.size, Off.revNatKey.size);
  const k = Buffer.alloc(16);
  revNatKey.encode({ cookie: 0x1122334455667788n, ip: '10.244.1.5', port: 53 }, k, 0);
  assert.equal(k.readBigUInt64LE(Off.revNatKey.cookie), 0x1122334455667788n);
  assert.equal(k.subarray(Off.revNatKey.ip, 12).toString('hex'), '0af40105');
  assert.equal(k.readUInt16BE(Off.revNatKey.port), 53);

  assert.equal(revNatValue.size, Off.revNatValue.size);
  const v = Buffer.alloc(8);
  revNatValue.encode({ vip: '10.96.0.10', vport: 53, revNat: 9 }, v, 0);
  assert.equal(v.readUInt16BE(Off.revNatValue.vport), 53);
  assert.equal(v.readUInt16LE(Off.revNatValue.revNat), 9);

  assert.equal(maglevValue.size, 4 * MAGLEV_M);
});

test('lb maps: out-of-range values are refused before any syscall', () => {
  const b = Buffer.alloc(12);
  assert.throws(() =>
    serviceKey.encode({ vip: '10.0.0.1', dport: 70000, proto: 6, slot: 0 }, b, 0),
  );
  assert.throws(() => serviceKey.encode({ vip: 'nope', dport: 80, proto: 6, slot: 0 }, b, 0));
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ctKey, ctValue, DIR, Off, policyKey, policyPrefixLen, policyValue } from './maps.js';
import { prefixesOverlap, ruleIdOf } from './policy-datapath.js';

test('policy maps: policy key layout {prefixlen, identity, dir, proto, be16 dport}', () => {
  assert.equal(policyKey.size, Off.policyKey.size);
  const b = Buffer.alloc(12, 0xee);
  policyKey.encode(
    { prefixLen: 64, identity: 0x00020100, dir: DIR.egress, proto: 6, dport: 8080 },
    b,
    0,
  );
  assert.equal(b.readUInt32LE(Off.policyKey.prefixLen), 64);
  assert.equal(b.readUInt32LE(Off.policyKey.identity), 0x00020100);
  assert.equal(b[Off.policyKey.dir], 1);
  assert.equal(b[Off.policyKey.proto], 6);
  assert.equal(
    b.readUInt16BE(Off.policyKey.dport),
    8080,
    'network order: port prefixes match leading bits',
  );
  assert.equal(policyPrefixLen(0, 0), 40, 'every protocol: identity + dir');
  assert.equal(policyPrefixLen(6, 0), 48);
  assert.equal(policyPrefixLen(17, 16), 64);
});

test('policy maps: policy value, CT key and value layouts', () => {
  assert.equal(policyValue.size, Off.policyValue.size);
  const v = Buffer.alloc(8, 0xee);
  policyValue.encode({ flags: 1, ruleId: 0xdeadbeef }, v, 0);
  assert.equal(v[Off.policyValue.flags], 1);
  assert.equal(v.subarray(1, 4).toString('hex'), '000000');
  assert.equal(v.readUInt32LE(Off.policyValue.ruleId), 0xdeadbeef);

  assert.equal(ctKey.size, Off.ctKey.size);
  const k = Buffer.alloc(16, 0xee);
  ctKey.encode(
    { saddr: '10.0.0.1', daddr: '10.0.0.2', sport: 40000, dport: 80, proto: 6, dir: DIR.ingress },
    k,
    0,
  );
  assert.equal(k.subarray(Off.ctKey.saddr, 4).toString('hex'), '0a000001');
  assert.equal(k.subarray(Off.ctKey.daddr, 8).toString('hex'), '0a000002');
  assert.equal(k.readUInt16BE(Off.ctKey.sport), 40000);
  assert.equal(k.readUInt16BE(Off.ctKey.dport), 80);
  assert.equal(k[Off.ctKey.proto], 6);
  assert.equal(k[Off.ctKey.dir], 0);
  assert.equal(k.readUInt16LE(14), 0, 'padding zeroed (the program hashes the whole key)');
  assert.equal(ctValue.size, Off.ctValue.size);
});

test('policy maps: rule ids are stable hashes of the origin text', () => {
  assert.equal(
    ruleIdOf('CiliumNetworkPolicy default/x spec.ingress[0]'),
    ruleIdOf('CiliumNetworkPolicy default/x spec.ingress[0]'),
  );
  assert.notEqual(ruleIdOf('a'), ruleIdOf('b'));
});

test('prefixesOverlap: protocols and port prefixes', () => {
  const e = (protocol: number, port: number, bits: number) => ({ protocol, port, bits });
  assert.equal(prefixesOverlap(e(0, 0, 0), e(6, 80, 16)), true, 'every protocol');
  assert.equal(prefixesOverlap(e(6, 80, 16), e(17, 80, 16)), false, 'TCP vs UDP');
  assert.equal(prefixesOverlap(e(6, 80, 16), e(6, 81, 16)), false);
  assert.equal(prefixesOverlap(e(6, 80, 15), e(6, 81, 16)), true, '80-81 holds 81');
  assert.equal(prefixesOverlap(e(6, 0, 0), e(6, 8081, 16)), true, 'any TCP port');
  assert.equal(prefixesOverlap(e(6, 8192, 3), e(6, 80, 16)), false, '8192-16383 vs 80');
});

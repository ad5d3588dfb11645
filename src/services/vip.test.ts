import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CIDRAllocator } from './vip.js';

test('CIDRAllocator: stable per key, never network/broadcast/reserved, exhaustion and reuse', () => {
  const a = new CIDRAllocator('10.96.0.0/29', { reserved: ['10.96.0.1'] });
  assert.equal(a.cidr, '10.96.0.0/29');
  const got = new Set<string>();
  for (const k of ['a', 'b', 'c', 'd', 'e']) got.add(a.allocate(k));
  assert.equal(got.size, 5);
  for (const ip of ['10.96.0.0', '10.96.0.7', '10.96.0.1']) assert.ok(!got.has(ip), ip);
  assert.equal(a.allocate('a'), a.lookup('a'));
  assert.throws(
    () => a.allocate('f'),
    (e: Error & { code?: string }) => e.code === 'SERVICE_CIDR_EXHAUSTED',
  );
  const freed = a.release('c')!;
  assert.equal(a.allocate('f'), freed);
  assert.equal(a.release('nope'), undefined);
});

test('CIDRAllocator: the same key prefers the same address in a fresh allocator', () => {
  const x = new CIDRAllocator('10.96.0.0/16').allocate('default/echo-service-c1');
  const y = new CIDRAllocator('10.96.0.0/16').allocate('default/echo-service-c1');
  assert.equal(x, y);
});

test('CIDRAllocator: reserve and bad input', () => {
  const a = new CIDRAllocator('10.96.0.5/24');
  assert.equal(a.cidr, '10.96.0.0/24');
  a.reserve('10.96.0.20', 'default/x');
  assert.equal(a.lookup('default/x'), '10.96.0.20');
  assert.throws(() => a.reserve('10.96.0.20', 'default/y'), /already used by default\/x/);
  assert.throws(() => a.reserve('10.97.0.1', 'default/y'), /not in 10.96.0.0\/24/);
  for (const bad of ['10.96.0.0', '10.96.0.0/33', '10.96.0.0/31', 'x/16', '300.1.1.1/16']) {
    assert.throws(
      () => new CIDRAllocator(bad),
      (e: Error & { code?: string }) => e.code === 'SERVICE_INVALID_CIDR',
      bad,
    );
  }
  assert.ok(a.contains('10.96.0.255') && !a.contains('10.96.1.0'));
});

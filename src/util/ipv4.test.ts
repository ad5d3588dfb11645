import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  cidrContains,
  cidrsOverlap,
  formatCIDR,
  nthAddress,
  nthSubnet,
  parseCIDR,
  parseIPv4,
  formatIPv4,
} from './ipv4.js';

test('IPv4 parse/format round trip and errors', () => {
  assert.equal(formatIPv4(parseIPv4('10.244.1.255')), '10.244.1.255');
  assert.equal(parseIPv4('255.255.255.255'), 0xffffffff);
  assert.throws(() => parseIPv4('10.0.0.256'), /octet above 255/);
  assert.throws(() => parseIPv4('10.0.0'), /not an IPv4 address/);
});

test('CIDR parsing names the flag and suggests the fix for host bits', () => {
  assert.deepEqual(formatCIDR(parseCIDR('10.244.0.0/16')), '10.244.0.0/16');
  assert.throws(
    () => parseCIDR('10.244.1.0/16', '--pod-cidr'),
    (err: Error & { hint?: string }) => {
      assert.match(err.message, /--pod-cidr "10.244.1.0\/16" has host bits set/);
      assert.match(err.hint!, /10\.244\.0\.0\/16/);
      return true;
    },
  );
  assert.throws(
    () => parseCIDR('10.244.0.0', '--pod-cidr'),
    /--pod-cidr "10.244.0.0" is not an IPv4 CIDR/,
  );
  assert.throws(() => parseCIDR('10.244.0.0/33'), /above 32/);
});

test('overlap, containment, nth address and subnet', () => {
  const a = parseCIDR('10.244.0.0/16');
  assert.equal(cidrsOverlap(a, parseCIDR('10.244.128.0/20')), true);
  assert.equal(cidrsOverlap(parseCIDR('10.244.128.0/20'), a), true);
  assert.equal(cidrsOverlap(a, parseCIDR('10.245.0.0/16')), false);
  assert.equal(cidrsOverlap(parseCIDR('0.0.0.0/0'), a), true);
  assert.equal(cidrContains(a, '10.244.3.4'), true);
  assert.equal(cidrContains(a, '10.243.3.4'), false);
  assert.equal(nthAddress(parseCIDR('10.96.0.0/16'), 10), '10.96.0.10');
  assert.throws(() => nthAddress(parseCIDR('10.96.0.0/30'), 4), /outside/);
  assert.equal(formatCIDR(nthSubnet(a, 24, 0)), '10.244.0.0/24');
  assert.equal(formatCIDR(nthSubnet(a, 24, 2)), '10.244.2.0/24');
  assert.equal(formatCIDR(nthSubnet(parseCIDR('10.1.0.0/22'), 24, 3)), '10.1.3.0/24');
  assert.throws(() => nthSubnet(parseCIDR('10.1.0.0/23'), 24, 2), /holds 2 \/24 subnet/);
  assert.throws(() => nthSubnet(parseCIDR('10.1.0.0/25'), 24, 0), /smaller than a \/24/);
});

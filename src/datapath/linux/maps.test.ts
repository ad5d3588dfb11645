import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpointValue, ipcacheKey, ipcacheValue, keyToPrefix, prefixToKey } from './maps.js';

test('map layouts are pinned: sizes and offsets', () => {
  assert.equal(ipcacheKey.size, 8);
  assert.equal(ipcacheValue.size, 12);
  assert.equal(endpointValue.size, 16);
  const b = Buffer.alloc(8);
  ipcacheKey.encode(prefixToKey('10.244.1.0/24'), b, 0);
  assert.equal(b.toString('hex'), '180000000af40100');
  const v = Buffer.alloc(12);
  ipcacheValue.encode({ identity: 0x010203, hostIP: '172.30.1.11', flags: 0 }, v, 0);
  assert.equal(v.toString('hex'), '03020100ac1e010b00000000');
  assert.equal(keyToPrefix(prefixToKey('10.1.2.3')), '10.1.2.3/32');
});

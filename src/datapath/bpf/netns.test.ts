import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BpfError } from './errors.js';
import { netnsPath, withNetns } from './netns.js';

test('netnsPath maps names to /run/netns and keeps paths', () => {
  assert.equal(netnsPath('tendril-a'), '/run/netns/tendril-a');
  assert.equal(netnsPath('/proc/1/ns/net'), '/proc/1/ns/net');
});

test('withNetns on a missing namespace names it and never runs fn', () => {
  let ran = false;
  assert.throws(
    () => withNetns('tendril-surely-missing', () => (ran = true)),
    (e: unknown) =>
      e instanceof BpfError && /tendril-surely-missing/.test(e.message) && e.errnoName === 'ENOENT',
  );
  assert.equal(ran, false);
});

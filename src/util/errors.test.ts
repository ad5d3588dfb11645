import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TendrilError, describeError } from './errors.js';

test('describeError shows the message and the hint', () => {
  const e = new TendrilError('E_X', 'attach tcx to lxc1: EPERM', { hint: 'run as root' });
  assert.equal(e.code, 'E_X');
  assert.equal(describeError(e), 'attach tcx to lxc1: EPERM\n  hint: run as root');
  assert.equal(describeError(new Error('plain')), 'plain');
});

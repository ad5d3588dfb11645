import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TendrilError, describeError, isConflict, isNotFound, screamingSnake } from './errors.js';

test('describeError shows the message and the hint', () => {
  const e = new TendrilError('E_X', 'attach tcx to lxc1: EPERM', { hint: 'run as root' });
  assert.equal(e.code, 'E_X');
  assert.equal(describeError(e), 'attach tcx to lxc1: EPERM\n  hint: run as root');
  assert.equal(describeError(new Error('plain')), 'plain');
});

test('screamingSnake and the status helpers', () => {
  assert.equal(screamingSnake('NotFound'), 'NOT_FOUND');
  assert.equal(screamingSnake('InvalidCIDR'), 'INVALID_CIDR');
  assert.equal(screamingSnake('AlreadyExists'), 'ALREADY_EXISTS');
  const nf = Object.assign(new TendrilError('K8S_NOT_FOUND', 'x'), { httpCode: 404 });
  assert.ok(isNotFound(nf));
  assert.ok(!isConflict(nf));
  assert.ok(isConflict(new TendrilError('K8S_ALREADY_EXISTS', 'y')));
  assert.ok(!isNotFound(new Error('404')));
  assert.ok(!isNotFound(undefined));
});

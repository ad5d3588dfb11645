import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration } from './duration.js';

test('durations parse as the CLI spells them, and bad ones say how to write them', () => {
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('5m'), 300_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('1m30s'), 90_000);
  for (const bad of ['', '5', 'm', '5x', '1m 30s', '-5s']) {
    assert.throws(
      () => parseDuration(bad),
      (e: unknown) =>
        (e as { code?: string }).code === 'INVALID_DURATION' &&
        /like 500ms/.test((e as { hint?: string }).hint ?? ''),
      bad,
    );
  }
});

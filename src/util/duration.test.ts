import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, parseDuration } from './duration.js';

test('durations parse as the CLI spells them, and bad ones say how to write them', () => {
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('5m'), 300_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('1m30s'), 90_000);
  assert.equal(parseDuration('1.5s'), 1500);
  for (const bad of ['', 'm', '5x', '1m 30s', '-5s', 'soon', '5 s']) {
    assert.throws(
      () => parseDuration(bad, { what: '--wait-duration' }),
      (e: unknown) =>
        (e as { code?: string }).code === 'INVALID_DURATION' &&
        /--wait-duration/.test((e as Error).message) &&
        /like 500ms/.test((e as { hint?: string }).hint ?? ''),
      bad,
    );
  }
});

test('a bare number is seconds, so "90" and "90s" mean the same everywhere', () => {
  assert.equal(parseDuration('90'), 90_000);
  assert.equal(parseDuration('90'), parseDuration('90s'));
  assert.equal(parseDuration('0'), 0);
});

test('formatDuration round-trips', () => {
  for (const ms of [0, 500, 30_000, 90_000, 3_600_000, 3_690_000]) {
    assert.equal(parseDuration(formatDuration(ms)), ms);
  }
  assert.equal(formatDuration(90_000), '1m30s');
});

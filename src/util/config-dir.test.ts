import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readConfigDir, writeConfigDir } from './config-dir.js';

test('a config dir reads like a mounted ConfigMap: one file per key, ..data skipped, typed getters', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-cfgdir-'));
  try {
    writeConfigDir(dir, { 'cluster-name': 'c1', 'cluster-id': '7', 'enable-x': 'true' });
    mkdirSync(join(dir, '..2026_data'));
    symlinkSync('..2026_data', join(dir, '..data'));
    writeFileSync(join(dir, 'mtu'), ' 9000\n');
    const c = readConfigDir(dir);
    assert.deepEqual([...c.values.keys()], ['cluster-id', 'cluster-name', 'enable-x', 'mtu']);
    assert.equal(c.string('cluster-name'), 'c1');
    assert.equal(c.int('cluster-id', { min: 1, max: 255 }), 7);
    assert.equal(c.int('mtu'), 9000);
    assert.equal(c.bool('enable-x', false), true);
    assert.equal(c.string('absent', 'dflt'), 'dflt');
    assert.throws(() => c.string('routing-mode'), /key "routing-mode" is missing/);
    assert.throws(
      () => c.int('cluster-id', { min: 1, max: 5 }),
      (e: Error & { code?: string }) =>
        e.code === 'CONFIG_BAD_VALUE' && /from 1 to 5/.test(e.message),
    );
    assert.throws(() => c.oneOf('cluster-name', ['a', 'b']), /expected one of a, b/);
    // rewriting drops keys no longer set
    writeConfigDir(dir, { 'cluster-name': 'c2' });
    assert.deepEqual(
      readdirSync(dir).filter((n) => !n.startsWith('.')),
      ['cluster-name'],
    );
    assert.throws(() => readConfigDir(join(dir, 'nope')), /read config directory/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

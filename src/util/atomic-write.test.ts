import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic, writeFileAtomicSync } from './atomic-write.js';

test('writeFileAtomicSync replaces the file whole, creates the directory, honours the mode, leaves no temp file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'atomic-'));
  try {
    const p = join(dir, 'a', 'b', 'state.json');
    writeFileAtomicSync(p, 'one');
    writeFileAtomicSync(p, 'two', { mode: 0o600 });
    assert.equal(readFileSync(p, 'utf8'), 'two');
    assert.equal(statSync(p).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(join(dir, 'a', 'b')), ['state.json']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writeFileAtomic (async) writes strings or through a writer; a failing writer leaves the old file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'atomic-'));
  try {
    const p = join(dir, 'snap');
    writeFileSync(p, 'old');
    await assert.rejects(
      writeFileAtomic(p, async (fh) => {
        await fh.write('half');
        throw new Error('disk gone');
      }),
      /disk gone/,
    );
    assert.equal(readFileSync(p, 'utf8'), 'old');
    assert.deepEqual(readdirSync(dir), ['snap']);
    await writeFileAtomic(p, async (fh) => {
      await fh.write('a\n');
      await fh.write('b\n');
    });
    assert.equal(readFileSync(p, 'utf8'), 'a\nb\n');
    await writeFileAtomic(p, 'c', { mode: 0o600 });
    assert.equal(readFileSync(p, 'utf8'), 'c');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

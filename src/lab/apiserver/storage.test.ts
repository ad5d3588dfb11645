import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DiskPersistence } from './storage.js';

describe('disk store', () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), 'tendril-apistore-test-'));
    dirs.push(d);
    return d;
  };

  it('survives a crash (no close) across background snapshots and a torn last line', async () => {
    const d = dir();
    const a = new DiskPersistence(d, { snapshotEvery: 10 });
    await a.load();
    let last = 0;
    for (let i = 0; i < 57; i++) {
      last = await a.put(`/registry/x/k${i % 20}`, JSON.stringify({ i }));
      if (i % 7 === 0) await new Promise((r) => setImmediate(r)); // let background snapshots run
    }
    const del = await a.delete('/registry/x/k3');
    assert.equal(del, last + 1);
    appendFileSync(join(d, 'wal.log'), '{"rev":9999,"key":"/registry/x/torn","val'); // killed mid-write
    const b = new DiskPersistence(d, { snapshotEvery: 10 });
    const { kvs, revision } = await b.load();
    assert.equal(revision, del);
    assert.equal(kvs.length, 19);
    const k5 = kvs.find((kv) => kv.key === '/registry/x/k5')!;
    assert.deepEqual(JSON.parse(k5.value), { i: 45 });
    assert.equal(k5.createRevision, 6);
    assert.equal(k5.modRevision, 46);
    assert.equal(await b.put('/registry/x/new', '{}'), del + 1);
    await b.close();
    assert.deepEqual(readdirSync(d).sort(), ['snapshot.json']);
    const c = new DiskPersistence(d);
    assert.equal((await c.load()).revision, del + 1);
    await c.close();
  });
});

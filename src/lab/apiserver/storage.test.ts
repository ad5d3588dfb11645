import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
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
    // A killed process writes nothing more: let a's background snapshot end before b opens the
    // directory (two live writers of one directory are what the store's lock file prevents).
    await a.backgroundDone();
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

  it('cuts a torn last line at start, so the next append is not glued onto it and lost', async () => {
    const d = dir();
    const a = new DiskPersistence(d);
    await a.load();
    await a.put('/registry/x/a', '{"a":1}');
    appendFileSync(join(d, 'wal.log'), '{"rev":2,"key":"/registry/x/torn","val'); // killed mid-write
    const b = new DiskPersistence(d);
    await b.load();
    assert.equal(await b.put('/registry/x/b', '{"b":1}'), 2);
    await b.flush();
    // Crash again (no close): both acknowledged writes must be there.
    const c = new DiskPersistence(d);
    const { kvs, revision } = await c.load();
    assert.equal(revision, 2);
    assert.deepEqual(kvs.map((kv) => kv.key).sort(), ['/registry/x/a', '/registry/x/b']);
    await c.close();
  });

  it('fsyncs before a write is acknowledged, one fsync for writes that arrive together', async () => {
    const d = dir();
    const a = new DiskPersistence(d);
    await a.load();
    await a.put('/registry/x/one', '{}');
    await a.flush();
    assert.equal(a.stats().fsyncs, 1);
    const revs = await Promise.all(
      Array.from({ length: 100 }, (_, i) => a.put(`/registry/x/k${i}`, '{}')),
    );
    await Promise.all(revs.map(() => a.flush()));
    const { fsyncs, unsynced } = a.stats();
    assert.equal(unsynced, 0);
    assert.ok(fsyncs >= 2 && fsyncs <= 3, `100 writes together took ${fsyncs - 1} fsyncs`);
    await a.flush(); // nothing pending: no fsync
    assert.equal(a.stats().fsyncs, fsyncs);
    await a.close();
  });

  it(
    'loads a log larger than the largest string (512 MiB) by streaming it',
    { timeout: 180_000 },
    async () => {
      const d = dir();
      const fd = openSync(join(d, 'wal.log'), 'w');
      const big = Buffer.alloc(1024 * 1024, 'v');
      const n = 530; // 530 MiB > 0x1fffffe8 bytes, the longest string V8 makes
      try {
        for (let i = 1; i <= n; i++) {
          writeSync(fd, `{"rev":${i},"key":"/registry/x/k${i % 4}","value":"\\"`);
          writeSync(fd, big);
          writeSync(fd, '\\""}\n');
        }
      } finally {
        closeSync(fd);
      }
      const a = new DiskPersistence(d);
      const { kvs, revision } = await a.load();
      assert.equal(revision, n);
      assert.equal(kvs.length, 4);
      rmSync(join(d, 'wal.log'));
      await a.close();
    },
  );

  it('takes over a lock left by a dead process and refuses a live one', async () => {
    const d = dir();
    const dead = spawn('true');
    await new Promise((r) => dead.on('exit', r));
    writeFileSync(join(d, 'LOCK'), `${dead.pid}\n`);
    const a = new DiskPersistence(d);
    await a.load();
    assert.match(readFileSync(join(d, 'LOCK'), 'utf8'), new RegExp(`^${process.pid}\\b`));
    await a.close();
    // A pid that is alive but was reused by another program (a lock from before a reboot).
    writeFileSync(join(d, 'LOCK'), `1 1\n`);
    const b = new DiskPersistence(d);
    await b.load();
    await b.close();
    // A live holder: refused.
    const live = spawn('sleep', ['30']);
    try {
      const start = readFileSync(`/proc/${live.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19];
      writeFileSync(join(d, 'LOCK'), `${live.pid} ${start}\n`);
      await assert.rejects(new DiskPersistence(d).load(), /in use by process/);
    } finally {
      live.kill();
    }
  });
});

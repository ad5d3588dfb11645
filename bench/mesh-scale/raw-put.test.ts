import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { EtcdKVStore } from '../../src/kvstore/etcd.js';
import { freePort, startEtcd } from '../../src/kvstore/etcd-server.js';
import { RawEtcdPut } from './raw-put.js';

test('RawEtcdPut: puts land in etcd as the etcd3 client writes them; a refused put rejects with etcd status', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-raw-put-'));
  const url = `http://127.0.0.1:${await freePort()}`;
  const etcd = await startEtcd({ name: 'raw', dataDir: join(dir, 'data'), clientUrls: [url] });
  const raw = new RawEtcdPut(url);
  const store = new EtcdKVStore({ endpoints: [url] });
  try {
    const long = 'v'.repeat(300); // a value length over one varint byte
    await Promise.all([raw.put('sim/c1/a', '1'), raw.put('sim/c1/b', long), raw.put('ü/k', 'ä')]);
    assert.equal((await store.get('sim/c1/a'))?.value, '1');
    assert.equal((await store.get('sim/c1/b'))?.value, long);
    assert.equal((await store.get('ü/k'))?.value, 'ä');
    await raw.put('sim/c1/a', '2');
    assert.equal((await store.get('sim/c1/a'))?.value, '2');
    // etcd refuses an empty key (InvalidArgument, grpc-status 3)
    await assert.rejects(raw.put('', 'x'), /grpc-status 3 .*key is not provided/);
  } finally {
    await raw.close();
    await store.close();
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

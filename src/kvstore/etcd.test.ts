/**
 * The etcd backend against a real etcd (Debian's etcd-server) on 127.0.0.1
 * with free ports and a temporary data dir; no root needed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { kvstoreConformance, waitFor } from './conformance.js';
import { EtcdKVStore } from './etcd.js';
import { freePort, startEtcd, type EtcdServer } from './etcd-server.js';
import { isKVStoreError } from './errors.js';
import type { WatchEvent } from './types.js';

kvstoreConformance('etcd', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-etcd-conf-'));
  const port = await freePort();
  const srv = await startEtcd({
    name: 'conf',
    dataDir: join(dir, 'data'),
    clientUrls: [`http://127.0.0.1:${port}`],
  });
  const store = new EtcdKVStore({ endpoints: srv.endpoints });
  return {
    store,
    compact: (rev) => store.compact(rev),
    reopen: async () => new EtcdKVStore({ endpoints: srv.endpoints }),
    teardown: async () => {
      await store.close();
      await srv.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

test('etcd: an unreachable endpoint gives KVSTORE_UNREACHABLE naming it', async () => {
  const port = await freePort();
  const s = new EtcdKVStore({
    endpoints: [`http://127.0.0.1:${port}`],
    dialTimeoutMs: 500,
    requestTimeoutMs: 2000,
  });
  try {
    await assert.rejects(s.get('x'), (e) => {
      assert.ok(isKVStoreError(e, 'KVSTORE_UNREACHABLE'), String(e));
      assert.match((e as Error).message, new RegExp(`127\\.0\\.0\\.1:${port}`));
      assert.match((e as { hint: string }).hint, /is etcd running/);
      return true;
    });
    await assert.rejects(
      s.watchPrefix('x', () => {}),
      (e) => isKVStoreError(e, 'KVSTORE_UNREACHABLE'),
    );
  } finally {
    await s.close();
  }
});

describe('etcd: watch across a server restart', () => {
  let dir: string;
  let port: number;
  let srv: EtcdServer | undefined;
  const opts = () => ({
    name: 'restart',
    dataDir: join(dir, 'data'),
    clientUrls: [`http://127.0.0.1:${port}`],
  });
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tendril-etcd-restart-'));
    port = await freePort();
    srv = await startEtcd(opts());
  });
  after(async () => {
    await srv?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('resumes from the last delivered revision, reports the outage, skips nothing', async () => {
    const s = new EtcdKVStore({ endpoints: srv!.endpoints, dialTimeoutMs: 1000 });
    const writer = () => new EtcdKVStore({ endpoints: srv!.endpoints });
    try {
      const events: WatchEvent[] = [];
      let disconnects = 0;
      let reconnects = 0;
      const w = await s.watchPrefix('r/', (ev) => events.push(ev), {
        onDisconnect: (e) => {
          assert.ok(isKVStoreError(e));
          disconnects++;
        },
        onReconnect: () => reconnects++,
      });
      await s.put('r/a', '1');
      await waitFor(() => events.length === 1);
      await srv!.stop();
      await waitFor(() => disconnects === 1, 10_000);
      srv = await startEtcd(opts());
      // Writes right after the restart, probably before the watch is back.
      const w2 = writer();
      await w2.put('r/b', '2');
      await w2.put('r/a', '3');
      await w2.delete('r/b');
      await w2.close();
      await waitFor(() => events.length === 4, 20_000);
      assert.equal(reconnects, 1);
      assert.deepEqual(
        events.map((e) => (e.type === 'put' ? `put ${e.kv.key}=${e.kv.value}` : `delete ${e.key}`)),
        ['put r/a=1', 'put r/b=2', 'put r/a=3', 'delete r/b'],
      );
      await w.close();
    } finally {
      await s.close();
    }
  });
});

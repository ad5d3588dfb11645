import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { EtcdKVStore } from '../kvstore/etcd.js';
import { freePort, startEtcd } from '../kvstore/etcd-server.js';
import { MemoryKVStore } from '../kvstore/memory.js';
import { identityBackendConformance } from './backend-conformance.js';
import { KVStoreIdentityBackend } from './kvstore-backend.js';

identityBackendConformance('kvstore (memory)', async () => {
  const store = new MemoryKVStore();
  return {
    backend: new KVStoreIdentityBackend(store),
    second: new KVStoreIdentityBackend(store),
    teardown: () => store.close(),
  };
});

identityBackendConformance('kvstore (etcd, two clients)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-ident-etcd-'));
  const srv = await startEtcd({
    name: 'ident',
    dataDir: join(dir, 'data'),
    clientUrls: [`http://127.0.0.1:${await freePort()}`],
  });
  const s1 = new EtcdKVStore({ endpoints: srv.endpoints });
  const s2 = new EtcdKVStore({ endpoints: srv.endpoints });
  return {
    backend: new KVStoreIdentityBackend(s1),
    second: new KVStoreIdentityBackend(s2),
    teardown: async () => {
      await s1.close();
      await s2.close();
      await srv.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

test('kvstore backend: Cilium key layout and value form', async () => {
  const store = new MemoryKVStore();
  const b = new KVStoreIdentityBackend(store);
  await b.allocate(65792, 'k8s:io.kubernetes.pod.namespace=default;k8s:app=echo');
  assert.equal(
    (await store.get('cilium/state/identities/v1/id/65792'))?.value,
    'k8s:app=echo;k8s:io.kubernetes.pod.namespace=default;',
  );
  assert.equal(
    (
      await store.get(
        'cilium/state/identities/v1/value/k8s:app=echo;k8s:io.kubernetes.pod.namespace=default',
      )
    )?.value,
    '65792',
  );
  assert.deepEqual(await b.list(), [
    { id: 65792, labels: 'k8s:app=echo;k8s:io.kubernetes.pod.namespace=default' },
  ]);
  await store.close();
});

test('kvstore backend: repairs an orphan ID key and a stale index', async () => {
  const store = new MemoryKVStore();
  const b = new KVStoreIdentityBackend(store);
  // An allocator died after writing the ID key but before the index.
  await store.put('cilium/state/identities/v1/id/65800', 'k8s:app=a;');
  assert.equal(await b.lookup('k8s:app=a'), undefined);
  assert.deepEqual(await b.allocate(65800, 'k8s:app=a'), { id: 65800, created: true });
  // An index pointing at a released ID.
  await store.put('cilium/state/identities/v1/value/k8s:app=b', '65801');
  assert.equal(await b.lookup('k8s:app=b'), undefined);
  assert.deepEqual(await b.allocate(65802, 'k8s:app=b'), { id: 65802, created: true });
  // Garbage under the prefix is skipped by list.
  await store.put('cilium/state/identities/v1/id/notanumber', 'x');
  assert.deepEqual(
    (await b.list()).map((r) => r.id),
    [65800, 65802],
  );
  await store.close();
});

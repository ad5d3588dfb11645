// The API server on the etcd store: a real etcd (Debian's etcd, started with
// the kvstore launcher), objects under /registry/..., etcd revisions as
// resourceVersions, and a restart that keeps every object.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EtcdKVStore } from '../../kvstore/etcd.js';
import { freePort, startEtcd, type EtcdServer } from '../../kvstore/etcd-server.js';
import type { KubeObject, WatchEventObject } from '../../k8s/objects.js';
import { ApiError } from '../../k8s/status.js';
import { fakeNode, startTestApiServer, type TestApiServer } from './testing.js';

describe('lab API server on etcd', () => {
  let etcd: EtcdServer;
  let dir: string;
  const kvs: EtcdKVStore[] = [];
  const servers: TestApiServer[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tendril-apiserver-etcd-'));
    const port = await freePort();
    etcd = await startEtcd({
      name: 'apiserver-test',
      dataDir: join(dir, 'etcd'),
      clientUrls: [`http://127.0.0.1:${port}`],
    });
  });
  after(async () => {
    for (const s of servers) await s.stop();
    for (const kv of kvs) await kv.close();
    await etcd?.stop();
    for (const s of servers) rmSync(s.dataDir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  const start = async () => {
    const kv = new EtcdKVStore({ endpoints: etcd.endpoints });
    kvs.push(kv);
    const t = await startTestApiServer({ store: 'etcd', kvstore: kv });
    servers.push(t);
    return { t, kv };
  };

  it('stores objects under /registry with etcd revisions as resourceVersions; CRUD, 409, watch, restart', async () => {
    const { t, kv } = await start();
    const c = t.client;
    const svc = await c.create<KubeObject>({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'e1' },
      spec: { ports: [{ port: 80 }] },
    });
    const stored = await kv.get('/registry/services/default/e1');
    assert.ok(stored, 'object stored under /registry/services/default/e1');
    assert.equal(String(stored.modRevision), svc.metadata.resourceVersion);
    assert.equal(JSON.parse(stored.value).spec.clusterIP, svc.spec.clusterIP);
    const events: WatchEventObject[] = [];
    const w = await c.watch(
      'v1',
      'Service',
      { namespace: 'default', resourceVersion: svc.metadata.resourceVersion },
      (ev) => events.push(ev),
    );
    const upd = await c.update({ ...svc, metadata: { ...svc.metadata, labels: { a: 'b' } } });
    await assert.rejects(
      c.update(svc),
      (e: unknown) => e instanceof ApiError && e.httpCode === 409,
    );
    const del = await c.delete('v1', 'Service', 'e1');
    assert.equal(await kv.get('/registry/services/default/e1'), undefined);
    for (let i = 0; i < 100 && events.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    w.close();
    assert.deepEqual(
      events.map((e) => [e.type, e.object.metadata.resourceVersion]),
      [
        ['MODIFIED', upd.metadata.resourceVersion],
        ['DELETED', del.metadata.resourceVersion],
      ],
    );
    await c.create(fakeNode('e-worker'));
    await c.create<KubeObject>({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumIdentity',
      metadata: { name: '12345' },
      'security-labels': { 'k8s:app': 'x' },
    });
    assert.ok(await kv.get('/registry/cilium.io/ciliumidentities/12345'));
    const before = await c.list('v1', 'Node');
    await t.stop();
    const again = await start();
    const afterList = await again.t.client.list('v1', 'Node');
    assert.deepEqual(afterList.items, before.items);
    const next = await again.t.client.create<KubeObject>({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'e2' },
      spec: { ports: [{ port: 80 }] },
    });
    assert.ok(Number(next.metadata.resourceVersion) > Number(del.metadata.resourceVersion));
  });
});

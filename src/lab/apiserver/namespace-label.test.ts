// Namespaces carry kubernetes.io/metadata.name = their name, as in Kubernetes
// 1.21+: set on create and put back by every update and patch.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { NAMESPACE_NAME_LABEL } from '../../k8s/defaults.js';
import type { KubeObject } from '../../k8s/objects.js';
import { infoByKind } from '../../k8s/resources.js';
import { bootstrapCluster } from './controllers/bootstrap.js';
import { startTestApiServer, type TestApiServer } from './testing.js';

describe('namespace name label', () => {
  let t: TestApiServer;
  before(async () => {
    t = await startTestApiServer();
  });
  after(async () => {
    await t.cleanup();
  });
  const labels = async (name: string) =>
    (await t.client.get('v1', 'Namespace', name)).metadata.labels;

  it('is on the namespaces the server makes at start', async () => {
    for (const n of ['default', 'kube-system', 'kube-public', 'kube-node-lease'])
      assert.equal((await labels(n))?.[NAMESPACE_NAME_LABEL], n, n);
  });

  it('is set on create, next to the labels given', async () => {
    const ns = await t.client.create<KubeObject>({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'shop', labels: { team: 'a', [NAMESPACE_NAME_LABEL]: 'other' } },
    });
    assert.deepEqual(ns.metadata.labels, { team: 'a', [NAMESPACE_NAME_LABEL]: 'shop' });
    const gen = await t.client.create<KubeObject>({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { generateName: 'gen-' },
    });
    assert.equal(gen.metadata.labels?.[NAMESPACE_NAME_LABEL], gen.metadata.name);
  });

  it('cannot be changed or removed by update, merge patch or JSON patch', async () => {
    const cur = await t.client.get('v1', 'Namespace', 'shop');
    const upd = await t.client.update({
      ...cur,
      metadata: { ...cur.metadata, labels: { team: 'b', [NAMESPACE_NAME_LABEL]: 'x' } },
    });
    assert.deepEqual(upd.metadata.labels, { team: 'b', [NAMESPACE_NAME_LABEL]: 'shop' });
    const merged = await t.client.patch('v1', 'Namespace', 'shop', {
      metadata: { labels: { [NAMESPACE_NAME_LABEL]: null, extra: 'y' } },
    });
    assert.deepEqual(merged.metadata.labels, {
      team: 'b',
      extra: 'y',
      [NAMESPACE_NAME_LABEL]: 'shop',
    });
    const removedAll = await t.client.patch('v1', 'Namespace', 'shop', {
      metadata: { labels: null },
    });
    assert.deepEqual(removedAll.metadata.labels, { [NAMESPACE_NAME_LABEL]: 'shop' });
    const jsonPatched = await t.client.request<KubeObject>('PATCH', '/api/v1/namespaces/shop', {
      contentType: 'application/json-patch+json',
      body: [{ op: 'replace', path: '/metadata/labels', value: { [NAMESPACE_NAME_LABEL]: 'z' } }],
    });
    assert.deepEqual(jsonPatched.metadata.labels, { [NAMESPACE_NAME_LABEL]: 'shop' });
    assert.deepEqual(await labels('shop'), { [NAMESPACE_NAME_LABEL]: 'shop' });
  });

  it('selects namespaces by name with a label selector', async () => {
    const list = await t.client.list('v1', 'Namespace', {
      labelSelector: `${NAMESPACE_NAME_LABEL} in (shop,default)`,
    });
    assert.deepEqual(list.items.map((n) => n.metadata.name).sort(), ['default', 'shop']);
  });

  it('is added at start to a namespace stored without it (state of an older server)', async () => {
    // the registry's own copy, as a server before this label would have stored it
    const stored = t.server.registry
      .scan(infoByKind('Namespace'))
      .find((n) => n.metadata.name === 'shop')!;
    delete stored.metadata.labels;
    assert.equal((await labels('shop'))?.[NAMESPACE_NAME_LABEL], undefined);
    await bootstrapCluster(t.server.registry);
    assert.deepEqual(await labels('shop'), { [NAMESPACE_NAME_LABEL]: 'shop' });
  });
});

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { KubeObject } from '../../k8s/objects.js';
import { infoByKind } from '../../k8s/resources.js';
import { parseLabelSelector } from '../../k8s/selectors.js';
import { fakeNode, startTestApiServer, type TestApiServer } from './testing.js';

const SVC = infoByKind('Service');
const svc = (name: string, labels: Record<string, string>): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'default', labels },
  spec: { ports: [{ port: 80 }] },
});

describe('registry', () => {
  const servers: TestApiServer[] = [];
  after(async () => {
    for (const s of servers) await s.cleanup();
  });

  it('reports objects entering and leaving a label selection as ADDED and DELETED', async () => {
    const t = await startTestApiServer({ controllers: false });
    servers.push(t);
    const r = t.server.registry;
    const events: string[] = [];
    const w = r.watch(
      SVC,
      {
        labelSelector: parseLabelSelector('tier=web'),
        resourceVersion: String(r.currentRevision()),
      },
      (ev) =>
        events.push(
          `${ev.type} ${ev.object.metadata.name} ${ev.object.metadata.labels?.tier ?? '-'}`,
        ),
    );
    await r.create(SVC, 'default', svc('a', { tier: 'db' }));
    await r.patch(SVC, 'default', 'a', { metadata: { labels: { tier: 'web' } } });
    await r.patch(SVC, 'default', 'a', { metadata: { labels: { x: '1' } } });
    await r.patch(SVC, 'default', 'a', { metadata: { labels: { tier: 'db' } } });
    await r.delete(SVC, 'default', 'a');
    w.close();
    assert.deepEqual(events, ['ADDED a web', 'MODIFIED a web', 'DELETED a db']);
  });

  it('removes a gracefully deleted pod when no kubelet confirms in time', async () => {
    const t = await startTestApiServer({ maxPodGraceSeconds: 1 });
    servers.push(t);
    const c = t.client;
    await c.create(fakeNode('g-worker'));
    await c.create<KubeObject>({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'slow' },
      spec: { containers: [{ name: 'c', image: 'busybox' }] },
    });
    await t.server.settle();
    assert.equal((await c.get('v1', 'Pod', 'slow')).spec.nodeName, 'g-worker');
    const marked = await c.delete('v1', 'Pod', 'slow');
    assert.ok(marked.metadata.deletionTimestamp);
    assert.equal(marked.metadata.deletionGracePeriodSeconds, 30);
    assert.ok(await c.getOrUndefined('v1', 'Pod', 'slow'));
    for (let i = 0; i < 40 && (await c.getOrUndefined('v1', 'Pod', 'slow')); i++)
      await new Promise((res) => setTimeout(res, 100));
    assert.equal(await c.getOrUndefined('v1', 'Pod', 'slow'), undefined);
  });

  it('sends bookmarks on watches that allow them', async () => {
    const t = await startTestApiServer({ controllers: false, bookmarkIntervalMs: 100 });
    servers.push(t);
    const seen: Array<[string, string | undefined]> = [];
    const w = await t.client.watch(
      'v1',
      'Namespace',
      { allowWatchBookmarks: true, timeoutSeconds: 1 },
      (ev) => seen.push([ev.type, ev.object.metadata.resourceVersion]),
    );
    await w.done; // timeoutSeconds ends the stream
    assert.deepEqual(
      seen.slice(0, 4).map((e) => e[0]),
      ['ADDED', 'ADDED', 'ADDED', 'ADDED'],
    );
    const marks = seen.slice(4);
    assert.ok(
      marks.length >= 3 &&
        marks.every(
          (m) => m[0] === 'BOOKMARK' && m[1] === String(t.server.registry.currentRevision()),
        ),
    );
  });

  it("shows a kubelet's spec.nodeName watch the pod when it is bound (ADDED), not before", async () => {
    const t = await startTestApiServer();
    servers.push(t);
    const c = t.client;
    await c.create(fakeNode('n-worker'));
    const rv = (await c.list('v1', 'Pod')).metadata.resourceVersion;
    const seen: Array<[string, string | undefined]> = [];
    const w = await c.watch(
      'v1',
      'Pod',
      { fieldSelector: 'spec.nodeName=n-worker', resourceVersion: rv },
      (ev) => seen.push([ev.type, ev.object.spec?.nodeName]),
    );
    await c.create<KubeObject>({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'bindme' },
      spec: { containers: [{ name: 'c', image: 'busybox' }] },
    });
    await t.server.settle();
    for (let i = 0; i < 50 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    w.close();
    assert.deepEqual(seen[0], ['ADDED', 'n-worker']);
    assert.ok(seen.slice(1).every((e) => e[0] === 'MODIFIED'));
  });
});

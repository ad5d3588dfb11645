import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { KubeObject } from '../../k8s/objects.js';
import { ApiError } from '../../k8s/status.js';
import { startTestApiServer, type TestApiServer } from './testing.js';

function deployment(name: string): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas: 0,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: [
            { name: 'main', image: 'busybox', ports: [{ containerPort: 80 }] },
            { name: 'side', image: 'busybox' },
          ],
        },
      },
    },
  };
}

async function rejects(p: Promise<unknown>, code: number, re: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ApiError, String(err));
    assert.equal(err.httpCode, code, err.message);
    assert.match(err.message, re);
    return true;
  });
}

describe('lab API server patches (strategic, JSON, bounds)', () => {
  let t: TestApiServer;
  after(async () => {
    await t?.cleanup();
  });

  it('merges a strategic patch by merge key, replaces lists with a merge patch', async () => {
    t = await startTestApiServer();
    const c = t.client;
    await c.create(deployment('sm'));
    const patch = {
      spec: { template: { spec: { containers: [{ name: 'main', image: 'busybox:2' }] } } },
    };
    const s = await c.patch('apps/v1', 'Deployment', 'sm', patch, { type: 'strategic' });
    assert.deepEqual(
      s.spec.template.spec.containers.map(
        (x: { name: string; image: string }) => x.name + '=' + x.image,
      ),
      ['main=busybox:2', 'side=busybox'],
    );
    assert.deepEqual(s.spec.template.spec.containers[0].ports[0].containerPort, 80);
    const m = await c.patch('apps/v1', 'Deployment', 'sm', patch, { type: 'merge' });
    assert.equal(m.spec.template.spec.containers.length, 1);
    await rejects(
      c.patch(
        'apps/v1',
        'Deployment',
        'sm',
        { spec: { template: { spec: { containers: [{ image: 'x' }] } } } },
        { type: 'strategic' },
      ),
      422,
      /does not contain declared merge key: name/,
    );
  });

  it('applies JSON patches and bounds them: 1000 operations, copies that grow the object', async () => {
    const c = t.client;
    await c.create(deployment('jp'));
    const j = await c.patch(
      'apps/v1',
      'Deployment',
      'jp',
      [
        { op: 'test', path: '/spec/replicas', value: 0 },
        { op: 'replace', path: '/spec/replicas', value: 0 },
        { op: 'add', path: '/metadata/labels', value: { a: 'b' } },
      ],
      { type: 'json' },
    );
    assert.deepEqual(j.metadata.labels, { a: 'b' });
    await rejects(
      c.patch('apps/v1', 'Deployment', 'jp', [{ op: 'test', path: '/spec/replicas', value: 3 }], {
        type: 'json',
      }),
      422,
      /test failed/,
    );
    const many = Array.from({ length: 1001 }, () => ({
      op: 'test',
      path: '/kind',
      value: 'Deployment',
    }));
    await rejects(
      c.patch('apps/v1', 'Deployment', 'jp', many, { type: 'json' }),
      413,
      /1001 operations; at most 1000/,
    );
    const bomb = [
      { op: 'add', path: '/metadata/annotations', value: { x: 'y'.repeat(1000) } },
      { op: 'add', path: '/spec/template/metadata/annotations', value: {} },
      ...Array.from({ length: 40 }, (_, i) => ({
        op: 'copy',
        from: i === 0 ? '/metadata/annotations' : '/spec/template/metadata/annotations',
        path: `/spec/template/metadata/annotations/k${i}`,
      })),
    ];
    // Each copy nests the whole map into itself: it doubles per operation.
    await rejects(c.patch('apps/v1', 'Deployment', 'jp', bomb, { type: 'json' }), 413, /limit/);
    const after = await c.get('apps/v1', 'Deployment', 'jp');
    assert.equal(after.metadata.annotations, undefined, 'a refused patch changes nothing');
    // A merge patch whose result is over the limit is refused too (each body is under it).
    await c.patch('apps/v1', 'Deployment', 'jp', {
      metadata: { annotations: { a: 'x'.repeat(2_000_000) } },
    });
    await rejects(
      c.patch('apps/v1', 'Deployment', 'jp', {
        metadata: { annotations: { b: 'y'.repeat(1_500_000) } },
      }),
      413,
      /the patched object would be \d+ bytes, more than the limit of 3145728/,
    );
  });
});

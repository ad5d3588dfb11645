import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyJsonPatch, JsonPatchError } from './mergepatch.js';
import { strategicMergePatch, StrategicPatchError } from './strategicpatch.js';

const deploy = () => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'echo', finalizers: ['a'], labels: { app: 'echo' } },
  spec: {
    replicas: 1,
    template: {
      metadata: { labels: { app: 'echo' } },
      spec: {
        containers: [
          {
            name: 'echo',
            image: 'echo:1',
            ports: [{ containerPort: 8080, name: 'http' }],
            env: [
              { name: 'A', value: '1' },
              { name: 'B', value: '2' },
            ],
          },
          { name: 'side', image: 'busybox' },
        ],
      },
    },
  },
});

describe('strategic merge patch', () => {
  it('merges containers by name, ports by containerPort, env by name', () => {
    const out = strategicMergePatch('Deployment', deploy(), {
      spec: {
        template: {
          spec: {
            containers: [
              {
                name: 'echo',
                image: 'echo:2',
                ports: [{ containerPort: 8443, name: 'https' }],
                env: [
                  { name: 'B', value: 'two' },
                  { name: 'C', value: '3' },
                ],
              },
            ],
          },
        },
      },
    }) as ReturnType<typeof deploy>;
    const [echo, side] = out.spec.template.spec.containers;
    assert.equal(echo!.image, 'echo:2');
    assert.deepEqual(echo!.ports, [
      { containerPort: 8080, name: 'http' },
      { containerPort: 8443, name: 'https' },
    ]);
    assert.deepEqual(echo!.env, [
      { name: 'A', value: '1' },
      { name: 'B', value: 'two' },
      { name: 'C', value: '3' },
    ]);
    assert.deepEqual(side, { name: 'side', image: 'busybox' }, 'the other container stays');
  });

  it('the same patch as a merge patch would replace the list: strategic does not', () => {
    const out = strategicMergePatch(
      'Pod',
      { spec: { containers: [{ name: 'a' }, { name: 'b' }] } },
      {
        spec: { containers: [{ name: 'c', image: 'x' }] },
      },
    );
    assert.deepEqual(out, {
      spec: { containers: [{ name: 'a' }, { name: 'b' }, { name: 'c', image: 'x' }] },
    });
  });

  it('$patch: delete removes one element; $patch: replace replaces the list or map', () => {
    const d = deploy();
    const del = strategicMergePatch('Deployment', d, {
      spec: { template: { spec: { containers: [{ name: 'side', $patch: 'delete' }] } } },
    }) as ReturnType<typeof deploy>;
    assert.deepEqual(
      del.spec.template.spec.containers.map((c) => c.name),
      ['echo'],
    );
    const rep = strategicMergePatch('Deployment', d, {
      spec: {
        template: { spec: { containers: [{ name: 'only', image: 'i' }, { $patch: 'replace' }] } },
      },
    }) as ReturnType<typeof deploy>;
    assert.deepEqual(rep.spec.template.spec.containers, [{ name: 'only', image: 'i' }]);
    const labels = strategicMergePatch('Deployment', d, {
      metadata: { labels: { x: 'y', $patch: 'replace' } },
    }) as ReturnType<typeof deploy>;
    assert.deepEqual(labels.metadata.labels, { x: 'y' });
  });

  it('unions finalizers, $deleteFromPrimitiveList removes; null deletes keys; other lists replace', () => {
    const out = strategicMergePatch('Deployment', deploy(), {
      metadata: { finalizers: ['b', 'a'], labels: { app: null } },
    }) as ReturnType<typeof deploy>;
    assert.deepEqual(out.metadata.finalizers, ['a', 'b']);
    assert.deepEqual(out.metadata.labels, {});
    const gone = strategicMergePatch('Deployment', out, {
      metadata: { '$deleteFromPrimitiveList/finalizers': ['a'] },
    }) as ReturnType<typeof deploy>;
    assert.deepEqual(gone.metadata.finalizers, ['b']);
    const svc = strategicMergePatch(
      'Service',
      { spec: { ports: [{ port: 80 }], ipFamilies: ['IPv4'] } },
      { spec: { ports: [{ port: 443 }], ipFamilies: ['IPv6'] } },
    );
    assert.deepEqual(svc, { spec: { ports: [{ port: 80 }, { port: 443 }], ipFamilies: ['IPv6'] } });
  });

  it('refuses an element without its merge key, and a too deep patch', () => {
    assert.throws(
      () => strategicMergePatch('Pod', {}, { spec: { containers: [{ image: 'x' }] } }),
      (err: Error) =>
        err instanceof StrategicPatchError &&
        /spec.containers\[0\].*does not contain declared merge key: name/.test(err.message),
    );
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 5000; i++) deep = { a: deep };
    assert.throws(() => strategicMergePatch('Pod', {}, deep), /nested deeper than/);
  });
});

describe('JSON patch bounds', () => {
  it('refuses more than 1000 operations as too large', () => {
    const ops = Array.from({ length: 1001 }, () => ({ op: 'test' as const, path: '', value: {} }));
    assert.throws(
      () => applyJsonPatch({}, ops),
      (err: Error) =>
        err instanceof JsonPatchError &&
        err.tooLarge &&
        /1001 operations; at most 1000/.test(err.message),
    );
  });

  it('stops a chain of copies before the document grows past the limit', () => {
    const ops = [
      { op: 'add' as const, path: '/a', value: 'x'.repeat(1000) },
      ...Array.from({ length: 40 }, (_, i) => ({
        op: 'copy' as const,
        from: i === 0 ? '/a' : '/b',
        path: '/b',
      })),
    ];
    const nest = [
      { op: 'add' as const, path: '/x', value: ['y'.repeat(100)] },
      // each copy appends the whole list to itself: the list doubles with every operation
      ...Array.from({ length: 60 }, () => ({ op: 'copy' as const, from: '/x', path: '/x/-' })),
    ];
    const start = Date.now();
    assert.throws(
      () => applyJsonPatch({}, nest, { maxCopyBytes: 1 << 20 }),
      (err: Error) =>
        err instanceof JsonPatchError && err.tooLarge && /more than the limit/.test(err.message),
    );
    assert.ok(Date.now() - start < 5000);
    assert.doesNotThrow(() => applyJsonPatch({}, ops, { maxCopyBytes: 1 << 20 }));
  });

  it('applies add/remove/replace/move/copy/test', () => {
    const out = applyJsonPatch({ a: [1, 2], b: { c: 1 } }, [
      { op: 'add', path: '/a/-', value: 3 },
      { op: 'remove', path: '/a/0' },
      { op: 'replace', path: '/b/c', value: 2 },
      { op: 'move', from: '/b', path: '/d' },
      { op: 'copy', from: '/d', path: '/e' },
      { op: 'test', path: '/e/c', value: 2 },
    ]);
    assert.deepEqual(out, { a: [2, 3], d: { c: 2 }, e: { c: 2 } });
    assert.throws(
      () => applyJsonPatch({ a: 1 }, [{ op: 'test', path: '/a', value: 2 }]),
      /operation 0 \(test \/a\): test failed/,
    );
  });
});

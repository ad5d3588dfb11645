import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { threeWayMergePatch } from './apply.js';
import { createMergePatch, mergePatch } from './mergepatch.js';

describe('JSON merge patch (RFC 7386)', () => {
  it('follows the RFC examples', () => {
    const cases: Array<[unknown, unknown, unknown]> = [
      [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
      [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
      [{ a: 'b' }, { a: null }, {}],
      [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
      [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
      [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
      [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
      [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
      [
        ['a', 'b'],
        ['c', 'd'],
        ['c', 'd'],
      ],
      [{ a: 'b' }, ['c'], ['c']],
      [{ a: 'foo' }, null, null],
      [{ e: null }, { a: 1 }, { e: null, a: 1 }],
      [[1, 2], { a: 'b', c: null }, { a: 'b' }],
      [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
    ];
    for (const [target, patch, want] of cases)
      assert.deepEqual(mergePatch(target, patch), want, JSON.stringify({ target, patch }));
  });
  it('does not modify its inputs', () => {
    const t = { a: { b: 1 } };
    mergePatch(t, { a: { b: 2 } });
    assert.deepEqual(t, { a: { b: 1 } });
  });
  it('createMergePatch inverts mergePatch', () => {
    const from = { a: 1, b: { c: 2, d: [1] }, e: 'x' };
    const to = { a: 1, b: { c: 3, d: [1, 2] }, f: true };
    const p = createMergePatch(from, to);
    assert.deepEqual(p, { b: { c: 3, d: [1, 2] }, e: null, f: true });
    assert.deepEqual(mergePatch(from, p), to);
    assert.equal(createMergePatch(to, to), undefined);
  });
  it('three-way patch keeps fields set by others and removes fields dropped from the manifest', () => {
    const last = { spec: { replicas: 1, paused: false } };
    const desired = { spec: { replicas: 2 } };
    const live = {
      spec: { replicas: 1, paused: false, revisionHistoryLimit: 10 },
      status: { ready: 1 },
    };
    assert.deepEqual(threeWayMergePatch(last, desired, live), {
      spec: { replicas: 2, paused: null },
    });
    assert.deepEqual(threeWayMergePatch(desired, desired, { spec: { replicas: 2, x: 1 } }), {});
  });
});

describe('JSON patch (RFC 6902)', () => {
  it('adds, replaces, removes, moves, copies and tests', async () => {
    const { applyJsonPatch } = await import('./mergepatch.js');
    const doc = { metadata: { labels: { a: '1' } }, list: [1, 2, 3] };
    const out = applyJsonPatch(doc, [
      { op: 'add', path: '/metadata/labels/x~1y', value: 'v' },
      { op: 'replace', path: '/list/0', value: 9 },
      { op: 'add', path: '/list/-', value: 4 },
      { op: 'remove', path: '/list/1' },
      { op: 'copy', from: '/metadata/labels/a', path: '/metadata/labels/b' },
      { op: 'move', from: '/metadata/labels/a', path: '/metadata/labels/c' },
      { op: 'test', path: '/list', value: [9, 3, 4] },
    ]);
    assert.deepEqual(out, {
      metadata: { labels: { 'x/y': 'v', b: '1', c: '1' } },
      list: [9, 3, 4],
    });
    assert.deepEqual(doc.list, [1, 2, 3]);
    assert.throws(
      () => applyJsonPatch(doc, [{ op: 'test', path: '/list/0', value: 5 }]),
      /operation 0 \(test \/list\/0\): test failed/,
    );
    assert.throws(
      () => applyJsonPatch(doc, [{ op: 'replace', path: '/nope', value: 1 }]),
      /does not exist/,
    );
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  fromLabelSelector,
  matchesFields,
  matchesSelector,
  parseFieldSelector,
  parseLabelSelector,
} from './selectors.js';
import { ApiError } from './status.js';

describe('label selectors', () => {
  const l = { app: 'web', tier: 'front', 'example.com/x': 'y' };
  const m = (s: string, labels: Record<string, string> = l) =>
    matchesSelector(parseLabelSelector(s), labels);
  it('supports =, ==, !=, in, notin, exists and !key', () => {
    assert.ok(m('app=web'));
    assert.ok(m('app==web,tier=front'));
    assert.ok(!m('app=db'));
    assert.ok(m('app!=db'));
    assert.ok(!m('app!=web'));
    assert.ok(m('tier in (front, back)'));
    assert.ok(!m('tier notin (front)'));
    assert.ok(m('missing notin (a)'));
    assert.ok(m('example.com/x'));
    assert.ok(!m('!app'));
    assert.ok(m('!canary'));
    assert.ok(m(''));
    assert.ok(!m('app in (db),tier=front'));
  });
  it('rejects malformed selectors with 400', () => {
    for (const bad of ['app in db', 'app=(x', 'app in ()', '=x', 'a b']) {
      assert.throws(
        () => parseLabelSelector(bad),
        (e: unknown) => e instanceof ApiError && e.httpCode === 400,
        bad,
      );
    }
  });
  it('converts LabelSelector objects', () => {
    const sel = fromLabelSelector({
      matchLabels: { app: 'web' },
      matchExpressions: [
        { key: 'tier', operator: 'In', values: ['front'] },
        { key: 'canary', operator: 'DoesNotExist' },
      ],
    });
    assert.ok(matchesSelector(sel, l));
    assert.ok(!matchesSelector(sel, { ...l, canary: 'true' }));
  });
});

describe('field selectors', () => {
  it('supports metadata.name and metadata.namespace with =, ==, !=', () => {
    const s = parseFieldSelector('metadata.name=a,metadata.namespace!=kube-system');
    assert.ok(matchesFields(s, { metadata: { name: 'a', namespace: 'default' } }));
    assert.ok(!matchesFields(s, { metadata: { name: 'a', namespace: 'kube-system' } }));
    assert.ok(matchesFields(parseFieldSelector('metadata.name==b'), { metadata: { name: 'b' } }));
  });
  it('supports pod fields such as spec.nodeName and status.phase', () => {
    const s = parseFieldSelector('spec.nodeName=c1-worker,status.phase!=Succeeded', 'Pod');
    const pod = (nodeName: string | undefined, phase: string) => ({
      metadata: { name: 'p' },
      spec: { nodeName },
      status: { phase },
    });
    assert.ok(matchesFields(s, pod('c1-worker', 'Running')));
    assert.ok(!matchesFields(s, pod('c1-worker', 'Succeeded')));
    assert.ok(!matchesFields(s, pod(undefined, 'Pending')));
    assert.ok(
      matchesFields(parseFieldSelector('spec.nodeName=', 'Pod'), pod(undefined, 'Pending')),
    );
  });
  it('refuses other fields naming the supported ones', () => {
    assert.throws(
      () => parseFieldSelector('spec.nodeName=x'),
      /field label not supported: spec.nodeName \(supported: metadata.name, metadata.namespace\)/,
    );
    assert.throws(
      () => parseFieldSelector('spec.foo=x', 'Pod'),
      /supported for Pod: metadata.name, metadata.namespace, spec.nodeName/,
    );
  });
});

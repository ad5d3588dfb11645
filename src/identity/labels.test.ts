import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  canonicalLabels,
  labelsContain,
  labelsKVValue,
  labelsString,
  LabelError,
  parseLabel,
  parseLabels,
  podIdentityLabels,
} from './labels.js';

test('parseLabel: forms', () => {
  const cases: [string, { source: string; key: string; value: string }][] = [
    ['k8s:app=echo', { source: 'k8s', key: 'app', value: 'echo' }],
    ['reserved:host', { source: 'reserved', key: 'host', value: '' }],
    ['app=echo', { source: 'unspec', key: 'app', value: 'echo' }],
    [
      'k8s:io.kubernetes.pod.namespace=default',
      { source: 'k8s', key: 'io.kubernetes.pod.namespace', value: 'default' },
    ],
    [
      'k8s:app.kubernetes.io/name=x=y',
      { source: 'k8s', key: 'app.kubernetes.io/name', value: 'x=y' },
    ],
    ['k8s:empty=', { source: 'k8s', key: 'empty', value: '' }],
  ];
  for (const [text, want] of cases) assert.deepEqual(parseLabel(text), want, text);
});

test('parseLabel: bad input names the problem', () => {
  for (const bad of ['k8s:=x', 'k8s:a;b=c', ':app=x', 'k 8s:a=b', '']) {
    assert.throws(() => parseLabel(bad), LabelError, bad);
  }
});

test('canonical string: sorted, no trailing ";", order-independent; Cilium etcd form has one', () => {
  const a = parseLabels('k8s:io.kubernetes.pod.namespace=default;k8s:app=echo');
  const b = parseLabels(['k8s:app=echo', 'k8s:io.kubernetes.pod.namespace=default']);
  assert.equal(labelsString(a), 'k8s:app=echo;k8s:io.kubernetes.pod.namespace=default');
  assert.equal(labelsString(a), labelsString(b));
  assert.equal(labelsKVValue(a), 'k8s:app=echo;k8s:io.kubernetes.pod.namespace=default;');
  assert.equal(canonicalLabels('k8s:b=1;k8s:a=2;'), 'k8s:a=2;k8s:b=1');
  assert.equal(canonicalLabels('reserved:world;k8s:z=1'), 'k8s:z=1;reserved:world');
  assert.equal(canonicalLabels(''), '');
});

test('duplicate keys: same value collapses, different values are an error', () => {
  assert.equal(labelsString(parseLabels('k8s:a=1;k8s:a=1')), 'k8s:a=1');
  assert.throws(() => parseLabels('k8s:a=1;k8s:a=2'), /given twice/);
  // Same key from different sources is two labels.
  assert.equal(parseLabels('k8s:a=1;unspec:a=2').length, 2);
});

test('podIdentityLabels: namespace, service account, cluster, namespace labels; rollout labels dropped', () => {
  const l = podIdentityLabels(
    { app: 'echo', 'pod-template-hash': '5d4b9c', 'controller-revision-hash': 'x', tier: 'web' },
    {
      namespace: 'default',
      serviceAccount: 'sa1',
      cluster: 'cluster1',
      namespaceLabels: { team: 'a' },
    },
  );
  assert.equal(
    labelsString(l),
    [
      'k8s:app=echo',
      'k8s:io.cilium.k8s.namespace.labels.team=a',
      'k8s:io.cilium.k8s.policy.cluster=cluster1',
      'k8s:io.cilium.k8s.policy.serviceaccount=sa1',
      'k8s:io.kubernetes.pod.namespace=default',
      'k8s:tier=web',
    ].join(';'),
  );
  assert.equal(
    labelsString(podIdentityLabels(undefined, { namespace: 'kube-system' })),
    'k8s:io.kubernetes.pod.namespace=kube-system',
  );
});

test('labelsContain', () => {
  const l = parseLabels('k8s:app=echo;k8s:io.kubernetes.pod.namespace=default');
  assert.ok(labelsContain(l, parseLabels('k8s:app=echo')));
  assert.ok(labelsContain(l, parseLabels('')));
  assert.ok(!labelsContain(l, parseLabels('k8s:app=other')));
  assert.ok(!labelsContain(l, parseLabels('unspec:app=echo')));
});

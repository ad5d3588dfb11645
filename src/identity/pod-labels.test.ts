import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpointIdentityKey } from './pod-labels.js';

test("endpointIdentityKey: the namespace's labels become io.cilium.k8s.namespace.labels.<key>", () => {
  const pod = { namespace: 'blue', labels: { app: 'x' }, serviceAccount: 'sa' };
  assert.equal(
    endpointIdentityKey(
      { ...pod, namespaceLabels: { team: 'blue', 'kubernetes.io/metadata.name': 'blue' } },
      'c1',
    ),
    'k8s:app=x;k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=blue;' +
      'k8s:io.cilium.k8s.namespace.labels.team=blue;k8s:io.cilium.k8s.policy.cluster=c1;' +
      'k8s:io.cilium.k8s.policy.serviceaccount=sa;k8s:io.kubernetes.pod.namespace=blue',
  );
  assert.notEqual(
    endpointIdentityKey({ ...pod, namespaceLabels: { team: 'blue' } }, 'c1'),
    endpointIdentityKey({ ...pod, namespaceLabels: { team: 'green' } }, 'c1'),
    'a namespace relabel changes the identity',
  );
  assert.equal(
    endpointIdentityKey(pod, 'c1'),
    endpointIdentityKey({ ...pod, namespaceLabels: {} }, 'c1'),
  );
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { identityBackendConformance } from './backend-conformance.js';
import { startTestApiServer } from '../../test/helpers/apiserver.js';
import { KubeClient } from '../k8s/client.js';
import { CrdIdentityBackend, identityObject, identityObjectLabels } from './crd-backend.js';
import { IdentityAllocator } from './allocator.js';
import { endpointIdentityLabels } from './pod-labels.js';

identityBackendConformance('crd (lab API server, two clients)', async () => {
  const api = await startTestApiServer();
  const second = new KubeClient({ server: api.server.url });
  return {
    backend: new CrdIdentityBackend(api.client),
    second: new CrdIdentityBackend(second),
    teardown: async () => {
      second.close();
      await api.cleanup();
    },
  };
});

test('CiliumIdentity objects: name is the ID, security-labels hold the set', () => {
  const labels = 'k8s:app=echo;k8s:io.kubernetes.pod.namespace=default';
  const o = identityObject(65792, labels);
  assert.equal(o.metadata.name, '65792');
  assert.deepEqual((o as unknown as Record<string, unknown>)['security-labels'], {
    'k8s:app': 'echo',
    'k8s:io.kubernetes.pod.namespace': 'default',
  });
  assert.equal(identityObjectLabels(o), labels);
});

test('allocator over CRDs: cluster ID in bits 16-23, same labels same ID, GC removes unused', async () => {
  const api = await startTestApiServer();
  try {
    let now = 0;
    const alloc = new IdentityAllocator(new CrdIdentityBackend(api.client), {
      clusterId: 7,
      gcGracePeriodMs: 1000,
      now: () => now,
    });
    const echo = endpointIdentityLabels(
      { namespace: 'default', labels: { app: 'echo' } },
      'cluster7',
    );
    const a = await alloc.allocate(echo);
    assert.equal(a.id >> 16, 7);
    assert.equal((await alloc.allocate(echo)).id, a.id);
    const objs = await api.client.list('cilium.io/v2', 'CiliumIdentity');
    assert.equal(objs.items.length, 1);
    assert.match(
      identityObjectLabels(objs.items[0]!) ?? '',
      /io.cilium.k8s.policy.cluster=cluster7/,
    );
    await alloc.release(echo);
    await alloc.release(echo);
    await alloc.gc();
    now += 2000;
    const r = await alloc.gc();
    assert.deepEqual(
      r.released.map((x) => x.id),
      [a.id],
    );
    assert.equal((await api.client.list('cilium.io/v2', 'CiliumIdentity')).items.length, 0);
  } finally {
    await api.cleanup();
  }
});

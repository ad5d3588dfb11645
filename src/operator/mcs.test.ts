import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubernetesObject, V1Service } from '@kubernetes/client-node';
import { localExports } from './mcs.js';

test('local exports: a ServiceExport without its Service is invalid and not exported', () => {
  const svc: V1Service = {
    metadata: { name: 'echo', namespace: 'default' },
    spec: { clusterIP: '10.96.1.2', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
  };
  const exps: KubernetesObject[] = [
    {
      metadata: {
        name: 'echo',
        namespace: 'default',
        creationTimestamp: new Date('2026-01-01T00:00:00Z'),
      },
    },
    { metadata: { name: 'ghost', namespace: 'default' } },
  ];
  const { specs, validity } = localExports(exps, [svc], 'cluster1');
  assert.equal(specs.length, 1);
  assert.equal(specs[0]!.cluster, 'cluster1');
  assert.equal(specs[0]!.exportCreationTimestamp, '2026-01-01T00:00:00.000Z');
  assert.deepEqual(specs[0]!.ports, [{ name: 'http', port: 80, protocol: 'TCP' }]);
  assert.equal(validity.get('default/echo')?.status, 'True');
  assert.equal(validity.get('default/ghost')?.status, 'False');
  assert.equal(validity.get('default/ghost')?.reason, 'NoService');
});

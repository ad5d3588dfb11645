import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApiServer } from '../../test/helpers/apiserver.js';
import { nopLogger } from '../util/log.js';
import { Operator } from './operator.js';
import { identityObjectLabels } from '../identity/crd-backend.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

test('operator: identities for pods (cluster ID in bits 16-23), GC after the pod goes, pod CIDR for a node without one', async () => {
  const api = await startTestApiServer();
  const op = new Operator(
    {
      apiServerURL: api.server.url,
      clusterName: 'cluster5',
      clusterId: 5,
      clusterPodCIDR: '10.250.0.0/16',
      gcIntervalMs: 300,
      gcGraceMs: 300,
    },
    nopLogger,
  );
  try {
    await op.start();
    const k = api.client;
    await k.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web-1', namespace: 'default', labels: { app: 'web' } },
      spec: { containers: [{ name: 'c', image: 'busybox' }] },
    });
    await k.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web-2', namespace: 'default', labels: { app: 'web' } },
      spec: { containers: [{ name: 'c', image: 'busybox' }] },
    });
    const ids = await until('one identity for both pods', async () => {
      const l = await k.list('cilium.io/v2', 'CiliumIdentity');
      return l.items.length === 1 && op.status().podsWithIdentity === 2 ? l.items : undefined;
    });
    const id = Number(ids[0]!.metadata.name);
    assert.equal(id >> 16, 5);
    assert.match(
      identityObjectLabels(ids[0]!)!,
      /k8s:app=web;.*io.cilium.k8s.policy.cluster=cluster5/,
    );

    await k.create({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'n2' },
      spec: { podCIDR: '10.250.0.0/24', podCIDRs: ['10.250.0.0/24'] },
    });
    await k.create({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'n1' },
      spec: {},
      status: { addresses: [{ type: 'InternalIP', address: '172.31.0.1' }] },
    });
    const n1 = await until('pod CIDR assigned', async () => {
      const n = await k.get('v1', 'Node', 'n1');
      return n.spec?.podCIDR ? n : undefined;
    });
    assert.equal(n1.spec.podCIDR, '10.250.1.0/24', 'the first /24 not used by another node');

    await k.delete('v1', 'Pod', 'web-1', { namespace: 'default' });
    await sleep(1000);
    assert.equal(
      (await k.list('cilium.io/v2', 'CiliumIdentity')).items.length,
      1,
      'still used by web-2',
    );
    await k.delete('v1', 'Pod', 'web-2', { namespace: 'default' });
    await until('identity garbage-collected', async () =>
      (await k.list('cilium.io/v2', 'CiliumIdentity')).items.length === 0 ? true : undefined,
    );
  } finally {
    await op.stop();
    await api.cleanup();
  }
});

test("operator: a namespace's labels are part of its pods' identities; relabelling the namespace re-allocates", async () => {
  const api = await startTestApiServer();
  const op = new Operator(
    { apiServerURL: api.server.url, clusterName: 'c1', clusterId: 1, gcIntervalMs: 300 },
    nopLogger,
  );
  try {
    const k = api.client;
    await k.create({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'blue', labels: { team: 'blue' } },
    });
    await op.start();
    await k.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', namespace: 'blue', labels: { app: 'x' } },
      spec: { containers: [{ name: 'c', image: 'busybox' }] },
    });
    const labelsOfPodIdentity = async (want: RegExp) =>
      until(`an identity matching ${want}`, async () => {
        const l = await k.list('cilium.io/v2', 'CiliumIdentity');
        return l.items.map((o) => identityObjectLabels(o) ?? '').find((s) => want.test(s));
      });
    const first = await labelsOfPodIdentity(/k8s:app=x;/);
    assert.match(first, /k8s:io\.cilium\.k8s\.namespace\.labels\.team=blue(;|$)/);
    assert.match(first, /k8s:io\.kubernetes\.pod\.namespace=blue(;|$)/);

    await k.patch('v1', 'Namespace', 'blue', { metadata: { labels: { team: 'green' } } });
    const second = await labelsOfPodIdentity(/namespace\.labels\.team=green/);
    assert.match(second, /k8s:app=x;/);
    // the old identity is released (garbage-collected once no pod holds it)
    await until('the team=blue identity released', async () => {
      const l = await k.list('cilium.io/v2', 'CiliumIdentity');
      return l.items.some((o) => /team=blue/.test(identityObjectLabels(o) ?? ''))
        ? undefined
        : true;
    });
    assert.equal(op.status().podsWithIdentity, 1);
  } finally {
    await op.stop();
    await api.cleanup();
  }
});

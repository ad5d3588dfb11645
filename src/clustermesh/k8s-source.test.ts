import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryKVStore } from '../kvstore/memory.js';
import { startTestApiServer, fakeNode } from '../../test/helpers/apiserver.js';
import { ClusterSyncer } from './syncer.js';
import { apiServerSources, informerSource } from './k8s-source.js';
import { makeClusterConfig, syncedCanaryKey } from './keys.js';

async function until(what: string, cond: () => Promise<boolean>, timeoutMs = 8000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test(
  'the syncer exports from a real (lab) API server through informers',
  { timeout: 30_000 },
  async () => {
    const api = await startTestApiServer();
    const store = new MemoryKVStore();
    const syncer = new ClusterSyncer({
      store,
      clusterName: 'cluster1',
      clusterConfig: makeClusterConfig(1),
      sources: apiServerSources(api.server.url),
      heartbeatIntervalMs: 1000,
    });
    try {
      const node = fakeNode('cluster1-worker', { ip: '172.30.1.11' });
      node.spec = { ...node.spec, podCIDR: '10.244.1.0/24' };
      await api.client.create(node);
      await api.client.create({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: {
          name: 'echo',
          namespace: 'default',
          annotations: { 'service.cilium.io/global': 'true' },
        },
        spec: {
          selector: { app: 'echo' },
          ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 }],
        },
      });
      await syncer.start();
      await syncer.waitSynced(10_000);
      await until(
        'node exported',
        async () =>
          (await store.get('cilium/state/nodes/v1/cluster1/cluster1-worker')) !== undefined,
      );
      await until(
        'service exported',
        async () =>
          (await store.get('cilium/state/services/v1/cluster1/default/echo')) !== undefined,
      );
      assert.ok(await store.get(syncedCanaryKey('cluster1', 'services')));
      // A change after the initial list arrives through the watch.
      await api.client.create({
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: {
          name: 'echo-manual',
          namespace: 'default',
          labels: { 'kubernetes.io/service-name': 'echo' },
        },
        addressType: 'IPv4',
        ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
        endpoints: [{ addresses: ['10.244.1.10'], conditions: { ready: true } }],
      });
      await until('backend exported', async () => {
        const v = await store.get('cilium/state/services/v1/cluster1/default/echo');
        return (
          v !== undefined &&
          '10.244.1.10' in (JSON.parse(v.value) as { backends: Record<string, unknown> }).backends
        );
      });
      await api.client.delete('v1', 'Node', 'cluster1-worker');
      await until(
        'node removed',
        async () =>
          (await store.get('cilium/state/nodes/v1/cluster1/cluster1-worker')) === undefined,
      );
    } finally {
      await syncer.stop();
      await api.cleanup();
    }
  },
);

test(
  'a source reports errors while the API server is down and syncs once it is up',
  { timeout: 30_000 },
  async () => {
    // a port that was just free: the API server comes up there later
    const first = await startTestApiServer();
    const port = Number(new URL(first.server.url).port);
    await first.cleanup();
    const errors: string[] = [];
    const seen: string[] = [];
    let synced = 0;
    let recovered = 0;
    const handle = await informerSource(`http://127.0.0.1:${port}`, '/api/v1/nodes', {
      retryMs: 50,
    })({
      upsert: (o) => seen.push(`+${o.metadata.name}`),
      remove: (o) => seen.push(`-${o.metadata.name}`),
      synced: () => synced++,
      error: (err) => errors.push(err.message),
      recovered: () => recovered++,
    });
    let api: Awaited<ReturnType<typeof startTestApiServer>> | undefined;
    try {
      await until('an error reported', async () => errors.length > 0);
      assert.match(errors[0]!, /list Node/);
      assert.equal(synced, 0, 'not synced while the server is down');
      api = await startTestApiServer({ port });
      await api.client.create(fakeNode('n1', { ip: '172.30.1.21' }));
      await until('synced', async () => synced > 0);
      await until('recovery reported', async () => recovered > 0);
      assert.ok(seen.includes('+n1'), `the first list's node came before synced: ${seen.join()}`);
      await api.client.delete('v1', 'Node', 'n1');
      await until('delete seen', async () => seen.includes('-n1'));
      assert.equal(synced, 1, 'synced is called once');
    } finally {
      await handle.stop();
      await api?.cleanup();
    }
  },
);

test('a source for a path that is not a served collection is refused', () => {
  assert.throws(
    () => informerSource('http://127.0.0.1:1', '/apis/nope.example/v1/widgets'),
    (err: Error & { code?: string }) => err.code === 'K8S_UNKNOWN_PATH',
  );
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryKVStore } from '../kvstore/memory.js';
import type { KubeObject } from '../k8s/objects.js';
import { ClusterSyncer } from './syncer.js';
import { SyncStore } from './sync-store.js';
import { storeBatchWriter } from './batch-writer.js';
import {
  HEARTBEAT_KEY,
  makeClusterConfig,
  decodeNode,
  decodeIPCacheEntry,
  decodeServiceExport,
  syncedCanaryKey,
  nodeKey,
} from './keys.js';
import { fakeSources } from './testing.js';

const obj = (
  kind: string,
  name: string,
  extra: Partial<KubeObject> & {
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  } = {},
): KubeObject => {
  const { namespace, labels, annotations, ...rest } = extra;
  return {
    apiVersion: 'v1',
    kind,
    metadata: { name, namespace, labels, annotations, creationTimestamp: '2026-11-26T07:00:00Z' },
    ...rest,
  } as KubeObject;
};

function setup() {
  const store = new MemoryKVStore();
  const { fakes: src, sources } = fakeSources({ synced: false });
  const syncer = new ClusterSyncer({
    store,
    clusterName: 'cluster1',
    clusterConfig: makeClusterConfig(1),
    sources,
    heartbeatIntervalMs: 50,
  });
  return { store, src, syncer };
}

const svc = (name: string, annotations: Record<string, string> = {}) =>
  obj('Service', name, {
    namespace: 'default',
    annotations,
    spec: {
      clusterIP: '10.96.0.50',
      ports: [{ name: 'http', protocol: 'TCP', port: 80 }],
      selector: { app: name },
    },
  });
const slice = (
  name: string,
  svcName: string,
  ips: string[],
  labels: Record<string, string> = {},
  ready = true,
) =>
  obj('EndpointSlice', name, {
    namespace: 'default',
    labels: { 'kubernetes.io/service-name': svcName, ...labels },
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
    endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready } })),
  });

test('syncer exports nodes, global+shared services, own identities, ipcache, exports; canaries after the initial lists', async () => {
  const { store, src, syncer } = setup();
  // Leftover of an earlier run: must be gone before the nodes canary appears.
  await store.put(nodeKey('cluster1', 'gone-node'), '{}');
  try {
    await syncer.start();
    assert.ok(await store.get('cilium/cluster-config/cluster1'));
    assert.ok(await store.get(HEARTBEAT_KEY));
    src.nodes.add(
      obj('Node', 'cluster1-worker', {
        spec: { podCIDR: '10.244.1.0/24' },
        status: { addresses: [{ type: 'InternalIP', address: '172.30.1.11' }] },
      }),
      obj('Node', 'no-address', { status: { addresses: [] } }),
    );
    src.identities.add(
      obj('CiliumIdentity', String((1 << 16) | 300), {
        'security-labels': { 'k8s:app': 'echo', 'k8s:io.kubernetes.pod.namespace': 'default' },
      } as Partial<KubeObject>),
      obj('CiliumIdentity', String((2 << 16) | 300), {
        'security-labels': { 'k8s:app': 'other' },
      } as Partial<KubeObject>),
    );
    src.endpoints.add(
      obj('CiliumEndpoint', 'echo-1', {
        namespace: 'default',
        status: {
          identity: { id: (1 << 16) | 300 },
          networking: { node: '172.30.1.11', addressing: [{ ipv4: '10.244.1.10' }] },
        },
      }),
    );
    src.services.add(
      svc('annotated', { 'service.cilium.io/global': 'true' }),
      svc('legacy', { 'io.cilium/global-service': 'true' }),
      svc('seedform'),
      svc('private', { 'service.cilium.io/global': 'true', 'service.cilium.io/shared': 'false' }),
      svc('plain'),
    );
    src.endpointSlices.add(
      slice('annotated-abc', 'annotated', ['10.244.1.10', '10.244.1.11']),
      slice('annotated-notready', 'annotated', ['10.244.1.99'], {}, false),
      slice('seedform-abc', 'seedform', ['10.244.1.12']),
      // The seed's marker slice: marks the service global; its (mesh-filled) endpoints are never exported.
      slice('seedform-mesh', 'seedform', ['10.245.0.7'], { 'cilium.io/global-service': 'true' }),
      slice('private-abc', 'private', ['10.244.1.13']),
      slice('plain-abc', 'plain', ['10.244.1.14']),
    );
    src.serviceExports.add(
      obj('ServiceExport', 'annotated', { namespace: 'default' }),
      obj('ServiceExport', 'missing', { namespace: 'default' }),
    );
    await syncer.idle();
    assert.equal(
      await store.get(syncedCanaryKey('cluster1', 'nodes')),
      undefined,
      'no canary before the initial list',
    );
    for (const s of Object.values(src)) s.synced();
    await syncer.waitSynced(3000);
    await syncer.idle();

    const keys = (await store.list('cilium/state/')).kvs.map((k) => k.key).sort();
    assert.deepEqual(keys, [
      'cilium/state/identities/v1/id/65836',
      'cilium/state/ip/v1/default/10.244.1.10',
      'cilium/state/nodes/v1/cluster1/cluster1-worker',
      'cilium/state/serviceexports/v1/cluster1/default/annotated',
      'cilium/state/services/v1/cluster1/default/annotated',
      'cilium/state/services/v1/cluster1/default/legacy',
      'cilium/state/services/v1/cluster1/default/seedform',
    ]);
    const node = decodeNode(
      (await store.get('cilium/state/nodes/v1/cluster1/cluster1-worker'))!.value,
    );
    assert.deepEqual(node.podCIDRs, ['10.244.1.0/24']);
    assert.equal(node.clusterID, 1);
    assert.equal(
      (await store.get('cilium/state/identities/v1/id/65836'))!.value,
      'k8s:app=echo;k8s:io.kubernetes.pod.namespace=default;',
    );
    const ip = decodeIPCacheEntry(
      (await store.get('cilium/state/ip/v1/default/10.244.1.10'))!.value,
    );
    assert.deepEqual(ip, {
      ip: '10.244.1.10',
      identity: 65836,
      hostIP: '172.30.1.11',
      k8sNamespace: 'default',
      k8sPodName: 'echo-1',
    });
    const annotated = JSON.parse(
      (await store.get('cilium/state/services/v1/cluster1/default/annotated'))!.value,
    );
    assert.deepEqual(
      Object.keys(annotated.backends).sort(),
      ['10.244.1.10', '10.244.1.11'],
      'ready backends only',
    );
    assert.deepEqual(annotated.frontends, {
      '10.96.0.50': { http: { Protocol: 'TCP', Port: 80 } },
    });
    assert.equal(annotated.clusterID, 1);
    assert.equal(annotated.shared, true);
    const seed = JSON.parse(
      (await store.get('cilium/state/services/v1/cluster1/default/seedform'))!.value,
    );
    assert.deepEqual(
      Object.keys(seed.backends),
      ['10.244.1.12'],
      'marker slice endpoints not exported',
    );
    const exp = decodeServiceExport(
      (await store.get('cilium/state/serviceexports/v1/cluster1/default/annotated'))!.value,
    );
    assert.equal(exp.ports[0]!.port, 80);
    for (const k of ['nodes', 'services', 'identities', 'ip', 'serviceexports'] as const)
      assert.ok(await store.get(syncedCanaryKey('cluster1', k)), k);

    // Changes follow: a backend goes, a service stops being global, a CEP goes.
    src.endpointSlices.add(slice('annotated-abc', 'annotated', ['10.244.1.10']));
    src.services.add(svc('legacy'));
    src.endpoints.del(obj('CiliumEndpoint', 'echo-1', { namespace: 'default' }));
    await syncer.idle();
    const after = JSON.parse(
      (await store.get('cilium/state/services/v1/cluster1/default/annotated'))!.value,
    );
    assert.deepEqual(Object.keys(after.backends), ['10.244.1.10']);
    assert.equal(await store.get('cilium/state/services/v1/cluster1/default/legacy'), undefined);
    assert.equal(await store.get('cilium/state/ip/v1/default/10.244.1.10'), undefined);
    const st = syncer.status();
    assert.equal(st.counts.services, 2);
    assert.equal(st.synced.ip, true);
  } finally {
    await syncer.stop();
  }
});

test('syncer retries writes when etcd fails, and still gets synced', async () => {
  const { store, src, syncer } = setup();
  let failures = 3;
  const realPut = store.put.bind(store);
  store.put = async (k, v, o) => {
    if (k.startsWith('cilium/state/nodes/') && failures-- > 0) throw new Error('etcd unavailable');
    return realPut(k, v, o);
  };
  try {
    await syncer.start();
    src.nodes.add(
      obj('Node', 'n1', {
        spec: { podCIDR: '10.244.1.0/24' },
        status: { addresses: [{ type: 'InternalIP', address: '172.30.1.11' }] },
      }),
    );
    for (const s of Object.values(src)) s.synced();
    await syncer.waitSynced(5000);
    assert.ok(await store.get('cilium/state/nodes/v1/cluster1/n1'));
    assert.equal(failures, -1);
  } finally {
    await syncer.stop();
  }
});

test('a source error shows in status until the source works again, also after the first sync', async () => {
  const { src, syncer } = setup();
  try {
    await syncer.start();
    for (const s of Object.values(src)) s.synced();
    await syncer.waitSynced(5000);
    assert.deepEqual(syncer.status().sourceErrors, {});
    src.services.error(new Error('watch Service: connection refused'));
    assert.deepEqual(syncer.status().sourceErrors, {
      services: 'watch Service: connection refused',
    });
    src.services.recovered();
    assert.deepEqual(syncer.status().sourceErrors, {});
  } finally {
    await syncer.stop();
  }
});

test('SyncStore writes big initial lists through the batch writer, retrying a failed batch', async () => {
  const store = new MemoryKVStore();
  let calls = 0;
  const writer = storeBatchWriter(store);
  const s = new SyncStore({
    backend: store,
    prefix: 'cilium/state/nodes/v1/c1/',
    canaryKey: 'cilium/synced/c1/cilium/state/nodes/v1',
    retryMinMs: 10,
    batchWriter: async (entries) => {
      if (calls++ === 0) throw new Error('etcd unavailable');
      await writer(entries);
    },
  });
  for (let i = 0; i < 3000; i++) s.upsert(`cilium/state/nodes/v1/c1/n${i}`, `{"i":${i}}`);
  s.markSynced();
  await s.idle();
  await new Promise((r) => setTimeout(r, 50));
  await s.idle();
  assert.equal((await store.list('cilium/state/nodes/v1/c1/')).kvs.length, 3000);
  assert.ok(await store.get('cilium/synced/c1/cilium/state/nodes/v1'));
  assert.ok(calls >= 4, `batched in rounds of 1024 (+1 failed): ${calls}`);
  s.stop();
});

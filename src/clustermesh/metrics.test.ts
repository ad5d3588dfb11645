import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryKVStore } from '../kvstore/memory.js';
import { metricValue, scrapeMetrics } from '../observe/scrape.js';
import { serveMetrics } from '../util/metrics-server.js';
import { makeClusterConfig } from './keys.js';
import { KVStoreMesh } from './kvstoremesh.js';
import { createApiserverMetrics, createKVStoreMeshMetrics } from './metrics.js';
import { ClusterSyncer } from './syncer.js';
import { FakeNetwork, FlakyStore, fakeK8sNode, fakeSources, writeClusterState } from './testing.js';

async function until(what: string, cond: () => boolean | Promise<boolean>): Promise<void> {
  const end = Date.now() + 5000;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('kvstoremesh metrics: remotes ready, per-remote state and mirrored entries, scraped from a running mesh', async () => {
  const local = new MemoryKVStore();
  const remote = new MemoryKVStore();
  const net = new FakeNetwork();
  const mesh = new KVStoreMesh({
    local,
    localCluster: { name: 'cluster1', id: 1, maxConnectedClusters: 255 },
    dial: async () => new FlakyStore(remote, net, 'cluster2'),
    retryMinMs: 10,
    retryMaxMs: 40,
    probeIntervalMs: 50,
  });
  const srv = await serveMetrics(createKVStoreMeshMetrics(mesh), '127.0.0.1:0');
  try {
    await writeClusterState(remote, { name: 'cluster2', id: 2 });
    await mesh.setRemotes([
      { name: 'cluster2', clusterId: 2, endpoints: ['https://172.30.2.10:2379'] },
    ]);
    await mesh.waitSynced(3000);
    let f = await scrapeMetrics(srv.url);
    const r = { source_cluster: 'cluster2' };
    assert.equal(metricValue(f, 'tendril_kvstoremesh_remote_clusters'), 1);
    assert.equal(metricValue(f, 'tendril_kvstoremesh_remote_clusters_ready'), 1);
    assert.equal(metricValue(f, 'tendril_kvstoremesh_remote_cluster_connected', r), 1);
    assert.equal(metricValue(f, 'tendril_kvstoremesh_remote_cluster_synced', r), 1);
    assert.equal(metricValue(f, 'tendril_kvstoremesh_remote_cluster_errors', r), 0);
    assert.equal(metricValue(f, 'tendril_kvstoremesh_entries', { ...r, kind: 'nodes' }), 2);
    assert.equal(metricValue(f, 'tendril_kvstoremesh_entries', { ...r, kind: 'services' }), 2);
    assert.ok((metricValue(f, 'tendril_kvstoremesh_process_resident_memory_bytes') ?? 0) > 0);

    // the remote goes away: not ready, not connected, an error, entries kept (stale)
    net.cut();
    await until('remote disconnected', () => !mesh.status()[0]!.connected);
    f = await scrapeMetrics(srv.url);
    assert.equal(metricValue(f, 'tendril_kvstoremesh_remote_clusters_ready'), 0);
    assert.equal(metricValue(f, 'tendril_kvstoremesh_remote_cluster_connected', r), 0);
    assert.equal(metricValue(f, 'tendril_kvstoremesh_remote_cluster_errors', r), 1);
    assert.equal(metricValue(f, 'tendril_kvstoremesh_entries', { ...r, kind: 'nodes' }), 2);
  } finally {
    await srv.close();
    await mesh.stop();
  }
});

test('clustermesh-apiserver metrics: objects synced to etcd by kind and sync errors, scraped from a running syncer', async () => {
  const store = new MemoryKVStore();
  const { fakes: src, sources } = fakeSources({ synced: false });
  let syncer: ClusterSyncer | undefined;
  const srv = await serveMetrics(
    createApiserverMetrics({ status: () => syncer?.status() }),
    '127.0.0.1:0',
  );
  try {
    // before the syncer exists: no per-kind figures, no errors
    let f = await scrapeMetrics(srv.url);
    assert.equal(
      metricValue(f, 'tendril_clustermesh_apiserver_kvstore_objects', { kind: 'nodes' }),
      undefined,
    );
    assert.equal(metricValue(f, 'tendril_clustermesh_apiserver_sync_errors'), 0);
    syncer = new ClusterSyncer({
      store,
      clusterName: 'cluster1',
      clusterConfig: makeClusterConfig(1),
      sources,
      heartbeatIntervalMs: 50,
    });
    await syncer.start();
    src.nodes.add(
      fakeK8sNode('cluster1-a', '172.30.1.11', '10.244.1.0/24'),
      fakeK8sNode('cluster1-b', '172.30.1.12', '10.244.1.0/24'),
    );
    for (const s of Object.values(src)) s.synced();
    await syncer.waitSynced(5000);
    f = await scrapeMetrics(srv.url);
    assert.equal(
      metricValue(f, 'tendril_clustermesh_apiserver_kvstore_objects', { kind: 'nodes' }),
      2,
    );
    assert.equal(
      metricValue(f, 'tendril_clustermesh_apiserver_kvstore_synced', { kind: 'nodes' }),
      1,
    );
    assert.equal(metricValue(f, 'tendril_clustermesh_apiserver_sync_errors'), 0);
    src.services.error(new Error('watch Service: connection refused'));
    f = await scrapeMetrics(srv.url);
    assert.equal(metricValue(f, 'tendril_clustermesh_apiserver_sync_errors'), 1);
    assert.ok(
      (metricValue(f, 'tendril_clustermesh_apiserver_process_resident_memory_bytes') ?? 0) > 0,
    );
  } finally {
    await srv.close();
    await syncer?.stop();
  }
});

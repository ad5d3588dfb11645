import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderMeshStatus, type MeshStatusReport } from './status-report.js';

function report(over: Partial<MeshStatusReport> = {}): MeshStatusReport {
  const counts = { nodes: 3, services: 1, identities: 2, ip: 2, serviceexports: 0 };
  return {
    context: 'lab-cluster2',
    labCluster: 'cluster2',
    clusterName: 'cluster2',
    clusterId: 2,
    components: { cilium: 'OK', operator: 'OK', hubble: 'disabled', clustermesh: 'OK' },
    enabled: true,
    serviceType: 'NodePort',
    accessEndpoints: ['https://172.30.2.10:32379'],
    kvstoremesh: true,
    apiserver: {
      cluster: { name: 'cluster2', id: 2, labCluster: 'cluster2', maxConnectedClusters: 255 },
      pid: 1,
      startedAt: new Date().toISOString(),
      serviceType: 'NodePort',
      accessEndpoints: ['https://172.30.2.10:32379'],
      etcd: { ok: true, endpoint: 'https://127.0.0.1:2379', checkedAt: new Date().toISOString() },
      syncer: undefined,
      kvstoremesh: { enabled: true, remotes: [] },
      readers: ['cluster1'],
      problems: [],
    },
    nodes: { total: 3, connected: 3, notConnected: [] },
    clusters: [
      {
        name: 'cluster2',
        local: true,
        clusterId: 2,
        configured: true,
        connected: true,
        synced: true,
        stale: false,
        counts,
        lastHeartbeat: new Date().toISOString(),
        endpoints: [],
        error: undefined,
      },
      {
        name: 'cluster1',
        local: false,
        clusterId: 1,
        configured: true,
        connected: true,
        synced: true,
        stale: false,
        counts,
        lastHeartbeat: new Date().toISOString(),
        endpoints: [],
        error: undefined,
      },
    ],
    globalServices: { exported: 0, remote: 1 },
    problems: [],
    ready: true,
    ...over,
  };
}

test('status renders like the seed: box, 2/2 clusters, (local), connections, global services', () => {
  const out = renderMeshStatus(report());
  assert.match(out, /Tendril:\s+OK/);
  assert.match(out, /Operator:\s+OK/);
  assert.match(out, /Hubble:\s+disabled/);
  assert.match(out, /Clustermesh:\s+OK/);
  assert.match(out, /Cluster Mesh: 2\/2 clusters\n  cluster1\n  cluster2 \(local\)\n/);
  assert.match(out, /- 172\.30\.2\.10:32379/);
  assert.match(out, /All 3 nodes are connected to all clusters/);
  assert.match(
    out,
    /- cluster1 \(ID 1\): configured, connected, synced - 3 nodes, 1 global services/,
  );
  assert.match(out, /Global services: 0 exported by cluster2, 1 from remote clusters/);
});

test('status says which part is wrong, why, and what to run', () => {
  const r = report({
    components: { cilium: 'OK', operator: 'OK', hubble: 'disabled', clustermesh: 'Warning' },
    nodes: {
      total: 3,
      connected: 0,
      notConnected: [{ node: 'cluster2-worker', why: 'not connected to cluster1' }],
    },
    ready: false,
  });
  r.clusters[1] = {
    ...r.clusters[1]!,
    connected: false,
    synced: false,
    stale: true,
    error: {
      reason: 'certificate-rejected',
      message: 'TLS handshake failed',
      hint: 're-run `tendril clustermesh connect`',
    },
  };
  const out = renderMeshStatus(r);
  assert.match(out, /Cluster Mesh: 1\/2 clusters/);
  assert.match(
    out,
    /0\/3 nodes are connected to all clusters\n   - cluster2-worker: not connected to cluster1/,
  );
  assert.match(out, /cluster1 \(ID 1\): configured, not connected, not synced, stale/);
  assert.match(
    out,
    /❌ certificate rejected: TLS handshake failed\n\s+↳ re-run `tendril clustermesh connect`/,
  );
  const off = renderMeshStatus(
    report({
      enabled: false,
      components: { cilium: 'OK', operator: 'OK', hubble: 'disabled', clustermesh: 'disabled' },
    }),
  );
  assert.match(off, /Clustermesh:\s+disabled/);
  assert.match(off, /tendril clustermesh enable --context lab-cluster2/);
});

test('renderMeshStatus names the records a remote had refused (which cluster, key, why)', () => {
  const r = report();
  r.clusters[1]!.rejected = {
    total: 3,
    recent: [
      {
        key: 'cilium/state/nodes/v1/cluster1/evil',
        reason: 'pod CIDR "default" is not a CIDR',
        at: new Date().toISOString(),
      },
    ],
  };
  const text = renderMeshStatus(r);
  assert.match(text, /1 record\(s\) refused now \(3 since start\)/);
  assert.match(text, /cilium\/state\/nodes\/v1\/cluster1\/evil: pod CIDR "default" is not a CIDR/);
});

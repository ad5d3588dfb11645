import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryKVStore } from '../kvstore/memory.js';
import { KVStoreMesh } from './kvstoremesh.js';
import {
  cacheKey,
  clusterConfigKey,
  encodeNode,
  identityKey,
  ipcacheKey,
  kvstoremeshStatusKey,
  nodeKey,
  serviceKey,
  type MeshNode,
} from './keys.js';
import { RemoteState, type RemoteStateEvent } from './remote-state.js';
import { refuseRemoteRecord } from './validate-remote.js';
import { FakeNetwork, FlakyStore, fakeClusterService, writeClusterState } from './testing.js';

async function until(what: string, cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const node = (name: string, podCIDRs: string[], extra: Partial<MeshNode> = {}): string =>
  encodeNode({
    name,
    cluster: 'cluster2',
    clusterID: 2,
    addresses: [{ type: 'InternalIP', ip: '172.30.2.50' }],
    podCIDRs,
    ...extra,
  });

/** Records a hostile remote (cluster2, ID 2) might publish, with the reason each must be refused for. */
const hostile: Array<[kind: string, suffix: string, value: string, reason: RegExp]> = [
  ['nodes', 'evil-default', node('evil-default', ['default']), /not a CIDR/],
  ['nodes', 'evil-zero', node('evil-zero', ['0.0.0.0/0']), /default route/],
  ['nodes', 'evil-local', node('evil-local', ['10.244.3.0/24']), /overlaps the local/],
  ['nodes', 'evil-wide', node('evil-wide', ['10.0.0.0/8']), /overlaps the local/],
  [
    'nodes',
    'evil-other',
    node('evil-other', ['10.246.0.0/24'], { cluster: 'cluster3' }),
    /cluster3/,
  ],
  ['nodes', 'evil-id', node('evil-id', ['10.245.9.0/24'], { clusterID: 3 }), /cluster ID 3/],
  [
    'nodes',
    'evil-addr',
    node('evil-addr', ['10.245.8.0/24'], { addresses: [{ type: 'InternalIP', ip: 'x' }] }),
    /not an IP/,
  ],
  ['nodes', 'evil-json', '{"name":', /decode|JSON/],
  ['identities', String((3 << 16) | 256), 'k8s:app=x;', /cluster ID 2/],
  [
    'ip',
    '10.244.1.5',
    JSON.stringify({ ip: '10.244.1.5', identity: (2 << 16) | 256, hostIP: '172.30.2.10' }),
    /local cluster's pod CIDR/,
  ],
  [
    'ip',
    '10.245.7.7',
    JSON.stringify({ ip: '10.245.7.7', identity: 1, hostIP: '172.30.2.10' }),
    /host identity/,
  ],
  [
    'ip',
    '10.245.7.8',
    JSON.stringify({ ip: '10.245.7.8', identity: (3 << 16) | 256, hostIP: '172.30.2.10' }),
    /cluster ID 2/,
  ],
  [
    'services',
    'default/stolen',
    JSON.stringify(fakeClusterService('cluster3', 3, 'stolen', ['10.246.1.1'])),
    /cluster3/,
  ],
];

test("RemoteState refuses and counts remote records that are not the remote's own or would hijack local routes", async () => {
  const local = new MemoryKVStore();
  await local.put(clusterConfigKey('cluster2'), JSON.stringify({ id: 2, capabilities: {} }));
  await local.put(cacheKey('nodes', 'cluster2', 'good'), node('good', ['10.245.1.0/24']));
  await local.put(cacheKey('identities', 'cluster2', String((2 << 16) | 256)), 'k8s:app=ok;');
  for (const [kind, suffix, value] of hostile.slice(0, 6))
    await local.put(cacheKey(kind as never, 'cluster2', suffix), value);
  const rs = new RemoteState({
    store: local,
    localCluster: 'cluster1',
    localPodCIDRs: () => ['10.244.0.0/16'],
  });
  const events: RemoteStateEvent[] = [];
  rs.on((ev) => events.push(ev));
  await rs.start();
  try {
    // The rest arrive through the watch.
    for (const [kind, suffix, value] of hostile.slice(6))
      await local.put(cacheKey(kind as never, 'cluster2', suffix), value);
    await until(
      'all rejected',
      () => (rs.cluster('cluster2')?.rejected.size ?? 0) === hostile.length,
    );
    const c2 = rs.cluster('cluster2')!;
    assert.deepEqual([...c2.nodes.keys()], ['good']);
    assert.deepEqual([...c2.identities.keys()], [(2 << 16) | 256]);
    assert.equal(c2.ipcache.size, 0);
    assert.equal(c2.services.size, 0);
    for (const [kind, suffix, , reason] of hostile) {
      const r = c2.rejected.get(cacheKey(kind as never, 'cluster2', suffix));
      assert.ok(r, `${kind} ${suffix} not rejected`);
      assert.match(r.reason, reason, `${kind} ${suffix}`);
    }
    assert.equal(c2.rejectedTotal, hostile.length);
    // No upsert event ever carried a hostile record.
    const upserted = events.flatMap((e) => (e.type === 'upsert' ? [e.name] : []));
    assert.deepEqual(upserted.sort(), [String((2 << 16) | 256), 'good'].sort());
    // A good record turned bad is removed (a delete event), not kept.
    await local.put(cacheKey('nodes', 'cluster2', 'good'), node('good', ['default']));
    await until('good removed', () => !c2.nodes.has('good'));
    assert.ok(events.some((e) => e.type === 'delete' && e.name === 'good'));
    // Fixed again: accepted, and no longer listed as rejected.
    await local.put(cacheKey('nodes', 'cluster2', 'good'), node('good', ['10.245.1.0/24']));
    await until('good back', () => c2.nodes.has('good'));
    assert.equal(c2.rejected.has(cacheKey('nodes', 'cluster2', 'good')), false);
  } finally {
    await rs.stop();
  }
});

test('kvstoremesh does not cache hostile remote records and reports them per remote', async () => {
  const local = new MemoryKVStore();
  const remote = new MemoryKVStore();
  await writeClusterState(remote, { name: 'cluster2', id: 2, nodes: 1, services: 1 });
  await remote.put(nodeKey('cluster2', 'evil'), node('evil', ['default']));
  await remote.put(identityKey((3 << 16) | 300), 'k8s:app=x;');
  await remote.put(
    ipcacheKey('10.245.7.7'),
    JSON.stringify({ ip: '10.245.7.7', identity: 1, hostIP: '172.30.2.10' }),
  );
  await remote.put(
    serviceKey('cluster2', 'default', 'stolen'),
    JSON.stringify(fakeClusterService('cluster3', 3, 'stolen', ['10.246.1.1'])),
  );
  const mesh = new KVStoreMesh({
    local,
    localCluster: { name: 'cluster1', id: 1, maxConnectedClusters: 255 },
    dial: async () => new FlakyStore(remote, new FakeNetwork()),
    retryMinMs: 10,
    retryMaxMs: 20,
    probeIntervalMs: 30,
  });
  try {
    await mesh.setRemotes([{ name: 'cluster2', clusterId: 2, endpoints: ['x'] }]);
    await mesh.waitSynced(3000);
    const { kvs } = await local.list('cilium/cache/');
    const keys = kvs.map((kv) => kv.key);
    assert.ok(keys.includes(cacheKey('nodes', 'cluster2', 'cluster2-node0')));
    for (const bad of [
      cacheKey('nodes', 'cluster2', 'evil'),
      cacheKey('identities', 'cluster2', String((3 << 16) | 300)),
      cacheKey('ip', 'cluster2', '10.245.7.7'),
      cacheKey('services', 'cluster2', 'default/stolen'),
    ])
      assert.ok(!keys.includes(bad), `${bad} was cached`);
    const st = mesh.status()[0]!;
    assert.equal(st.rejected.total, 4);
    assert.deepEqual(
      st.rejected.recent.map((r) => r.key).sort(),
      [
        'cilium/state/identities/v1/id/' + String((3 << 16) | 300),
        'cilium/state/ip/v1/default/10.245.7.7',
        'cilium/state/nodes/v1/cluster2/evil',
        'cilium/state/services/v1/cluster2/default/stolen',
      ].sort(),
    );
    assert.match(st.rejected.recent.find((r) => r.key.includes('evil'))!.reason, /not a CIDR/);
    // The status record agents and `clustermesh status` read carries the count.
    await until('status record', () => true);
    const rec = await local.get(kvstoremeshStatusKey('cluster2'));
    assert.equal(JSON.parse(rec!.value).rejected, 4);
  } finally {
    await mesh.stop();
  }
});

test('with declared CIDRs (recorded at connect), records outside them are refused, naming what was declared', () => {
  const ctx = {
    cluster: 'cluster2',
    clusterId: 2,
    localPodCIDRs: ['10.244.0.0/16'],
    declaredPodCIDRs: ['10.245.0.0/16'],
    declaredNodeCIDRs: ['172.30.2.0/24'],
  };
  const check = (kind: string, suffix: string, value: string) =>
    refuseRemoteRecord(kind as never, suffix, value, ctx);
  assert.equal(check('nodes', 'ok', node('ok', ['10.245.3.0/24'])), undefined);
  assert.match(
    check('nodes', 'out', node('out', ['10.99.1.0/24']))!,
    /pod CIDR "10\.99\.1\.0\/24" is outside the pod CIDRs cluster2 declared when it was connected \(10\.245\.0\.0\/16\)/,
  );
  // wider than what was declared: not inside it
  assert.match(
    refuseRemoteRecord('nodes', 'wide', node('wide', ['10.245.0.0/16']), {
      ...ctx,
      declaredPodCIDRs: ['10.245.0.0/17'],
    })!,
    /outside the pod CIDRs/,
  );
  assert.match(
    check(
      'nodes',
      'addr',
      node('addr', ['10.245.4.0/24'], { addresses: [{ type: 'InternalIP', ip: '192.168.7.1' }] }),
    )!,
    /address "192\.168\.7\.1" is outside the node CIDRs cluster2 declared/,
  );
  const ip = (a: string) =>
    JSON.stringify({ ip: a, identity: (2 << 16) | 256, hostIP: '172.30.2.10' });
  assert.equal(check('ip', '10.245.3.7', ip('10.245.3.7')), undefined);
  assert.equal(check('ip', '172.30.2.11', ip('172.30.2.11')), undefined, 'a node address');
  assert.match(
    check('ip', '10.99.0.9', ip('10.99.0.9'))!,
    /outside the pod and node CIDRs cluster2 declared/,
  );
  // the old checks still come first
  assert.match(check('nodes', 'local', node('local', ['10.244.1.0/24']))!, /overlaps the local/);
  assert.match(check('nodes', 'zero', node('zero', ['0.0.0.0/0']))!, /default route/);
  // nothing declared (a remote connected by an older version): only the old checks
  assert.equal(
    refuseRemoteRecord('nodes', 'out', node('out', ['10.99.1.0/24']), {
      ...ctx,
      declaredPodCIDRs: undefined,
    }),
    undefined,
  );
});

test('kvstoremesh refuses, counts and names a remote node outside the pod CIDR it declared at connect', async () => {
  const local = new MemoryKVStore();
  const remote = new MemoryKVStore();
  await writeClusterState(remote, { name: 'cluster2', id: 2, nodes: 1, services: 0 });
  await remote.put(nodeKey('cluster2', 'stray'), node('stray', ['10.99.1.0/24']));
  const mesh = new KVStoreMesh({
    local,
    localCluster: { name: 'cluster1', id: 1, maxConnectedClusters: 255 },
    dial: async () => new FlakyStore(remote, new FakeNetwork()),
    retryMinMs: 10,
    retryMaxMs: 20,
    probeIntervalMs: 30,
    localPodCIDRs: () => ['10.244.0.0/16'],
  });
  try {
    await mesh.setRemotes([
      {
        name: 'cluster2',
        clusterId: 2,
        endpoints: ['x'],
        podCIDRs: ['10.245.0.0/16'],
        nodeCIDRs: ['172.30.2.0/24'],
      },
    ]);
    await mesh.waitSynced(3000);
    const keys = (await local.list('cilium/cache/nodes/')).kvs.map((kv) => kv.key);
    assert.ok(keys.includes(cacheKey('nodes', 'cluster2', 'cluster2-node0')), keys.join());
    assert.ok(
      !keys.includes(cacheKey('nodes', 'cluster2', 'stray')),
      'the stray node is not cached',
    );
    const st = mesh.status()[0]!;
    assert.equal(st.rejected.total, 1);
    assert.equal(st.rejected.recent[0]!.key, 'cilium/state/nodes/v1/cluster2/stray');
    assert.match(st.rejected.recent[0]!.reason, /outside the pod CIDRs cluster2 declared/);
  } finally {
    await mesh.stop();
  }
});

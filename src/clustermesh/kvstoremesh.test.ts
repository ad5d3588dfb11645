import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryKVStore } from '../kvstore/memory.js';
import { KVStoreMesh, LocalPuts, type RemoteClusterConfig } from './kvstoremesh.js';
import { FakeNetwork, FlakyStore, fakeClusterService, writeClusterState } from './testing.js';
import {
  clusterConfigKey,
  decodeClusterConfig,
  kvstoremeshStatusKey,
  nodeKey,
  serviceKey,
  syncedCanaryKey,
  type KVStoreMeshRemoteState,
} from './keys.js';

const LOCAL = { name: 'cluster1', id: 1, maxConnectedClusters: 255 };

async function until(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 3000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function keysUnder(store: MemoryKVStore, prefix: string): Promise<string[]> {
  return (await store.list(prefix)).kvs.map((kv) => kv.key).sort();
}

function setup(options: { cacheTTLms?: number; remoteId?: number } = {}) {
  const local = new MemoryKVStore();
  const remote = new MemoryKVStore();
  const net = new FakeNetwork();
  let dials = 0;
  const mesh = new KVStoreMesh({
    local,
    localCluster: LOCAL,
    dial: async () => {
      dials++;
      return new FlakyStore(remote, net, 'cluster2');
    },
    retryMinMs: 10,
    retryMaxMs: 40,
    probeIntervalMs: 50,
    cacheTTLms: options.cacheTTLms,
  });
  const cfg: RemoteClusterConfig = {
    name: 'cluster2',
    clusterId: options.remoteId ?? 2,
    endpoints: ['https://172.30.2.10:2379'],
  };
  return { local, remote, net, mesh, cfg, dials: () => dials };
}

test('kvstoremesh mirrors a remote into cilium/cache and follows its changes', async () => {
  const { local, remote, mesh, cfg } = setup();
  try {
    await writeClusterState(remote, { name: 'cluster2', id: 2 });
    await mesh.setRemotes([cfg]);
    await mesh.waitSynced(3000);
    assert.deepEqual(await keysUnder(local, 'cilium/cache/nodes/v1/'), [
      'cilium/cache/nodes/v1/cluster2/cluster2-node0',
      'cilium/cache/nodes/v1/cluster2/cluster2-node1',
    ]);
    assert.deepEqual(await keysUnder(local, 'cilium/cache/identities/v1/'), [
      'cilium/cache/identities/v1/cluster2/id/131328',
      'cilium/cache/identities/v1/cluster2/id/131329',
    ]);
    assert.equal((await keysUnder(local, 'cilium/cache/ip/v1/cluster2/')).length, 2);
    assert.equal((await keysUnder(local, 'cilium/cache/services/v1/cluster2/')).length, 2);
    assert.equal((await keysUnder(local, 'cilium/cache/serviceexports/v1/cluster2/')).length, 1);
    assert.equal(
      (await local.get('cilium/cache/nodes/v1/cluster2/cluster2-node0'))?.value,
      (await remote.get(nodeKey('cluster2', 'cluster2-node0')))?.value,
    );
    assert.ok(
      await local.get(syncedCanaryKey('cluster2', 'services', 'cache')),
      'local canary written',
    );
    const copy = decodeClusterConfig((await local.get(clusterConfigKey('cluster2')))!.value);
    assert.equal(copy.id, 2);
    assert.equal(copy.capabilities.cached, true);
    const st = mesh.status()[0]!;
    assert.equal(st.connected, true);
    assert.equal(st.synced, true);
    assert.equal(st.stale, false);
    assert.equal(st.counts.nodes, 2);
    assert.equal(st.counts.services, 2);
    assert.ok(st.lastHeartbeat);
    const rec = JSON.parse(
      (await local.get(kvstoremeshStatusKey('cluster2')))!.value,
    ) as KVStoreMeshRemoteState;
    assert.equal(rec.connected, true);
    assert.equal(rec.synced, true);

    // Live changes follow.
    await remote.put(
      nodeKey('cluster2', 'cluster2-node9'),
      renamed((await remote.get(nodeKey('cluster2', 'cluster2-node0')))!.value, 'cluster2-node9'),
    );
    await remote.delete(serviceKey('cluster2', 'default', 'svc1'));
    await until('live changes mirrored', async () => {
      return (
        (await local.get('cilium/cache/nodes/v1/cluster2/cluster2-node9')) !== undefined &&
        (await local.get('cilium/cache/services/v1/cluster2/default/svc1')) === undefined
      );
    });
    // Only cluster2's own state is mirrored (a third cluster's keys in its etcd are not).
    await remote.put(nodeKey('cluster3', 'x'), '{}');
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(await keysUnder(local, 'cilium/cache/nodes/v1/cluster3/'), []);
  } finally {
    await mesh.stop();
  }
});

test('kvstoremesh waits for the remote synced canary before calling a kind synced', async () => {
  const { local, remote, mesh, cfg } = setup();
  try {
    await writeClusterState(remote, { name: 'cluster2', id: 2, withoutCanaries: ['ip'] });
    await mesh.setRemotes([cfg]);
    await until('others synced', () => mesh.status()[0]!.syncedKinds.nodes);
    await new Promise((r) => setTimeout(r, 50));
    const st = mesh.status()[0]!;
    assert.equal(st.synced, false);
    assert.equal(st.syncedKinds.ip, false);
    assert.equal(st.lastError?.reason, 'not-synced');
    assert.equal(await local.get(syncedCanaryKey('cluster2', 'ip', 'cache')), undefined);
    await remote.put(syncedCanaryKey('cluster2', 'ip'), new Date().toISOString());
    await mesh.waitSynced(3000);
    assert.equal(mesh.status()[0]!.lastError, undefined);
  } finally {
    await mesh.stop();
  }
});

test('a disconnected remote stays cached as stale; reconnect resyncs and leaves nothing stale', async () => {
  const { local, remote, net, mesh, cfg, dials } = setup();
  try {
    await writeClusterState(remote, { name: 'cluster2', id: 2, nodes: 3 });
    await mesh.setRemotes([cfg]);
    await mesh.waitSynced(3000);
    net.cut();
    await until('disconnected', () => !mesh.status()[0]!.connected);
    let st = mesh.status()[0]!;
    assert.equal(st.stale, true);
    assert.equal(st.lastError?.reason, 'endpoint-unreachable');
    assert.match(st.lastError!.hint, /not reachable/);
    assert.equal(
      (await keysUnder(local, 'cilium/cache/nodes/v1/cluster2/')).length,
      3,
      'last known state kept',
    );
    const rec = JSON.parse(
      (await local.get(kvstoremeshStatusKey('cluster2')))!.value,
    ) as KVStoreMeshRemoteState;
    assert.equal(rec.stale, true);
    assert.equal(rec.connected, false);
    // While it is away: a node goes, another comes.
    await remote.delete(nodeKey('cluster2', 'cluster2-node1'));
    await remote.put(
      nodeKey('cluster2', 'cluster2-node7'),
      renamed((await remote.get(nodeKey('cluster2', 'cluster2-node0')))!.value, 'cluster2-node7'),
    );
    const before = dials();
    // Watch local deletes: node1 must be removed only after the new list is complete (never a wholesale wipe).
    const deleted: string[] = [];
    const w = await local.watchPrefix(
      'cilium/cache/',
      (ev) => ev.type === 'delete' && deleted.push(ev.key),
    );
    net.restore();
    await mesh.waitSynced(3000);
    await w.close();
    assert.ok(dials() > before, 'reconnected');
    st = mesh.status()[0]!;
    assert.equal(st.stale, false);
    assert.equal(st.connections, 2);
    assert.deepEqual(await keysUnder(local, 'cilium/cache/nodes/v1/cluster2/'), [
      'cilium/cache/nodes/v1/cluster2/cluster2-node0',
      'cilium/cache/nodes/v1/cluster2/cluster2-node2',
      'cilium/cache/nodes/v1/cluster2/cluster2-node7',
    ]);
    assert.deepEqual(deleted, ['cilium/cache/nodes/v1/cluster2/cluster2-node1']);
  } finally {
    await mesh.stop();
  }
});

test('with a cache TTL, a disconnected remote is dropped after it', async () => {
  const { local, remote, net, mesh, cfg } = setup({ cacheTTLms: 100 });
  try {
    await writeClusterState(remote, { name: 'cluster2', id: 2 });
    await mesh.setRemotes([cfg]);
    await mesh.waitSynced(3000);
    net.cut();
    await until('disconnected', () => !mesh.status()[0]!.connected);
    assert.equal((await keysUnder(local, 'cilium/cache/')).length > 0, true);
    await until(
      'drained after TTL',
      async () => (await keysUnder(local, 'cilium/cache/')).length === 0,
    );
    assert.equal(await local.get(clusterConfigKey('cluster2')), undefined);
    assert.deepEqual(await keysUnder(local, 'cilium/synced/cluster2/'), []);
    net.restore();
    await mesh.waitSynced(3000);
    assert.equal(
      (await keysUnder(local, 'cilium/cache/nodes/v1/cluster2/')).length,
      2,
      'back after reconnect',
    );
  } finally {
    await mesh.stop();
  }
});

test('a remote whose cluster ID changes is drained, then reconnected with the new ID', async () => {
  const { local, remote, mesh, cfg } = setup();
  try {
    await writeClusterState(remote, { name: 'cluster2', id: 2 });
    await mesh.setRemotes([cfg]);
    await mesh.waitSynced(3000);
    const deleted: string[] = [];
    const w = await local.watchPrefix(
      'cilium/cache/nodes/',
      (ev) => ev.type === 'delete' && deleted.push(ev.key),
    );
    // Reinstalled with ID 7: its config and state are rewritten under the same keys (never deleted remotely),
    // so a local delete of node0 can only come from the drain.
    await writeClusterState(remote, { name: 'cluster2', id: 7 });
    await until(
      'reconnected with ID 7',
      () => mesh.status()[0]!.clusterId === 7 && mesh.status()[0]!.synced,
    );
    await w.close();
    assert.ok(deleted.includes('cilium/cache/nodes/v1/cluster2/cluster2-node0'), 'drained');
    assert.equal(decodeClusterConfig((await local.get(clusterConfigKey('cluster2')))!.value).id, 7);
    const node = JSON.parse(
      (await local.get('cilium/cache/nodes/v1/cluster2/cluster2-node0'))!.value,
    ) as { clusterID: number };
    assert.equal(node.clusterID, 7);
  } finally {
    await mesh.stop();
  }
});

test('a remote with the local cluster ID or another maxConnectedClusters is refused', async () => {
  for (const [spec, reason, re] of [
    [
      { name: 'cluster2', id: 1 },
      'cluster-id-conflict',
      /cluster ID 1, which cluster1 \(the local cluster\) already uses/,
    ],
    [
      { name: 'cluster2', id: 2, maxConnectedClusters: 511 },
      'invalid-cluster-config',
      /maxConnectedClusters 511 but cluster1 has 255/,
    ],
  ] as const) {
    const { local, remote, mesh, cfg } = setup();
    try {
      await writeClusterState(remote, spec);
      await mesh.setRemotes([cfg]);
      await until('error reported', () => mesh.status()[0]!.lastError !== undefined);
      const st = mesh.status()[0]!;
      assert.equal(st.lastError!.reason, reason);
      assert.match(st.lastError!.message, re);
      assert.equal(st.connected, false);
      assert.deepEqual(await keysUnder(local, 'cilium/cache/'), []);
    } finally {
      await mesh.stop();
    }
  }
});

test('removing a remote drains its cached state', async () => {
  const { local, remote, mesh, cfg } = setup();
  try {
    await writeClusterState(remote, { name: 'cluster2', id: 2 });
    await mesh.setRemotes([cfg]);
    await mesh.waitSynced(3000);
    await mesh.setRemotes([]);
    assert.deepEqual(await keysUnder(local, 'cilium/'), []);
    assert.deepEqual(mesh.status(), []);
  } finally {
    await mesh.stop();
  }
});

test('a burst of live remote changes is mirrored in batches, in order', async () => {
  const { remote, net, cfg } = setup();
  let singlePuts = 0;
  class CountingStore extends MemoryKVStore {
    override put(key: string, value: string, opts?: Parameters<MemoryKVStore['put']>[2]) {
      if (key.startsWith('cilium/cache/services/')) singlePuts++;
      return super.put(key, value, opts);
    }
  }
  const local = new CountingStore();
  const mesh = new KVStoreMesh({
    local,
    localCluster: LOCAL,
    dial: async () => new FlakyStore(remote, net, 'cluster2'),
    retryMinMs: 10,
    retryMaxMs: 40,
    probeIntervalMs: 50,
  });
  try {
    await writeClusterState(remote, { name: 'cluster2', id: 2 });
    await mesh.setRemotes([cfg]);
    await mesh.waitSynced(3000);
    singlePuts = 0;
    const N = 500;
    // Records must be real (kvstoremesh refuses what does not decode); the port tells versions apart.
    const v = (j: number, port: number) =>
      JSON.stringify({
        ...fakeClusterService('cluster2', 2, `s${j}`, ['10.245.1.10']),
        namespace: 'bulk',
        frontends: { '10.96.0.1': { http: { Protocol: 'TCP', Port: port } } },
      });
    const portOf = (value: string | undefined) =>
      value === undefined
        ? undefined
        : (JSON.parse(value) as { frontends: Record<string, { http: { Port: number } }> })
            .frontends['10.96.0.1']!.http.Port;
    const writes: Promise<unknown>[] = [];
    for (let j = 0; j < N; j++)
      writes.push(remote.put(serviceKey('cluster2', 'bulk', `s${j}`), v(j, 1000 + j)));
    // interleaved: a delete, then a put again of the same key, must end as the remote does
    writes.push(remote.delete(serviceKey('cluster2', 'bulk', 's7')));
    writes.push(remote.put(serviceKey('cluster2', 'bulk', 's8'), v(8, 8888)));
    writes.push(remote.delete(serviceKey('cluster2', 'bulk', 's9')));
    writes.push(remote.put(serviceKey('cluster2', 'bulk', 's9'), v(9, 9999)));
    await Promise.all(writes);
    const cache = (j: number) => `cilium/cache/services/v1/cluster2/bulk/s${j}`;
    await until(
      'burst mirrored',
      async () =>
        portOf((await local.get(cache(9)))?.value) === 9999 &&
        (await keysUnder(local, 'cilium/cache/services/v1/cluster2/bulk/')).length === N - 1,
    );
    assert.equal(await local.get(cache(7)), undefined);
    assert.equal(portOf((await local.get(cache(8)))?.value), 8888);
    assert.equal(portOf((await local.get(cache(N - 1)))?.value), 1000 + N - 1);
    assert.ok(singlePuts < N / 4, `batched, not one put per change (${singlePuts} single puts)`);
  } finally {
    await mesh.stop();
  }
});

/** A node record copied under another name (records must name their key). */
function renamed(value: string, name: string): string {
  return JSON.stringify({ ...(JSON.parse(value) as object), name });
}

test('LocalPuts: puts of one turn go in one write, puts during a write in the next, a lone put at once', async () => {
  const writes: Array<Array<[string, string]>> = [];
  let release: (() => void) | undefined;
  const puts = new LocalPuts(async (entries) => {
    writes.push(entries);
    if (entries.some(([k]) => k === 'hold')) await new Promise<void>((r) => (release = r));
  }, 1);
  // a lone put: written on the next turn, no timer
  const t0 = performance.now();
  await puts.put('a', '1');
  assert.deepEqual(writes, [[['a', '1']]]);
  assert.ok(performance.now() - t0 < 50);
  // 250 remotes' puts in one turn: one write
  await Promise.all(Array.from({ length: 250 }, (_, i) => puts.put(`c${i}`, String(i))));
  assert.equal(writes.length, 2);
  assert.equal(writes[1]!.length, 250);
  // while a write is in flight, later puts wait and go together; the same key twice keeps the newer value
  const first = puts.put('hold', 'x');
  await new Promise((r) => setImmediate(r));
  const later = [puts.put('b', '1'), puts.put('b', '2'), puts.put('c', '3')];
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(writes.length, 3, 'nothing written while the first write is in flight');
  release!();
  await Promise.all([first, ...later]);
  assert.deepEqual(writes[3], [
    ['b', '2'],
    ['c', '3'],
  ]);
  // a failed write fails its callers
  const failing = new LocalPuts(() => Promise.reject(new Error('etcd down')));
  await assert.rejects(failing.put('k', 'v'), /etcd down/);
  assert.throws(() => new LocalPuts(async () => {}, 0), /maxInFlight 0/);
});

test('LocalPuts: two writes in flight; a third waits; a key out in one write waits for it', async () => {
  const writes: Array<Array<[string, string]>> = [];
  const held = new Map<string, () => void>();
  const puts = new LocalPuts(async (entries) => {
    writes.push(entries);
    const h = entries.find(([k]) => k.startsWith('hold'));
    if (h) await new Promise<void>((r) => held.set(h[0], r));
  }); // default: 2 in flight
  const turn = () => new Promise((r) => setImmediate(r));
  const p1 = puts.put('hold1', 'a');
  await turn();
  // the first write is out: the next put goes at once, in a second write
  const p2 = puts.put('hold2', 'b');
  await turn();
  assert.deepEqual(writes, [[['hold1', 'a']], [['hold2', 'b']]]);
  // both out: later puts wait together; hold1 again waits for its own write to end
  const p3 = puts.put('c', '1');
  const p4 = puts.put('hold1', 'a2');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(writes.length, 2);
  held.get('hold2')!();
  await p2;
  await turn();
  assert.deepEqual(writes[2], [['c', '1']], 'hold1 stays back while its first write is out');
  await p3;
  held.get('hold1')!();
  await p1;
  await turn();
  await turn();
  assert.deepEqual(writes[3], [['hold1', 'a2']]);
  held.get('hold1')!();
  await p4;
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryKVStore } from '../kvstore/memory.js';
import type { WatchEvent, WatchOptions } from '../kvstore/types.js';
import { KVStoreMesh } from './kvstoremesh.js';
import { RemoteState, type RemoteStateEvent } from './remote-state.js';
import { FakeNetwork, FlakyStore, writeClusterState } from './testing.js';
import { cacheKey, ipcacheKey, nodeKey, serviceKey } from './keys.js';

async function until(what: string, cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('RemoteState follows kvstoremesh: entries, synced, stale, drained', async () => {
  const local = new MemoryKVStore();
  const remote = new MemoryKVStore();
  const net = new FakeNetwork();
  // Own cluster state is in the same store.
  await writeClusterState(local, { name: 'cluster1', id: 1, nodes: 1, services: 1 });
  const mesh = new KVStoreMesh({
    local,
    localCluster: { name: 'cluster1', id: 1, maxConnectedClusters: 255 },
    dial: async () => new FlakyStore(remote, net),
    retryMinMs: 10,
    retryMaxMs: 20,
    probeIntervalMs: 30,
  });
  const rs = new RemoteState({ store: local, localCluster: 'cluster1', includeLocal: true });
  const events: RemoteStateEvent[] = [];
  rs.on((ev) => events.push(ev));
  try {
    await rs.start();
    assert.deepEqual(
      rs.clusters().map((c) => [c.name, c.local]),
      [['cluster1', true]],
    );
    assert.equal(rs.cluster('cluster1')!.nodes.size, 1);
    assert.equal(events.at(-1)?.type, 'initial-sync');

    await writeClusterState(remote, { name: 'cluster2', id: 2, nodes: 2, services: 2 });
    await mesh.setRemotes([{ name: 'cluster2', clusterId: 2, endpoints: ['x'] }]);
    await until('cluster2 ready', () => rs.readyClusters().includes('cluster2'));
    const c2 = rs.cluster('cluster2')!;
    assert.equal(c2.local, false);
    assert.equal(c2.config?.id, 2);
    assert.equal(c2.nodes.get('cluster2-node1')?.podCIDRs[0], '10.245.1.0/24');
    assert.equal(c2.services.get('default/svc0')?.cluster, 'cluster2');
    assert.equal(
      c2.identities.get((2 << 16) | 256),
      'k8s:app=svc0;k8s:io.kubernetes.pod.namespace=default;',
    );
    assert.equal(rs.lookupIP('10.245.1.11')?.cluster, 'cluster2');
    assert.equal(rs.lookupIP('10.244.1.10')?.cluster, 'cluster1');
    assert.equal(
      rs.servicesNamed('default', 'svc0').length,
      2,
      'both clusters export default/svc0',
    );
    assert.ok(
      events.some(
        (e) =>
          e.type === 'upsert' &&
          e.cluster === 'cluster2' &&
          e.kind === 'nodes' &&
          e.name === 'cluster2-node0',
      ),
    );

    // A backend change in the remote reaches the consumer as an upsert with the previous value.
    events.length = 0;
    await remote.put(
      serviceKey('cluster2', 'default', 'svc0'),
      JSON.stringify({ cluster: 'cluster2', namespace: 'default', name: 'svc0', backends: {} }),
    );
    await until('service updated', () =>
      events.some((e) => e.type === 'upsert' && e.kind === 'services' && e.previous !== undefined),
    );
    await remote.delete(ipcacheKey('10.245.1.10'));
    await until('ip removed', () =>
      events.some((e) => e.type === 'delete' && e.kind === 'ip' && e.name === '10.245.1.10'),
    );
    assert.equal(rs.lookupIP('10.245.1.10'), undefined);

    // Disconnection: stale, entries kept.
    net.cut();
    await until('stale', () => rs.cluster('cluster2')!.stale && !rs.cluster('cluster2')!.connected);
    assert.equal(rs.cluster('cluster2')!.nodes.size, 2);
    assert.ok(!rs.readyClusters().includes('cluster2'));
    assert.match(rs.cluster('cluster2')!.lastError ?? '', /unreachable/);
    net.restore();
    await until('ready again', () => rs.readyClusters().includes('cluster2'));

    // A garbage value is skipped, not fatal.
    await local.put(cacheKey('nodes', 'cluster2', 'broken'), 'not json');
    await until('error counted', () => rs.errors === 1);
    await local.delete(cacheKey('nodes', 'cluster2', 'broken'));

    // Disconnect from the mesh: everything drained, cluster removed.
    await mesh.setRemotes([]);
    await until('cluster2 removed', () => rs.cluster('cluster2') === undefined);
    assert.ok(
      events.some(
        (e) => e.type === 'cluster' && e.cluster === 'cluster2' && e.change === 'removed',
      ),
    );
    // Local state changes are tracked too.
    await local.delete(nodeKey('cluster1', 'cluster1-node0'));
    await until('local node removed', () => rs.cluster('cluster1')!.nodes.size === 0);
  } finally {
    await rs.stop();
    await mesh.stop();
  }
});

test('RemoteState relists when its watch breaks for good, and emits what it missed', async () => {
  const store = new MemoryKVStore();
  await writeClusterState(store, { name: 'cluster1', id: 1, nodes: 2, services: 1 });
  let breakWatch: ((err: Error) => void) | undefined;
  let innerWatch: { close(): Promise<void> } | undefined;
  const wrapped = {
    list: (p: string) => store.list(p),
    watchPrefix: async (p: string, on: (ev: WatchEvent) => void, o: WatchOptions = {}) => {
      innerWatch = await store.watchPrefix(p, on, o);
      breakWatch = o.onError;
      return innerWatch;
    },
  };
  const rs = new RemoteState({ store: wrapped, localCluster: 'cluster1', includeLocal: true });
  const events: RemoteStateEvent[] = [];
  rs.on((ev) => events.push(ev));
  try {
    await rs.start();
    assert.equal(rs.cluster('cluster1')!.nodes.size, 2);
    // The watch dies (e.g. its revision was compacted while etcd was unreachable); changes happen meanwhile.
    await innerWatch!.close();
    await store.delete(nodeKey('cluster1', 'cluster1-node1'));
    await store.put(
      nodeKey('cluster1', 'cluster1-node5'),
      JSON.stringify({
        ...(JSON.parse((await store.get(nodeKey('cluster1', 'cluster1-node0')))!.value) as object),
        name: 'cluster1-node5',
      }),
    );
    events.length = 0;
    breakWatch!(new Error('KVSTORE_COMPACTED'));
    await until('relisted', () => rs.resyncs === 1);
    assert.deepEqual([...rs.cluster('cluster1')!.nodes.keys()].sort(), [
      'cluster1-node0',
      'cluster1-node5',
    ]);
    assert.ok(events.some((e) => e.type === 'delete' && e.name === 'cluster1-node1'));
    assert.ok(events.some((e) => e.type === 'upsert' && e.name === 'cluster1-node5'));
    assert.ok(
      !events.some((e) => e.type === 'upsert' && e.name === 'cluster1-node0'),
      'unchanged entries are not re-emitted',
    );
    // And the new watch works.
    await store.delete(nodeKey('cluster1', 'cluster1-node5'));
    await until('watch resumed', () => rs.cluster('cluster1')!.nodes.size === 1);
  } finally {
    await rs.stop();
  }
});

test("RemoteState without includeLocal is not sent the own cluster's state writes", async () => {
  const local = new MemoryKVStore();
  const remote = new MemoryKVStore();
  await writeClusterState(local, { name: 'cluster1', id: 1, nodes: 1, services: 1 });
  await writeClusterState(remote, { name: 'cluster2', id: 2, nodes: 1, services: 1 });
  const mesh = new KVStoreMesh({
    local,
    localCluster: { name: 'cluster1', id: 1, maxConnectedClusters: 255 },
    dial: async () => remote,
    retryMinMs: 10,
    retryMaxMs: 20,
    probeIntervalMs: 30,
  });
  // counts the watch events the store delivers to RemoteState, by key
  const delivered: string[] = [];
  const counting = {
    list: (p: string) => local.list(p),
    watchPrefix: (p: string, on: (ev: WatchEvent) => void, o: WatchOptions = {}) =>
      local.watchPrefix(
        p,
        (ev) => {
          delivered.push(ev.type === 'put' ? ev.kv.key : ev.key);
          on(ev);
        },
        o,
      ),
  };
  const rs = new RemoteState({ store: counting, localCluster: 'cluster1' });
  try {
    await mesh.setRemotes([{ name: 'cluster2', clusterId: 2, endpoints: ['x'] }]);
    await rs.start();
    await until('cluster2 ready', () => rs.readyClusters().includes('cluster2'));
    assert.equal(rs.cluster('cluster1'), undefined);
    // the own cluster's syncer writes and the heartbeat: not delivered at all
    delivered.length = 0;
    await local.put(serviceKey('cluster1', 'default', 'svc0'), '{"changed":true}');
    await local.put('cilium/.heartbeat', new Date().toISOString());
    // a remote change after them is delivered, and only it
    await remote.put(
      serviceKey('cluster2', 'default', 'svc0'),
      JSON.stringify({ cluster: 'cluster2', namespace: 'default', name: 'svc0', backends: {} }),
    );
    await until('remote change delivered', () =>
      delivered.includes(cacheKey('services', 'cluster2', 'default/svc0')),
    );
    assert.deepEqual(
      delivered.filter(
        (k) => !k.startsWith('cilium/cache/') && !k.startsWith('cilium/kvstoremesh/'),
      ),
      [],
      'nothing of cilium/state/ or the heartbeat',
    );
  } finally {
    await rs.stop();
    await mesh.stop();
  }
});

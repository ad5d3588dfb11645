/**
 * MeshSource's ipcache path: a change of one remote endpoint is pushed into
 * the agent as that one entry (work in proportion to the change, not to its
 * cluster's size), and what the incremental pushes leave in the datapath is
 * what a full rebuild from the same mesh state gives.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FakeDatapath } from '../datapath/fake.js';
import { MemoryKVStore } from '../kvstore/memory.js';
import { writeClusterMeshConfig } from '../clustermesh/clustermesh-config.js';
import {
  cacheKey,
  clusterConfigKey,
  encodeClusterConfig,
  encodeIPCacheEntry,
  kvstoremeshStatusKey,
  makeClusterConfig,
  STATE_KINDS,
  type IPCacheEntry,
} from '../clustermesh/keys.js';
import { RemoteState } from '../clustermesh/remote-state.js';
import { nopLogger } from '../util/log.js';
import { Agent } from './agent.js';
import { testAgentConfig } from './testing.js';
import { MeshSource, type MeshStateFollower } from './mesh-source.js';

const until = async (what: string, cond: () => boolean, timeoutMs = 5000) => {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

/** What kvstoremesh writes into the local etcd for a remote cluster `name` (ID `id`). */
async function writeRemote(store: MemoryKVStore, name: string, id: number): Promise<void> {
  await store.put(clusterConfigKey(name), encodeClusterConfig(makeClusterConfig(id)));
  for (const k of STATE_KINDS)
    await store.put(`cilium/synced/${name}/cilium/cache/${k}/v1`, new Date().toISOString());
}

const ipKey = (cluster: string, ip: string) => cacheKey('ip', cluster, ip);
const putIP = (store: MemoryKVStore, cluster: string, e: IPCacheEntry) =>
  store.put(ipKey(cluster, e.ip), encodeIPCacheEntry(e));

/** An agent on a FakeDatapath following `store` through a MeshSource (remotes `names`). */
async function meshAgent(store: MemoryKVStore, names: string[]) {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-mesh-source-'));
  const configDir = join(dir, 'clustermesh');
  writeClusterMeshConfig(
    configDir,
    names.map((name) => ({
      name,
      endpoints: ['http://127.0.0.1:2379'],
      trustedCAFile: '/x',
      certFile: '/x',
      keyFile: '/x',
    })),
  );
  const dp = new FakeDatapath();
  const agent = new Agent(testAgentConfig(dir), { datapath: dp });
  await agent.start();
  const rs = new RemoteState({
    store,
    localCluster: 'cluster1',
    localPodCIDRs: () => agent.localPodCIDRs(),
  });
  let started: RemoteState | undefined;
  const follower: { -readonly [K in keyof MeshStateFollower]: MeshStateFollower[K] } = {
    on: (l) => rs.on(l),
    start: () => void rs.start().then(() => (started = rs)),
    stop: () => rs.stop(),
    get state() {
      return started;
    },
    lastError: undefined,
    remoteNames: new Set(names),
  };
  const mesh = new MeshSource({
    configDir,
    clusterName: 'cluster1',
    agent,
    setRemoteServices: () => undefined,
    logger: nopLogger,
    pollMs: 20,
    stateSource: follower,
  });
  mesh.start();
  await until('mesh state pushed', () => started !== undefined);
  return {
    dp,
    agent,
    rs,
    follower,
    async stop() {
      await mesh.stop();
      await agent.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const ep = (c: number, k: number, gen = 0): IPCacheEntry => ({
  ip: `10.${100 + c}.${k >> 8}.${k & 255}`,
  identity: (c << 16) | (256 + ((k + gen) % 50)),
  hostIP: `172.30.${c}.${10 + (k % 8)}`,
  k8sNamespace: 'default',
  k8sPodName: `pod-${k}-${gen}`,
});

test('a remote endpoint change is pushed as that one entry, not its whole cluster', async () => {
  const store = new MemoryKVStore();
  const perCluster = 2000;
  for (const [name, c] of [
    ['c2', 2],
    ['c3', 3],
  ] as const) {
    await writeRemote(store, name, c);
    for (let k = 0; k < perCluster; k++) await putIP(store, name, ep(c, k));
  }
  const m = await meshAgent(store, ['c2', 'c3']);
  try {
    await until('every entry in the datapath', () => m.dp.ipcache.size === 2 * perCluster);
    // the source's first poll of the config directory pushes everything once more
    await new Promise((r) => setTimeout(r, 100));
    const calls = { setSource: 0, update: 0, ipcacheSet: 0, setPeers: 0, mapGets: 0 };
    const a = m.agent;
    const realSetSource = a.setIPCacheSource.bind(a);
    a.setIPCacheSource = (s, e) => (calls.setSource++, realSetSource(s, e));
    const realUpdate = a.updateIPCacheEntry.bind(a);
    a.updateIPCacheEntry = (s, p, e) => (calls.update++, realUpdate(s, p, e));
    const realSet = a.ipcache.set.bind(a.ipcache);
    a.ipcache.set = (v) => (calls.ipcacheSet++, realSet(v));
    const realPeers = a.flowMeta.setRemotePeers.bind(a.flowMeta);
    a.flowMeta.setRemotePeers = (c, p) => (calls.setPeers++, realPeers(c, p));
    const realGet = Map.prototype.get;
    Map.prototype.get = function (this: Map<unknown, unknown>, k: unknown) {
      calls.mapGets++;
      return realGet.call(this, k);
    };
    const changed = ep(2, 7, 1);
    try {
      await putIP(store, 'c2', changed);
      await until(
        'the new identity in the datapath',
        () => m.dp.ipcache.get(`${changed.ip}/32`)?.identity === changed.identity,
      );
      // kvstoremesh's status record of a cluster changes (stale, then synced again): nothing
      // pushed depends on it
      for (const stale of [true, false])
        await store.put(
          kvstoremeshStatusKey('c3'),
          JSON.stringify({ cluster: 'c3', connected: true, stale, synced: !stale, since: '' }),
        );
      await until('c3 stale and back', () => m.rs.cluster('c3')?.stale === false);
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      Map.prototype.get = realGet;
    }
    assert.equal(calls.setSource, 0, 'no source replaced');
    assert.equal(calls.setPeers, 0, 'no peer list replaced');
    assert.equal(calls.update, 1, 'one entry updated');
    assert.equal(calls.ipcacheSet, 1, 'one ipcache entry set');
    // a whole-cluster diff would look up each of its 2,000 entries at least once
    assert.ok(calls.mapGets < 200, `${calls.mapGets} Map.get calls for one change`);
    assert.deepEqual(a.flowMeta.podByIP(changed.ip), {
      id: 0,
      namespace: 'default',
      podName: changed.k8sPodName,
    });
  } finally {
    await m.stop();
  }
});

test('incremental pushes leave the ipcache and peers a full rebuild gives', async () => {
  const store = new MemoryKVStore();
  const clusters = [2, 3, 4];
  const n = 300;
  for (const c of clusters) {
    await writeRemote(store, `c${c}`, c);
    for (let k = 0; k < n; k++) await putIP(store, `c${c}`, ep(c, k));
  }
  // c4 also announces some of c3's addresses: c3 (set first) keeps them while it has them
  for (let k = 0; k < 20; k++) await putIP(store, 'c4', { ...ep(3, k), identity: (4 << 16) | 300 });
  const names = clusters.map((c) => `c${c}`);
  const m = await meshAgent(store, names);
  try {
    await until('synced', () => m.dp.ipcache.size === clusters.length * n);
    // a mix of changes, in several pushes: new identities and pods, deletions (some of the
    // shared addresses, which c4 takes over), new entries, a CIDR, a pod-less entry
    let seed = 7;
    const rnd = (k: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % k;
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 60; i++) {
        const c = clusters[rnd(clusters.length)]!;
        const k = rnd(n + 50);
        const what = rnd(4);
        if (what === 0) await store.delete(ipKey(`c${c}`, ep(c, k).ip));
        else if (what === 1) {
          const { k8sPodName: _p, k8sNamespace: _n, ...bare } = ep(c, k, round + 1);
          await putIP(store, `c${c}`, bare);
        } else await putIP(store, `c${c}`, ep(c, k, round + 1));
      }
      await putIP(store, 'c2', {
        ip: `10.102.${200 + round}.0/24`,
        identity: (2 << 16) | 260,
        hostIP: '172.30.2.10',
      });
      await new Promise((r) => setTimeout(r, 20));
    }
    for (let k = 0; k < 5; k++) await store.delete(ipKey('c3', ep(3, k).ip));
    const settle = async (x: typeof m) => {
      await until('pushed', () => {
        const want = x.rs
          .clusters()
          .flatMap((c) =>
            [...c.ipcache.values()].map((e) => (e.ip.includes('/') ? e.ip : `${e.ip}/32`)),
          );
        return new Set(want).size === x.dp.ipcache.size;
      });
      await x.agent.ipcache.whenIdle();
    };
    await settle(m);
    // the same mesh state, pushed whole into a new agent
    const full = await meshAgent(store, names);
    try {
      await settle(full);
      const dump = (x: typeof m) =>
        [...x.dp.ipcache.values()].map((e) => `${e.prefix}=${e.identity}@${e.hostIP ?? ''}`).sort();
      // settle() counts prefixes: the last changes (c3's deletions, which c4's entries replace)
      // keep the count, so m's last push may still be pending (spaced after an expensive push
      // on a loaded machine): wait for the two to agree, and fail with the difference if they never do
      await until(
        'the incremental pushes to equal the full rebuild',
        () => JSON.stringify(dump(m)) === JSON.stringify(dump(full)),
        10_000,
      ).catch(() => undefined);
      assert.deepEqual(dump(m), dump(full));
      assert.equal(
        m.dp.ipcache.get(`${ep(3, 0).ip}/32`)?.identity,
        (4 << 16) | 300,
        'c4 took over',
      );
      for (const c of clusters)
        for (let k = 0; k < n + 50; k++) {
          const ip = ep(c, k).ip;
          assert.deepEqual(m.agent.flowMeta.podByIP(ip), full.agent.flowMeta.podByIP(ip), ip);
        }
    } finally {
      await full.stop();
    }
    // clusters no longer configured go with all their entries (and peers)
    m.follower.remoteNames = new Set(['c2']);
    const c2 = new Set(
      [...m.rs.cluster('c2')!.ipcache.keys()].map((ip) => (ip.includes('/') ? ip : `${ip}/32`)),
    );
    await until('only c2 left', () => m.dp.ipcache.size === c2.size);
    await m.agent.ipcache.whenIdle();
    assert.ok([...m.dp.ipcache.keys()].every((p) => c2.has(p)));
    assert.equal(m.agent.flowMeta.podByIP(ep(3, 100).ip), undefined);
  } finally {
    await m.stop();
  }
});

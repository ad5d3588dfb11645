import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, ReservedIdentity } from './agent.js';
import { testAgentConfig } from './testing.js';
import { AgentClient } from './api/client.js';
import { serveAgentApi } from './api/server.js';
import { FakeDatapath } from '../datapath/fake.js';
import type { IPCacheEntry } from '../datapath/types.js';
import { runPlugin, type PluginNet } from './cni/plugin.js';

const fakeNet: PluginNet = {
  setup: async () => ({ hostMac: '02:00:00:00:00:01', podMac: '02:00:00:00:00:02' }),
  teardown: async () => {},
  check: async () => {},
};

test('CNI through the agent API: address, endpoint, identity, ipcache, CiliumEndpoint; restart keeps state', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-agent-'));
  const dp = new FakeDatapath();
  const published: string[] = [];
  const mk = (datapath: FakeDatapath) =>
    new Agent(testAgentConfig(dir), {
      datapath,
      datapathName: 'fake',
      podLookup: async (ns, name) => ({ labels: { app: name.split('-')[0]! } }),
      resolveIdentity: async ({ namespace, labels }) =>
        namespace === 'default' && labels.app === 'echo' ? 0x10100 : 0x10200,
      publisher: {
        upsert: async (ep) =>
          void published.push(`upsert ${ep.podNamespace}/${ep.podName} ${ep.ip} ${ep.identity}`),
        delete: async (ep) => void published.push(`delete ${ep.podNamespace}/${ep.podName}`),
      },
    });
  let agent = mk(dp);
  let server = await serveAgentApi(agent, testAgentConfig(dir).socketPath);
  try {
    await agent.start();
    const conf = JSON.stringify({
      cniVersion: '1.0.0',
      name: 'tendril',
      type: 'tendril-cni',
      agentSocket: testAgentConfig(dir).socketPath,
    });
    const env = (id: string, pod: string) => ({
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: id,
      CNI_NETNS: `/run/netns/${id}`,
      CNI_IFNAME: 'eth0',
      CNI_ARGS: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod};K8S_POD_UID=${id}`,
    });
    const r1 = await runPlugin(env('uid-a', 'echo-1'), conf, { net: fakeNet });
    assert.equal(r1.exitCode, 0, r1.stdout);
    assert.equal(JSON.parse(r1.stdout).ips[0].address, '10.244.1.1/32');
    const r2 = await runPlugin(env('uid-b', 'curl-1'), conf, { net: fakeNet });
    assert.equal(JSON.parse(r2.stdout).ips[0].address, '10.244.1.2/32');
    const client = new AgentClient(testAgentConfig(dir).socketPath);
    const eps = await client.endpoints();
    assert.deepEqual(
      eps.map((e) => [e.podName, e.ip, e.identity, e.state]),
      [
        ['echo-1', '10.244.1.1', 0x10100, 'ready'],
        ['curl-1', '10.244.1.2', 0x10200, 'ready'],
      ],
    );
    await agent.ipcache.whenIdle();
    await agent.dpEndpoints.whenIdle();
    await agent.ceps!.whenIdle();
    assert.equal(dp.ipcache.get('10.244.1.1/32')?.identity, 0x10100);
    assert.equal(dp.endpoints.size, 2);
    assert.ok(published.includes('upsert default/echo-1 10.244.1.1 65792'));

    // restart: same addresses and endpoints, next address is new
    server.close();
    await agent.stop();
    agent = mk(dp);
    server = await serveAgentApi(agent, testAgentConfig(dir).socketPath);
    await agent.start();
    assert.equal(agent.endpoints.list().length, 2);
    assert.equal(agent.allocate({ containerId: 'uid-c', ifName: 'eth0' }).ip, '10.244.1.3');

    const del = await runPlugin({ ...env('uid-a', 'echo-1'), CNI_COMMAND: 'DEL' }, conf, {
      net: fakeNet,
    });
    assert.equal(del.exitCode, 0, del.stdout);
    await agent.ipcache.whenIdle();
    await agent.ceps!.whenIdle();
    assert.equal(dp.ipcache.has('10.244.1.1/32'), false);
    assert.ok(published.includes('delete default/echo-1'));
    assert.equal(agent.ipam.get('uid-a'), undefined);
    const st = await client.status();
    assert.equal(st.counts.endpoints, 1);
    assert.equal(st.datapath, 'fake');
  } finally {
    server.close();
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('nodes become routes and ipcache entries; services reconcile; ipcache precedence', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-agent-'));
  const dp = new FakeDatapath();
  const agent = new Agent(testAgentConfig(dir), { datapath: dp });
  try {
    await agent.start();
    agent.setNodes('local', [
      { name: 'c1-control-plane', ip: '172.30.1.10', podCIDR: '10.244.0.0/24' },
      { name: 'c1-worker', ip: '172.30.1.11', podCIDR: '10.244.1.0/24' },
      { name: 'c1-worker2', ip: '172.30.1.12', podCIDR: '10.244.2.0/24' },
    ]);
    agent.setNodes('cluster2', [
      { name: 'c2-worker', ip: '172.30.2.11', podCIDR: '10.245.1.0/24', clusterId: 2 },
    ]);
    await agent.routes.whenIdle();
    assert.deepEqual([...dp.routes.keys()].sort(), [
      '10.244.0.0/24',
      '10.244.2.0/24',
      '10.245.1.0/24',
    ]);
    assert.equal(dp.routes.get('10.245.1.0/24')?.clusterId, 2);
    await agent.ipcache.whenIdle();
    assert.equal(dp.ipcache.get('172.30.1.11/32')?.identity, ReservedIdentity.host);
    assert.equal(dp.ipcache.get('172.30.1.12/32')?.identity, ReservedIdentity.remoteNode);

    agent.setIPCacheSource('remote:cluster2', [
      { prefix: '10.245.1.5/32', identity: 0x20100, hostIP: '172.30.2.11' },
    ]);
    agent.setIPCacheSource('k8s', [{ prefix: '10.245.1.5/32', identity: 0x99 }]);
    await agent.ipcache.whenIdle();
    assert.equal(dp.ipcache.get('10.245.1.5/32')?.identity, 0x99, 'k8s outranks remote');
    agent.setIPCacheSource('k8s', []);
    await agent.ipcache.whenIdle();
    assert.equal(dp.ipcache.get('10.245.1.5/32')?.identity, 0x20100, 'falls back to remote');

    const svc = {
      frontend: { ip: '10.96.0.10', port: 53, protocol: 'UDP' as const },
      backends: [{ ip: '172.30.1.10', port: 53, clusterId: 1, ready: true }],
      algorithm: 'random' as const,
    };
    agent.setServices([svc]);
    await agent.services.whenIdle();
    assert.equal(dp.services.size, 1);
    agent.setServices([]);
    await agent.services.whenIdle();
    assert.equal(dp.services.size, 0);
    agent.setNodes('cluster2', []);
    await agent.routes.whenIdle();
    assert.equal(dp.routes.has('10.245.1.0/24'), false);
    assert.equal(agent.status().health, 'OK');
  } finally {
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('address GC releases pods that no longer exist, never live ones', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-agent-'));
  const agent = new Agent(testAgentConfig(dir), { datapath: new FakeDatapath() });
  try {
    await agent.start();
    const a = agent.allocate({
      containerId: 'uid-a',
      ifName: 'eth0',
      podNamespace: 'default',
      podName: 'alive',
    });
    const b = agent.allocate({
      containerId: 'uid-b',
      ifName: 'eth0',
      podNamespace: 'default',
      podName: 'gone',
    });
    await agent.registerEndpoint({
      containerId: 'uid-b',
      ifName: 'eth0',
      podNamespace: 'default',
      podName: 'gone',
      ip: b.ip,
      hostIfName: b.hostIfName,
    });
    const removed: string[] = [];
    assert.deepEqual(
      await agent.collectGarbage(() => false, 60_000),
      [],
      'young allocations are left alone',
    );
    const released = await agent.collectGarbage(
      (_ns, name) => name === 'alive',
      0,
      async (ifn) => void removed.push(ifn),
    );
    assert.deepEqual(released, [b.ip]);
    assert.deepEqual(removed, [b.hostIfName]);
    assert.equal(agent.ipam.get('uid-a')?.ip, a.ip);
    assert.equal(agent.ipam.get('uid-b'), undefined);
    assert.equal(agent.endpoints.get('uid-b'), undefined);
  } finally {
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a policy's CIDR prefixes reach the ipcache with node-local identities; a restart keeps their numbers", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-agent-'));
  const dp = new FakeDatapath();
  const policy = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'to-net', namespace: 'default' },
    spec: {
      podSelector: {},
      policyTypes: ['Egress'],
      egress: [{ to: [{ ipBlock: { cidr: '192.0.2.0/24', except: ['192.0.2.128/25'] } }] }],
    },
  };
  let agent = new Agent(testAgentConfig(dir), { datapath: dp });
  try {
    await agent.start();
    agent.policy.upsertPolicy(policy);
    await agent.ipcache.whenIdle();
    const wide = dp.ipcache.get('192.0.2.0/24')?.identity ?? 0;
    const except = dp.ipcache.get('192.0.2.128/25')?.identity ?? 0;
    assert.ok(wide > 1 << 24 && except > 1 << 24 && wide !== except, `${wide} ${except}`);
    await agent.stop();
    // a new agent on the same datapath state: the identities are read back, not renumbered
    // (the Linux datapath reads its pinned ipcache back; the fake is given the same)
    const withList = Object.assign(dp, { listIPCache: () => [...dp.ipcache.values()] });
    agent = new Agent(testAgentConfig(dir), { datapath: withList, holdPolicy: true });
    await agent.start();
    agent.policy.upsertPolicy({
      ...policy,
      spec: { ...policy.spec, egress: [{ to: [{ ipBlock: { cidr: '192.0.2.128/25' } }] }] },
    });
    agent.policy.release();
    await agent.ipcache.whenIdle();
    assert.equal(dp.ipcache.get('192.0.2.128/25')?.identity, except, 'kept its number');
    assert.equal(dp.ipcache.has('192.0.2.0/24'), false, 'no policy names it any more');
  } finally {
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a restarted agent writes no policy before the mesh delivered the remote identities (bounded wait)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-agent-'));
  const L = (app: string, cluster: string) =>
    `k8s:app=${app};k8s:io.cilium.k8s.policy.cluster=${cluster};k8s:io.kubernetes.pod.namespace=default`;
  const remoteClient = (2 << 16) | 256;
  const policy = {
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumNetworkPolicy',
    metadata: { name: 'from-clients', namespace: 'default' },
    spec: {
      endpointSelector: { matchLabels: { app: 'server' } },
      ingress: [
        {
          fromEndpoints: [
            {
              matchLabels: { app: 'client' },
              matchExpressions: [{ key: 'io.cilium.k8s.policy.cluster', operator: 'Exists' }],
            },
          ],
        },
      ],
    },
  };
  /** The Kubernetes sources' part: local identity, endpoint and policy listed, then released. */
  const listed = (agent: Agent) => {
    agent.policy.upsertIdentity((1 << 16) | 257, L('server', 'cluster1'));
    agent.policy.upsertEndpoint({
      id: 5,
      identity: (1 << 16) | 257,
      podNamespace: 'default',
      podName: 'server',
    });
    agent.policy.upsertPolicy(policy);
    agent.policy.release();
  };
  const settle = () => new Promise((r) => setTimeout(r, 50));
  let agent: Agent | undefined;
  try {
    // 1. The mesh delivers: the first policy written already admits the remote client.
    let dp = new FakeDatapath();
    agent = new Agent(testAgentConfig(dir), { datapath: dp, holdPolicy: true });
    await agent.start({ waitForMesh: true });
    listed(agent);
    await settle();
    assert.equal(dp.policies.size, 0, 'sources listed, mesh not synced: nothing written');
    assert.deepEqual(agent.policy.heldBy, ['mesh']);
    agent.policy.setClusterIdentities(
      'cluster2',
      new Map([[remoteClient, L('client', 'cluster2')]]),
    );
    agent.meshSynced();
    await agent.policy.idle();
    const entries = dp.policies.get(5)?.ingress.entries ?? [];
    assert.ok(
      entries.some((e) => e.identity === remoteClient),
      `remote client admitted in the first write: ${JSON.stringify(entries)}`,
    );
    assert.equal(
      dp.log.filter((l) => l.startsWith('upsertEndpointPolicy')).length,
      1,
      'one write, with the remote identity',
    );
    await agent.stop();

    // 2. The mesh never syncs: policy is written after the bounded wait, without it.
    dp = new FakeDatapath();
    agent = new Agent(testAgentConfig(dir), { datapath: dp, holdPolicy: true });
    const t0 = performance.now();
    await agent.start({ waitForMesh: true, policyMeshTimeoutMs: 2000 });
    listed(agent);
    await settle();
    if (performance.now() - t0 < 1900)
      assert.equal(dp.policies.size, 0, 'still waiting for the mesh');
    for (let i = 0; i < 200 && agent.policy.holding; i++)
      await new Promise((r) => setTimeout(r, 50));
    assert.ok(performance.now() - t0 >= 1990, 'not before the bound');
    await agent.policy.idle();
    assert.equal(agent.policy.holding, false);
    assert.equal(dp.policies.get(5)?.ingress.enforced, true, 'written after the timeout');
    await agent.stop();

    // 3. Without a mesh (waitForMesh false) only the sources gate holds.
    dp = new FakeDatapath();
    agent = new Agent(testAgentConfig(dir), { datapath: dp, holdPolicy: true });
    await agent.start();
    listed(agent);
    await agent.policy.idle();
    assert.equal(dp.policies.get(5)?.ingress.enforced, true);
  } finally {
    await agent?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('node sources: a CIDR or node IP in two sources resolves as before (first route, last IP); removal falls back', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-agent-'));
  const dp = new FakeDatapath();
  const agent = new Agent(testAgentConfig(dir), { datapath: dp });
  try {
    await agent.start();
    agent.setNodeSources([
      ['c2', [{ name: 'a', ip: '172.30.2.1', podCIDR: '10.50.0.0/24', clusterId: 2 }]],
      ['c3', [{ name: 'b', ip: '172.30.3.1', podCIDR: '10.50.0.0/24', clusterId: 3 }]],
    ]);
    // the same node IP in two sources: the later source's entry (the local host here)
    agent.setNodes('c4', [{ name: 'x', ip: '172.30.1.11', clusterId: 4 }]);
    agent.setNodes('local', [{ name: 'c1-worker', ip: '172.30.1.11' }]);
    await agent.routes.whenIdle();
    await agent.ipcache.whenIdle();
    assert.equal(dp.routes.get('10.50.0.0/24')?.nodeIP, '172.30.2.1', 'the first source keeps it');
    assert.equal(dp.ipcache.get('172.30.1.11/32')?.identity, ReservedIdentity.host);
    agent.setNodes('c2', []);
    await agent.routes.whenIdle();
    await agent.ipcache.whenIdle();
    assert.equal(dp.routes.get('10.50.0.0/24')?.nodeIP, '172.30.3.1', 'falls back to c3');
    assert.equal(dp.ipcache.has('172.30.2.1/32'), false);
    agent.setNodes('c3', [{ name: 'b', ip: '172.30.3.2', podCIDR: '10.50.0.0/24', clusterId: 3 }]);
    await agent.routes.whenIdle();
    await agent.ipcache.whenIdle();
    assert.equal(dp.routes.get('10.50.0.0/24')?.nodeIP, '172.30.3.2', 'a moved node');
    assert.equal(dp.ipcache.has('172.30.3.1/32'), false);
    assert.equal(dp.ipcache.get('172.30.3.2/32')?.identity, ReservedIdentity.remoteNode);
    agent.setNodes('local', []);
    await agent.ipcache.whenIdle();
    assert.equal(dp.ipcache.get('172.30.1.11/32')?.identity, ReservedIdentity.remoteNode);
    // remote sources: the first set wins a prefix both have; the other takes over when it goes
    agent.setIPCacheSource('remote:c2', [{ prefix: '10.60.0.1/32', identity: 0x20001 }]);
    agent.setIPCacheSource('remote:c3', [{ prefix: '10.60.0.1/32', identity: 0x30001 }]);
    await agent.ipcache.whenIdle();
    assert.equal(dp.ipcache.get('10.60.0.1/32')?.identity, 0x20001);
    agent.updateIPCacheEntry('remote:c2', '10.60.0.1/32', undefined);
    await agent.ipcache.whenIdle();
    assert.equal(dp.ipcache.get('10.60.0.1/32')?.identity, 0x30001);
    agent.setIPCacheSource('remote:c3', []);
    await agent.ipcache.whenIdle();
    assert.equal(dp.ipcache.has('10.60.0.1/32'), false);
  } finally {
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('many clusters arriving one push at a time cost work linear in their nodes and entries', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-agent-'));
  const dp = new FakeDatapath();
  const agent = new Agent(testAgentConfig(dir), { datapath: dp });
  const clusters = 200;
  const perCluster = 20;
  let routeSets = 0;
  let mapGets = 0;
  const realSet = agent.routes.set.bind(agent.routes);
  agent.routes.set = (v) => {
    routeSets++;
    realSet(v);
  };
  const realGet = Map.prototype.get;
  try {
    await agent.start();
    Map.prototype.get = function (this: Map<unknown, unknown>, k: unknown) {
      mapGets++;
      return realGet.call(this, k);
    };
    for (let c = 0; c < clusters; c++) {
      const nodes = [];
      const entries = [];
      for (let i = 0; i < perCluster; i++) {
        const k = c * perCluster + i;
        nodes.push({
          name: `n${i}`,
          ip: `172.31.${k >> 8}.${k & 255}`,
          podCIDR: `10.${100 + (k >> 8)}.${k & 255}.0/24`,
          clusterId: c + 2,
        });
        entries.push({ prefix: `10.200.${k >> 8}.${k & 255}/32`, identity: 0x10000 + k });
      }
      agent.setIPCacheSource(`remote:c${c}`, entries);
      agent.setNodeSources([[`c${c}`, nodes]]);
    }
    Map.prototype.get = realGet;
    const total = clusters * perCluster;
    // each route set once (a full recompute per push: ~clusters/2 times each)
    assert.equal(routeSets, total);
    // a few map look-ups per node and entry (looking at every source per entry: ~clusters/2 each)
    assert.ok(
      mapGets < 30 * total,
      `${mapGets} Map.get calls for ${total} nodes + ${total} entries`,
    );
    await agent.routes.whenIdle();
    await agent.ipcache.whenIdle();
    assert.equal(dp.routes.size, total);
    assert.equal(dp.ipcache.size, 2 * total);
  } finally {
    Map.prototype.get = realGet;
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a datapath with applyIPCache gets the ipcache in batches; a refused entry is retried alone', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-agent-'));
  const calls: Array<{ upserts: number; deletes: number }> = [];
  let refuse: string | undefined = '10.200.0.7/32';
  let singles = 0;
  class BatchDatapath extends FakeDatapath {
    async applyIPCache(changes: { upserts: IPCacheEntry[]; deletes: string[] }) {
      calls.push({ upserts: changes.upserts.length, deletes: changes.deletes.length });
      const failed = new Map<string, Error>();
      for (const e of changes.upserts) {
        if (e.prefix === refuse) failed.set(e.prefix, new Error('refused once'));
        else this.ipcache.set(e.prefix, { ...e });
      }
      for (const p of changes.deletes) this.ipcache.delete(p);
      if (failed.size) refuse = undefined;
      return failed;
    }
    override async upsertIPCache(entry: IPCacheEntry): Promise<void> {
      singles++;
      await super.upsertIPCache(entry);
    }
  }
  const dp = new BatchDatapath();
  const agent = new Agent(testAgentConfig(dir), { datapath: dp });
  try {
    await agent.start();
    await agent.ipcache.whenIdle();
    calls.length = 0;
    const n = 10_000;
    const entries = Array.from({ length: n }, (_, k) => ({
      prefix: `10.200.${k >> 8}.${k & 255}/32`,
      identity: 0x20000 + k,
    }));
    agent.setIPCacheSource('remote:c1', entries);
    await agent.ipcache.whenIdle();
    // retried after the backoff
    for (let i = 0; i < 100 && !dp.ipcache.has('10.200.0.7/32'); i++)
      await new Promise((r) => setTimeout(r, 20));
    for (const e of entries) assert.equal(dp.ipcache.get(e.prefix)?.identity, e.identity, e.prefix);
    assert.equal(singles, 0, 'no single upserts');
    // 10,000 entries in 4,096-entry batches, then the refused one alone
    assert.deepEqual(
      calls.map((c) => c.upserts),
      [4096, 4096, 1808, 1],
    );
    // removing the source deletes in batches too
    calls.length = 0;
    agent.setIPCacheSource('remote:c1', []);
    await agent.ipcache.whenIdle();
    assert.equal(entries.filter((e) => dp.ipcache.has(e.prefix)).length, 0, 'every entry deleted');
    assert.deepEqual(
      calls.map((c) => c.deletes),
      [4096, 4096, 1808],
    );
  } finally {
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

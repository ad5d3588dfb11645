/**
 * An agent restarted while the mesh store is unreachable keeps the remote
 * state it adopted from the kernel (routes, ipcache, remote backends) until
 * the mesh source has synced, while local leftovers still go once the
 * Kubernetes sources have synced.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FakeDatapath } from '../datapath/fake.js';
import type { ServiceEntry } from '../datapath/types.js';
import { Agent } from './agent.js';
import { testAgentConfig } from './testing.js';

const svc = (backends: string[]): ServiceEntry => ({
  frontend: { ip: '10.96.0.50', port: 80, protocol: 'TCP' },
  backends: backends.map((ip) => ({
    ip,
    port: 8080,
    clusterId: ip.startsWith('10.245.') ? 2 : 1,
    ready: true,
  })),
  algorithm: 'random',
});

const until = async (what: string, cond: () => boolean) => {
  const end = Date.now() + 3000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

test('a restarted agent keeps adopted remote state until the mesh source synced', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-mesh-outage-'));
  // The kernel as the previous agent left it (pinned maps, routes).
  const dp = new FakeDatapath();
  const localRoute = { podCIDR: '10.244.2.0/24', nodeIP: '172.30.1.12', clusterId: 1 };
  const goneLocal = { podCIDR: '10.244.7.0/24', nodeIP: '172.30.1.17', clusterId: 1 };
  const remoteRoute = { podCIDR: '10.245.1.0/24', nodeIP: '172.30.2.11', clusterId: 2 };
  for (const r of [localRoute, goneLocal, remoteRoute]) dp.routes.set(r.podCIDR, r);
  const remotePod = { prefix: '10.245.1.10/32', identity: (2 << 16) | 256, hostIP: '172.30.2.11' };
  const goneLocalPod = { prefix: '10.244.2.99/32', identity: (1 << 16) | 300 };
  for (const e of [remotePod, goneLocalPod]) dp.ipcache.set(e.prefix, e);
  const global = svc(['10.244.2.10', '10.245.1.10']);
  dp.services.set('10.96.0.50:80/TCP', global);
  const extras = Object.assign(dp, {
    listNodeRoutes: async () => [...dp.routes.values()],
    listIPCache: () => [...dp.ipcache.values()],
    listServices: async () => [...dp.services.values()],
  });
  const agent = new Agent(testAgentConfig(dir), { datapath: extras, datapathName: 'fake' });
  try {
    await agent.start({ waitFor: ['nodes', 'services'], waitForMesh: true });
    // Kubernetes answers: the local nodes and the service with its local backend.
    agent.setNodes('local', [
      { name: 'c1-worker', ip: '172.30.1.11', podCIDR: '10.244.1.0/24' },
      { name: 'c1-worker2', ip: '172.30.1.12', podCIDR: '10.244.2.0/24' },
    ]);
    agent.setServices([svc(['10.244.2.10'])]);
    agent.sourceSynced('nodes');
    agent.sourceSynced('services');
    // The mesh store is down: nothing remote has been delivered.
    await until('local leftovers removed', () => !dp.routes.has(goneLocal.podCIDR));
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(
      dp.routes.has(remoteRoute.podCIDR),
      'remote route kept while the mesh is unreachable',
    );
    assert.ok(dp.ipcache.has(remotePod.prefix), 'remote ipcache entry kept');
    assert.ok(!dp.ipcache.has(goneLocalPod.prefix), 'a stale local ipcache entry goes');
    assert.deepEqual(
      dp.services
        .get('10.96.0.50:80/TCP')
        ?.backends.map((b) => b.ip)
        .sort(),
      ['10.244.2.10', '10.245.1.10'],
      'remote backends kept',
    );
    // The mesh answers with an empty remote cluster list: now remote leftovers go.
    agent.meshSynced();
    await until('remote leftovers removed', () => !dp.routes.has(remoteRoute.podCIDR));
    await until('remote ipcache removed', () => !dp.ipcache.has(remotePod.prefix));
    await until(
      'remote backend removed',
      () => dp.services.get('10.96.0.50:80/TCP')?.backends.length === 1,
    );
  } finally {
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * Two clustermesh-apiservers on real etcd processes (127.0.0.1, no root):
 * mutual TLS only, etcd roles for remotes, kvstoremesh mirroring, stale on
 * a stopped remote etcd, resync without leftovers, drain on an ID change.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEtcd, freePort, type EtcdServer } from '../../kvstore/etcd-server.js';
import { EtcdKVStore } from '../../kvstore/etcd.js';
import { isKVStoreError } from '../../kvstore/errors.js';
import {
  certificateInfo,
  createCA,
  issueClientCert,
  verifyCertificate,
  writeSecretFile,
} from '../certs.js';
import { clusterDir } from '../../util/paths.js';
import { serveMetrics } from '../../util/metrics-server.js';
import { metricValue, scrapeMetrics } from '../../observe/scrape.js';
import { createApiserverMetrics, createKVStoreMeshMetrics } from '../metrics.js';
import {
  meshEtcdOptions,
  prepareMesh,
  connectDirection,
  disconnectDirection,
} from '../../install/clustermesh/setup.js';
import { loopbackMeshOptions } from '../../install/clustermesh/testing.js';
import {
  meshCAPaths,
  meshDir,
  meshPaths,
  readMeshConfig,
  remotePaths,
  writeMeshConfig,
  type MeshConfig,
} from '../mesh-files.js';
import { MeshApiServer, fetchMeshStatus } from './server.js';
import { fakeK8sNode, fakeSources } from '../testing.js';
import { classifyMeshError } from '../errors.js';
import { MeshStateSource } from '../agent-source.js';
import { writeClusterMeshConfig } from '../clustermesh-config.js';

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'etcd') out.push(...listFiles(p));
    } else if (e.isFile()) out.push(p);
  }
  return out;
}

async function until(
  what: string,
  cond: () => Promise<boolean> | boolean,
  timeoutMs = 15_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await cond()) return;
    } catch {
      // retry
    }
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface TestCluster {
  lab: string;
  name: string;
  id: number;
  config: MeshConfig;
  etcd: EtcdServer | undefined;
  server: MeshApiServer | undefined;
  fakes: ReturnType<typeof fakeSources>['fakes'];
  sources: ReturnType<typeof fakeSources>['sources'];
}

describe('clustermesh-apiserver on real etcd', { timeout: 120_000 }, () => {
  let home: string;
  const oldHome = process.env.TENDRIL_HOME;
  const clusters: TestCluster[] = [];
  const clients: EtcdKVStore[] = [];

  async function makeCluster(lab: string, name: string, id: number): Promise<TestCluster> {
    const port = await freePort();
    const url = `https://127.0.0.1:${port}`;
    const { config } = await prepareMesh(
      loopbackMeshOptions(lab, name, id, url, {
        podCIDRs: [`10.${243 + id}.0.0/16`],
        nodeCIDRs: [`172.30.${id}.0/24`],
      }),
    );
    const { fakes, sources } = fakeSources();
    fakes.nodes.add(
      fakeK8sNode(`${name}-worker`, `172.30.${id}.11`, `10.${243 + id}.1.0/24`),
      fakeK8sNode(`${name}-worker2`, `172.30.${id}.12`, `10.${243 + id}.2.0/24`),
    );
    const c: TestCluster = {
      lab,
      name,
      id,
      config,
      etcd: undefined,
      server: undefined,
      fakes,
      sources,
    };
    clusters.push(c);
    await startClusterEtcd(c);
    await startServer(c);
    return c;
  }

  async function startClusterEtcd(c: TestCluster): Promise<void> {
    const o = meshEtcdOptions(c.config);
    // Two etcds on one host: free peer ports, no fixed metrics port.
    c.etcd = await startEtcd({
      ...o,
      dataDir: meshPaths(c.lab).etcdData, // on disk, in the test's home (removed with it)
      peerPort: undefined,
      extraArgs: [],
      logFile: join(meshPaths(c.lab).dir, 'etcd.log'),
    });
  }

  async function startServer(c: TestCluster): Promise<void> {
    c.server = new MeshApiServer({
      meshDir: meshDir(c.lab),
      sources: c.sources,
      scanIntervalMs: 200,
      heartbeatIntervalMs: 500,
    });
    await c.server.start({ etcdWaitMs: 10_000 });
  }

  async function client(
    c: TestCluster,
    tls: { ca: string; cert?: string; key?: string },
  ): Promise<EtcdKVStore> {
    const s = new EtcdKVStore({
      endpoints: c.config.accessEndpoints,
      tls,
      dialTimeoutMs: 1500,
      requestTimeoutMs: 3000,
    });
    clients.push(s);
    return s;
  }

  let c1: TestCluster;
  let c2: TestCluster;

  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'tendril-mesh-it-'));
    process.env.TENDRIL_HOME = home;
    c1 = await makeCluster('lab1', 'cluster1', 1);
    c2 = await makeCluster('lab2', 'cluster2', 2);
  });

  after(async () => {
    for (const s of clients) await s.close().catch(() => {});
    for (const c of clusters) {
      await c.server?.stop().catch(() => {});
      await c.etcd?.stop().catch(() => {});
    }
    if (oldHome === undefined) delete process.env.TENDRIL_HOME;
    else process.env.TENDRIL_HOME = oldHome;
    rmSync(home, { recursive: true, force: true });
  });

  test('each cluster exports its own state and reports healthy', async () => {
    const st = await fetchMeshStatus('lab1');
    assert.equal(st.cluster.name, 'cluster1');
    assert.equal(st.etcd.ok, true);
    await until('synced', async () =>
      Object.values((await fetchMeshStatus('lab1')).syncer!.synced).every(Boolean),
    );
    const p = meshPaths('lab1');
    const root = await client(c1, {
      ca: await readFile(p.caCert, 'utf8'),
      cert: await readFile(p.rootCert, 'utf8'),
      key: await readFile(p.rootKey, 'utf8'),
    });
    assert.ok(await root.get('cilium/state/nodes/v1/cluster1/cluster1-worker'));
    assert.ok(await root.get('cilium/cluster-config/cluster1'));
    assert.ok(await root.get('cilium/synced/cluster1/cilium/state/nodes/v1'));
  });

  test("etcd's quota alarm is reported in the apiserver's status (and clears)", async () => {
    const root = await rootClient(c1);
    const st = await root.client.maintenance.status();
    const memberID = st.header.member_id;
    await root.client.maintenance.alarm({ action: 'Activate', memberID, alarm: 'Nospace' });
    try {
      const s1 = await fetchMeshStatus('lab1');
      assert.equal(s1.etcd.ok, false);
      assert.deepEqual(s1.etcd.alarms, ['Nospace']);
      assert.match(s1.etcd.error ?? '', /alarm Nospace raised .*quota is exhausted/i);
    } finally {
      await root.client.maintenance.alarm({ action: 'Deactivate', memberID, alarm: 'Nospace' });
    }
    const s2 = await fetchMeshStatus('lab1');
    assert.equal(s2.etcd.ok, true, s2.etcd.error);
    assert.deepEqual(s2.etcd.alarms, []);
    assert.ok((s2.etcd.dbSizeBytes ?? 0) > 0);
  });

  test('mutual TLS only: no certificate, or one from another CA, is refused', async () => {
    const ca = await readFile(meshPaths('lab1').caCert, 'utf8');
    const noCert = await client(c1, { ca });
    const e1 = await noCert.get('cilium/.heartbeat').then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(isKVStoreError(e1), `refused without a certificate: ${String(e1)}`);
    assert.equal(classifyMeshError(e1), 'certificate-rejected', (e1 as Error).message);
    const foreign = await issueClientCert(await createCA(), 'root');
    const bad = await client(c1, { ca, cert: foreign.certPEM, key: foreign.keyPEM });
    const e2 = await bad.get('cilium/.heartbeat').then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.equal(classifyMeshError(e2), 'certificate-rejected', String(e2));
  });

  test('connect: each side mirrors the other; a remote certificate reads cilium/state/ but writes nothing', async () => {
    await connectDirection('lab1', 'lab2');
    await connectDirection('lab2', 'lab1');
    await until('cluster1 mirrors cluster2', async () => {
      const r = (await fetchMeshStatus('lab1')).kvstoremesh.remotes[0];
      return r?.connected === true && r.synced && r.counts.nodes === 2;
    });
    await until(
      'cluster2 mirrors cluster1',
      async () => (await fetchMeshStatus('lab2')).kvstoremesh.remotes[0]?.synced === true,
    );
    const st = await fetchMeshStatus('lab2');
    assert.deepEqual(st.readers, ['cluster1']);

    // cluster1's credentials for cluster2 (CN remote-cluster1).
    const rp = remotePaths('lab1', 'cluster2');
    const remote = await client(c2, {
      ca: await readFile(rp.caCert, 'utf8'),
      cert: await readFile(rp.clientCert, 'utf8'),
      key: await readFile(rp.clientKey, 'utf8'),
    });
    assert.ok(await remote.get('cilium/state/nodes/v1/cluster2/cluster2-worker'), 'may read state');
    assert.ok(await remote.get('cilium/cluster-config/cluster2'), 'may read cluster config');
    assert.ok(await remote.get('cilium/.heartbeat'), 'may read heartbeat');
    for (const [what, op] of [
      ['write state', () => remote.put('cilium/state/nodes/v1/cluster2/evil', '{}')],
      ['delete state', () => remote.delete('cilium/state/nodes/v1/cluster2/cluster2-worker')],
      ['write config', () => remote.put('cilium/cluster-config/cluster2', '{"id":9}')],
      ['read the cache', () => remote.list('cilium/cache/')],
    ] as const) {
      const err = await (op as () => Promise<unknown>)().then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(
        isKVStoreError(err, 'KVSTORE_PERMISSION_DENIED'),
        `${what} must be denied, got ${String(err)}`,
      );
    }
    assert.ok(await remote.get('cilium/state/nodes/v1/cluster2/cluster2-worker'), 'still there');
  });

  test('metrics of a running apiserver and its kvstoremesh, scraped as Prometheus text', async () => {
    const server = c1.server!;
    const api = await serveMetrics(
      createApiserverMetrics({ status: () => server.syncerStatus() }),
      '127.0.0.1:0',
    );
    const mesh = await serveMetrics(
      createKVStoreMeshMetrics({ status: () => server.kvstoremeshStatus() }),
      '127.0.0.1:0',
    );
    try {
      const a = await scrapeMetrics(api.url);
      assert.equal(
        metricValue(a, 'tendril_clustermesh_apiserver_kvstore_objects', { kind: 'nodes' }),
        (await fetchMeshStatus('lab1')).syncer!.counts.nodes,
      );
      assert.equal(
        metricValue(a, 'tendril_clustermesh_apiserver_kvstore_synced', { kind: 'nodes' }),
        1,
      );
      assert.equal(metricValue(a, 'tendril_clustermesh_apiserver_sync_errors'), 0);
      const m = await scrapeMetrics(mesh.url);
      assert.equal(metricValue(m, 'tendril_kvstoremesh_remote_clusters'), 1);
      assert.equal(metricValue(m, 'tendril_kvstoremesh_remote_clusters_ready'), 1);
      assert.equal(
        metricValue(m, 'tendril_kvstoremesh_entries', {
          source_cluster: 'cluster2',
          kind: 'nodes',
        }),
        2,
      );
    } finally {
      await api.close();
      await mesh.close();
    }
  });

  test("trust per cluster: cluster1's own certificates are refused by cluster2's etcd; its grant is read-only; no CA key crosses", async () => {
    const p1 = meshPaths('lab1');
    const ca2 = await readFile(meshPaths('lab2').caCert, 'utf8');
    const ca1 = await readFile(p1.caCert, 'utf8');
    assert.notEqual(ca1, ca2, 'each cluster has its own CA');
    // cluster1's root and agent certificates, presented to cluster2's etcd
    for (const [who, certPath, keyPath] of [
      ['root', p1.rootCert, p1.rootKey],
      ['local-agent', p1.agentCert, p1.agentKey],
    ] as const) {
      const c = await client(c2, {
        ca: ca2,
        cert: await readFile(certPath, 'utf8'),
        key: await readFile(keyPath, 'utf8'),
      });
      const err = await c.list('cilium/').then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.equal(
        classifyMeshError(err),
        'certificate-rejected',
        `cluster1's ${who} certificate must be refused by cluster2: ${String(err)}`,
      );
      const w = await c.put('cilium/state/nodes/v1/cluster2/evil', '{}').then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(isKVStoreError(w), `cluster1's ${who} certificate must not write: ${String(w)}`);
    }
    // the grant: a user of its own (remote-cluster1.<grant>), read-only
    const rp = remotePaths('lab1', 'cluster2');
    const granted = certificateInfo(await readFile(rp.clientCert, 'utf8'));
    assert.match(granted.commonName, /^remote-cluster1\.[0-9a-f]{8}$/);
    assert.deepEqual((await fetchMeshStatus('lab2')).readerUsers, [granted.commonName]);
    verifyCertificate(await readFile(rp.clientCert, 'utf8'), ca2, { purpose: 'client' });
    assert.equal(
      await readFile(rp.caCert, 'utf8'),
      ca2,
      "cluster1 trusts cluster2's server by cluster2's CA",
    );
    // cluster1's grant on cluster2 opens nothing on cluster1's own etcd
    const crossed = await client(c1, {
      ca: ca1,
      cert: await readFile(rp.clientCert, 'utf8'),
      key: await readFile(rp.clientKey, 'utf8'),
    });
    const e3 = await crossed.list('cilium/state/').then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.equal(classifyMeshError(e3), 'certificate-rejected', String(e3));
    // no CA key of cluster2 (nor any CA key) under cluster1's directories, no shared mesh CA
    const ca2Key = await readFile(meshCAPaths('lab2').caKey, 'utf8');
    const files = listFiles(clusterDir('lab1'));
    assert.ok(files.length > 5, files.join(', '));
    for (const f of files) {
      if (f.endsWith('.sock')) continue;
      const text = readFileSync(f, 'utf8');
      assert.ok(!text.includes(ca2Key.trim().split('\n')[1]!), `${f} holds cluster2's CA key`);
      if (/PRIVATE KEY/.test(text) && f !== meshCAPaths('lab1').caKey) {
        assert.ok(!/ca\.key$/.test(f), `a CA key outside pki/: ${f}`);
      }
    }
    assert.equal(existsSync(join(home, 'mesh')), false, 'no mesh-wide CA');
    // what cluster2 declared at connect is in cluster1's record of it; a node outside is refused and named
    const rec = JSON.parse(await readFile(rp.record, 'utf8')) as { podCIDRs?: string[] };
    assert.deepEqual(rec.podCIDRs, ['10.245.0.0/16']);
    c2.fakes.nodes.add(fakeK8sNode('cluster2-stray', '172.30.2.40', '10.99.0.0/24'));
    await until('stray node refused by cluster1', async () => {
      const r = (await fetchMeshStatus('lab1')).kvstoremesh.remotes[0];
      return (r?.rejected?.recent ?? []).some(
        (x) =>
          x.key === 'cilium/state/nodes/v1/cluster2/cluster2-stray' &&
          /outside the pod CIDRs cluster2 declared/.test(x.reason),
      );
    });
    const root1 = await rootClient(c1);
    assert.equal(await root1.get('cilium/cache/nodes/v1/cluster2/cluster2-stray'), undefined);
    c2.fakes.nodes.del(fakeK8sNode('cluster2-stray', '', ''));
    // modes: directories 0700, keys 0600
    for (const f of files) {
      if (/\.key$/.test(f)) assert.equal(statSync(f).mode & 0o777, 0o600, f);
    }
    for (const d of [
      meshPaths('lab1').dir,
      meshCAPaths('lab1').dir,
      remotePaths('lab1', 'cluster2').dir,
    ])
      assert.equal(statSync(d).mode & 0o777, 0o700, d);
  });

  test("agents follow the mesh from their own cluster's etcd, read-only", async () => {
    const p = meshPaths('lab1');
    const tls = {
      ca: await readFile(p.caCert, 'utf8'),
      cert: await readFile(p.agentCert, 'utf8'),
      key: await readFile(p.agentKey, 'utf8'),
    };
    // the agents' clustermesh-config directory: one etcd config per remote, all naming
    // this cluster's own etcd (kvstoremesh) with the local-agent certificate
    const configDir = join(home, 'clustermesh-config-lab1');
    writeClusterMeshConfig(configDir, [
      {
        name: 'cluster2',
        endpoints: c1.config.accessEndpoints,
        trustedCAFile: p.caCert,
        certFile: p.agentCert,
        keyFile: p.agentKey,
      },
    ]);
    const src = new MeshStateSource({
      configDir,
      localCluster: 'cluster1',
      includeLocal: true,
      pollMs: 100,
    });
    const seen: string[] = [];
    src.on(
      (ev) => ev.type === 'upsert' && ev.kind === 'nodes' && seen.push(`${ev.cluster}/${ev.name}`),
    );
    src.start();
    try {
      await until(
        'agent sees cluster2 ready',
        () => src.state?.readyClusters().includes('cluster2') === true,
      );
      assert.ok(seen.includes('cluster2/cluster2-worker'));
      assert.ok(seen.includes('cluster1/cluster1-worker'), 'own cluster too (includeLocal)');
      assert.equal(
        src.state!.cluster('cluster2')!.nodes.get('cluster2-worker2')?.podCIDRs[0],
        '10.245.2.0/24',
      );
      const agent = await client(c1, tls);
      const err = await agent.put('cilium/cache/nodes/v1/cluster2/evil', '{}').then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(
        isKVStoreError(err, 'KVSTORE_PERMISSION_DENIED'),
        `agents may not write: ${String(err)}`,
      );
    } finally {
      await src.stop();
    }
  });

  test('a client certificate the remote rejects is reported as such; connect again fixes it', async () => {
    const rp = remotePaths('lab1', 'cluster2');
    const foreign = await issueClientCert(await createCA(), 'remote-cluster1');
    const rec = JSON.parse(await readFile(rp.record, 'utf8')) as Record<string, unknown>;
    await writeSecretFile(rp.clientCert, foreign.certPEM);
    await writeSecretFile(rp.clientKey, foreign.keyPEM);
    await writeSecretFile(
      rp.record,
      JSON.stringify({ ...rec, connectedAt: new Date().toISOString() }),
    );
    await until('certificate rejected reported', async () => {
      const r = (await fetchMeshStatus('lab1')).kvstoremesh.remotes[0];
      return r?.connected === false && r.lastError?.reason === 'certificate-rejected';
    });
    const r = (await fetchMeshStatus('lab1')).kvstoremesh.remotes[0]!;
    assert.equal(r.stale, true, 'the last known state is kept meanwhile');
    assert.match(r.lastError!.hint, /tendril clustermesh connect/);
    await connectDirection('lab1', 'lab2');
    await until(
      'reconnected',
      async () => (await fetchMeshStatus('lab1')).kvstoremesh.remotes[0]?.synced === true,
    );
  });

  test('a stopped remote etcd: stale kept; restarted: resynced with nothing stale left', async () => {
    const root1 = await rootClient(c1);
    await c2.etcd!.stop();
    c2.etcd = undefined;
    await until(
      'cluster2 disconnected',
      async () => (await fetchMeshStatus('lab1')).kvstoremesh.remotes[0]?.connected === false,
    );
    const r = (await fetchMeshStatus('lab1')).kvstoremesh.remotes[0]!;
    assert.equal(r.stale, true);
    assert.equal(r.lastError?.reason, 'endpoint-unreachable', JSON.stringify(r.lastError));
    assert.equal(
      (await root1.list('cilium/cache/nodes/v1/cluster2/')).kvs.length,
      2,
      'last known state kept',
    );
    const rec = JSON.parse((await root1.get('cilium/kvstoremesh/v1/status/cluster2'))!.value) as {
      stale: boolean;
    };
    assert.equal(rec.stale, true);
    // While it is down, cluster2 loses a node and gains one (its syncer retries the writes).
    c2.fakes.nodes.del(fakeK8sNode('cluster2-worker2', '', ''));
    c2.fakes.nodes.add(fakeK8sNode('cluster2-worker3', '172.30.2.13', '10.245.3.0/24'));
    await startClusterEtcd(c2);
    await until('cluster2 resynced', async () => {
      const x = (await fetchMeshStatus('lab1')).kvstoremesh.remotes[0];
      const keys = (await root1.list('cilium/cache/nodes/v1/cluster2/')).kvs
        .map((k) => k.key)
        .sort();
      return (
        x?.connected === true &&
        x.synced &&
        !x.stale &&
        keys.join() ===
          'cilium/cache/nodes/v1/cluster2/cluster2-worker,cilium/cache/nodes/v1/cluster2/cluster2-worker3'
      );
    });
  });

  test('kvstoremesh restarted: leftovers of entries deleted meanwhile are removed after the resync', async () => {
    const root1 = await rootClient(c1);
    await c1.server!.stop();
    c2.fakes.nodes.del(fakeK8sNode('cluster2-worker3', '', ''));
    const root2 = await rootClient(c2);
    await until(
      'gone in cluster2',
      async () =>
        (await root2.get('cilium/state/nodes/v1/cluster2/cluster2-worker3')) === undefined,
    );
    assert.ok(
      await root1.get('cilium/cache/nodes/v1/cluster2/cluster2-worker3'),
      'leftover present while kvstoremesh is down',
    );
    await startServer(c1);
    await until(
      'leftover removed',
      async () =>
        (await root1.get('cilium/cache/nodes/v1/cluster2/cluster2-worker3')) === undefined,
    );
    await until(
      'synced',
      async () => (await fetchMeshStatus('lab1')).kvstoremesh.remotes[0]?.synced === true,
    );
  });

  test('a remote whose cluster ID changes is drained and reconnected', async () => {
    const root1 = await rootClient(c1);
    const deletes: string[] = [];
    const w = await root1.watchPrefix(
      'cilium/cache/nodes/v1/cluster2/',
      (ev) => ev.type === 'delete' && deletes.push(ev.key),
    );
    try {
      await c2.server!.stop();
      const cfg = readMeshConfig('lab2')!;
      await writeMeshConfig({ ...cfg, clusterId: 7 });
      await startServer(c2);
      await until('cluster2 seen with ID 7', async () => {
        const r = (await fetchMeshStatus('lab1')).kvstoremesh.remotes[0];
        return r?.clusterId === 7 && r.synced;
      });
      assert.ok(
        deletes.includes('cilium/cache/nodes/v1/cluster2/cluster2-worker'),
        `drained: ${deletes.join(', ')}`,
      );
      await until('cache rewritten with the new ID', async () => {
        const v = await root1.get('cilium/cache/nodes/v1/cluster2/cluster2-worker');
        return v !== undefined && (JSON.parse(v.value) as { clusterID: number }).clusterID === 7;
      });
    } finally {
      await w.close();
    }
  });

  test('disconnect: the grant is revoked (the certificate cluster1 held is refused), the cache drained; a reconnect makes a new grant', async () => {
    const rp = remotePaths('lab1', 'cluster2');
    const held = {
      ca: await readFile(rp.caCert, 'utf8'),
      cert: await readFile(rp.clientCert, 'utf8'),
      key: await readFile(rp.clientKey, 'utf8'),
    };
    const before = await client(c2, held);
    assert.ok(
      await before.get('cilium/state/nodes/v1/cluster2/cluster2-worker'),
      'works while connected',
    );
    const { revoked } = await disconnectDirection('lab1', 'lab2');
    assert.equal(revoked, true, 'disconnect waits for the revocation');
    const root1 = await rootClient(c1);
    await until('drained', async () => (await root1.list('cilium/cache/')).kvs.length === 0);
    assert.deepEqual((await fetchMeshStatus('lab2')).readers, []);
    assert.equal(existsSync(rp.clientKey), false, 'the client key is gone from cluster1');
    const old = await client(c2, held);
    const err = await old.get('cilium/state/nodes/v1/cluster2/cluster2-worker').then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(
      isKVStoreError(err, 'KVSTORE_PERMISSION_DENIED') ||
        classifyMeshError(err) === 'certificate-rejected',
      `the revoked certificate is refused: ${String(err)}`,
    );
    // connected again: a new grant; the certificate of the old one stays worthless
    await connectDirection('lab1', 'lab2');
    const cn = certificateInfo(await readFile(rp.clientCert, 'utf8')).commonName;
    assert.notEqual(cn, certificateInfo(held.cert).commonName);
    const again = await client(c2, held);
    const err2 = await again.get('cilium/state/nodes/v1/cluster2/cluster2-worker').then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(isKVStoreError(err2), `the old grant stays revoked: ${String(err2)}`);
    await disconnectDirection('lab1', 'lab2');
  });

  async function rootClient(c: TestCluster): Promise<EtcdKVStore> {
    const p = meshPaths(c.lab);
    return client(c, {
      ca: await readFile(p.caCert, 'utf8'),
      cert: await readFile(p.rootCert, 'utf8'),
      key: await readFile(p.rootKey, 'utf8'),
    });
  }
});

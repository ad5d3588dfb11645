/**
 * The clustermesh-apiserver's real-cluster form (--config-dir, --etcd-config,
 * --clustermesh-config, --cluster-users-config, as the rendered manifest
 * passes them) on real etcd processes (127.0.0.1, no root), beside a lab-form
 * daemon (--mesh-dir): each mirrors the other.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEtcd, freePort, type EtcdServer } from '../../kvstore/etcd-server.js';
import { meshEtcdOptions, prepareMesh, connectDirection } from '../../install/clustermesh/setup.js';
import { loopbackMeshOptions } from '../../install/clustermesh/testing.js';
import { listReaders, meshDir, meshPaths, remotePaths } from '../mesh-files.js';
import { renderRemoteEtcdConfig } from '../clustermesh-config.js';
import { fetchStatus } from '../status-api.js';
import { fakeK8sNode, fakeSources } from '../testing.js';
import { MeshApiServer, fetchMeshStatus } from './server.js';
import { configDirSource, parseClusterUsers } from './sources.js';

async function until(what: string, cond: () => Promise<boolean>, timeoutMs = 20_000) {
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

describe('parseClusterUsers', () => {
  test("reads Cilium's users.yaml into clusters and their etcd users", () => {
    assert.deepEqual(
      parseClusterUsers(
        'users:\n- name: remote-c2.1f2e\n  role: remote\n- name: remote-a1\n  role: remote\n',
        'u',
      ),
      [
        { name: 'a1', user: 'remote-a1' },
        { name: 'c2', user: 'remote-c2.1f2e' },
      ],
    );
    assert.deepEqual(parseClusterUsers('', 'u'), []);
  });
  test('a user not named remote-<cluster> is refused, naming the file', () => {
    assert.throws(
      () => parseClusterUsers('users:\n- name: root\n', '/x/users.yaml'),
      (e: Error & { code?: string }) =>
        e.code === 'CLUSTERMESH_BAD_CONFIG' && /\/x\/users\.yaml/.test(e.message),
    );
  });
});

describe('clustermesh-apiserver from a config dir, on real etcd', { timeout: 120_000 }, () => {
  let home: string;
  const oldHome = process.env.TENDRIL_HOME;
  const etcds: EtcdServer[] = [];
  const servers: MeshApiServer[] = [];
  let socket1: string;

  async function prepare(lab: string, name: string, id: number) {
    const url = `https://127.0.0.1:${await freePort()}`;
    const { config } = await prepareMesh(loopbackMeshOptions(lab, name, id, url));
    etcds.push(
      await startEtcd({
        ...meshEtcdOptions(config),
        dataDir: meshPaths(lab).etcdData, // on disk, in the test's home (removed with it)
        peerPort: undefined,
        extraArgs: [],
        logFile: join(meshPaths(lab).dir, 'etcd.log'),
      }),
    );
    const { fakes, sources } = fakeSources();
    fakes.nodes.add(fakeK8sNode(`${name}-worker`, `172.30.${id}.11`, `10.${243 + id}.1.0/24`));
    return { config, sources };
  }

  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'tendril-mesh-cfgdir-'));
    process.env.TENDRIL_HOME = home;
    const c1 = await prepare('lab1', 'cluster1', 1);
    const c2 = await prepare('lab2', 'cluster2', 2);
    await connectDirection('lab1', 'lab2');
    await connectDirection('lab2', 'lab1');

    // cluster1 as a pod sees it: files mounted from the ConfigMap and Secrets.
    const pod = join(home, 'pod');
    const cfg = join(pod, 'config');
    mkdirSync(cfg, { recursive: true });
    for (const [k, v] of Object.entries({
      'cluster-name': 'cluster1',
      'cluster-id': '1',
      'clustermesh-access-endpoints': c1.config.accessEndpoints.join(','),
    }))
      writeFileSync(join(cfg, k), v + '\n');
    const p = meshPaths('lab1');
    writeFileSync(
      join(pod, 'etcd-config.yaml'),
      renderRemoteEtcdConfig({
        name: 'local',
        endpoints: [c1.config.localEndpoint],
        trustedCAFile: p.caCert,
        certFile: p.rootCert,
        keyFile: p.rootKey,
      }),
    );
    const rp = remotePaths('lab1', 'cluster2');
    mkdirSync(join(pod, 'clustermesh'));
    writeFileSync(join(pod, 'clustermesh', 'ca.crt'), 'not a config: skipped by name');
    writeFileSync(
      join(pod, 'clustermesh', 'cluster2'),
      renderRemoteEtcdConfig({
        name: 'cluster2',
        endpoints: c2.config.accessEndpoints,
        trustedCAFile: rp.caCert,
        certFile: rp.clientCert,
        keyFile: rp.clientKey,
      }),
    );
    // The user is the CN of the certificate cluster2 was granted by connect.
    const grant = (await listReaders('lab1')).find((r) => r.name === 'cluster2')!;
    writeFileSync(join(pod, 'users.yaml'), `users:\n- name: ${grant.commonName}\n  role: remote\n`);
    writeFileSync(
      join(pod, 'kubeconfig'),
      [
        'apiVersion: v1',
        'kind: Config',
        'current-context: c',
        'clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]',
        'users: [{name: u, user: {token: t}}]',
        'contexts: [{name: c, context: {cluster: c, user: u}}]',
        '',
      ].join('\n'),
    );
    socket1 = join(pod, 'run', 'status.sock');
    const s1 = new MeshApiServer({
      source: configDirSource({
        configDir: cfg,
        kubeconfig: join(pod, 'kubeconfig'),
        etcdConfig: join(pod, 'etcd-config.yaml'),
        clustermeshConfig: join(pod, 'clustermesh'),
        usersConfig: join(pod, 'users.yaml'),
        statusSocket: socket1,
      }),
      sources: c1.sources,
      scanIntervalMs: 200,
      heartbeatIntervalMs: 500,
    });
    servers.push(s1);
    await s1.start({ etcdWaitMs: 10_000 });
    const s2 = new MeshApiServer({
      meshDir: meshDir('lab2'),
      sources: c2.sources,
      scanIntervalMs: 200,
      heartbeatIntervalMs: 500,
    });
    servers.push(s2);
    await s2.start({ etcdWaitMs: 10_000 });
  });

  after(async () => {
    for (const s of servers) await s.stop().catch(() => {});
    for (const e of etcds) await e.stop().catch(() => {});
    if (oldHome === undefined) delete process.env.TENDRIL_HOME;
    else process.env.TENDRIL_HOME = oldHome;
    rmSync(home, { recursive: true, force: true });
  });

  test('settings from the config dir, its own etcd from --etcd-config, the API server from the kubeconfig', async () => {
    const st = await fetchStatus(socket1);
    assert.equal(st.cluster.name, 'cluster1');
    assert.equal(st.cluster.id, 1);
    assert.equal(st.cluster.labCluster, '');
    assert.equal(st.etcd.ok, true, st.etcd.error);
    assert.equal(st.serviceType, 'NodePort');
    assert.equal(st.accessEndpoints.length, 1);
    assert.deepEqual(st.problems, []);
  });

  test('mirrors the remote named in --clustermesh-config and learns its cluster ID', async () => {
    await until('cluster1 mirrors cluster2', async () => {
      const r = (await fetchStatus(socket1)).kvstoremesh.remotes[0];
      return r?.name === 'cluster2' && r.connected && r.synced && r.counts.nodes === 1;
    });
    const r = (await fetchStatus(socket1)).kvstoremesh.remotes[0]!;
    assert.equal(r.clusterId, 2);
  });

  test('admits the readers of --cluster-users-config: the lab-form cluster2 mirrors it', async () => {
    assert.deepEqual((await fetchStatus(socket1)).readers, ['cluster2']);
    await until('cluster2 mirrors cluster1', async () => {
      const r = (await fetchMeshStatus('lab2')).kvstoremesh.remotes[0];
      return r?.connected === true && r.synced && r.counts.nodes === 1;
    });
  });
});

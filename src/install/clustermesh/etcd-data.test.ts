/**
 * The mesh etcd's data directory: in memory (/dev/shm) when that is a tmpfs,
 * one per lab cluster and TENDRIL_HOME, removed by removeMeshEtcdData; the
 * etcd argv carries it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { meshEtcdDataDir, meshEtcdOptions, prepareMesh, removeMeshEtcdData } from './setup.js';
import { meshPaths } from '../../clustermesh/mesh-files.js';

let home: string;
const old = process.env.TENDRIL_HOME;
before(() => {
  home = mkdtempSync(join(tmpdir(), 'tendril-etcd-data-'));
  process.env.TENDRIL_HOME = home;
});
after(() => {
  if (old === undefined) delete process.env.TENDRIL_HOME;
  else process.env.TENDRIL_HOME = old;
  rmSync(home, { recursive: true, force: true });
});

const shmIsTmpfs = (() => {
  try {
    return statfsSync('/dev/shm').type === 0x01021994;
  } catch {
    return false;
  }
})();

test('the mesh etcd keeps its data in /dev/shm (per cluster and home), and removeMeshEtcdData removes it', async () => {
  const a = meshEtcdDataDir('lab-a');
  const b = meshEtcdDataDir('lab-b');
  if (!shmIsTmpfs) {
    assert.equal(a, meshPaths('lab-a').etcdData);
    return;
  }
  assert.match(a, /^\/dev\/shm\/tendril-lab-[0-9a-f]{16}\/clustermesh-etcd$/);
  assert.notEqual(a, b);
  // another TENDRIL_HOME, another directory
  process.env.TENDRIL_HOME = join(home, 'other');
  const elsewhere = meshEtcdDataDir('lab-a');
  process.env.TENDRIL_HOME = home;
  assert.notEqual(elsewhere, a);

  const { config } = await prepareMesh({
    labCluster: 'lab-a',
    clusterName: 'a',
    clusterId: 1,
    serviceType: 'NodePort',
    listenIP: '127.0.0.1',
    etcdClientURLs: ['https://127.0.0.1:2379'],
    accessEndpoints: ['https://127.0.0.1:2379'],
    localEndpoint: 'https://127.0.0.1:2379',
    apiServerURL: 'http://127.0.0.1:1',
  });
  assert.equal(meshEtcdOptions(config).dataDir, a);

  mkdirSync(join(a, 'member'), { recursive: true });
  writeFileSync(join(a, 'member', 'x'), 'x');
  removeMeshEtcdData('lab-a');
  assert.equal(existsSync(a), false);
  assert.equal(existsSync(join(a, '..')), false);
  removeMeshEtcdData('lab-a'); // nothing there: no error
});

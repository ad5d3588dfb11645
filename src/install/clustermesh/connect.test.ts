import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkPair, connectionPairs, ConnectRefusedError } from './connect.js';
import { prepareMesh } from './setup.js';
import { createCA, writeSecretFile } from '../../clustermesh/certs.js';
import { meshPaths, readMeshConfig } from '../../clustermesh/mesh-files.js';
import type { LabCluster } from '../../lab/state.js';
import type { InstallState } from '../install-state.js';

let home: string;
const old = process.env.TENDRIL_HOME;
before(() => {
  home = mkdtempSync(join(tmpdir(), 'tendril-connect-'));
  process.env.TENDRIL_HOME = home;
});
after(() => {
  if (old === undefined) delete process.env.TENDRIL_HOME;
  else process.env.TENDRIL_HOME = old;
  rmSync(home, { recursive: true, force: true });
});

function side(lab: string, name: string, id: number, podCIDR: string) {
  const cluster = { name: lab, index: id, podCIDR, nodes: [] } as unknown as LabCluster;
  const install = { clusterName: name, clusterId: id } as InstallState;
  // resolved as connect resolves a side: mesh settings and files read once, here
  return {
    context: `lab-${lab}`,
    cluster,
    install,
    mesh: readMeshConfig(lab),
    meshFiles: meshPaths(lab),
  };
}

const refused = (re: RegExp) => (e: unknown) =>
  e instanceof ConnectRefusedError &&
  e.code === 'CLUSTERMESH_CONNECT_REFUSED' &&
  re.test(e.message) &&
  (e.hint ?? '').length > 0;

test('connection modes give the right pairs', () => {
  assert.deepEqual(connectionPairs('a', ['b', 'c'], 'unicast'), [
    ['a', 'b'],
    ['a', 'c'],
  ]);
  assert.deepEqual(connectionPairs('a', ['b'], 'bidirectional'), [
    ['a', 'b'],
    ['b', 'a'],
  ]);
  assert.deepEqual(connectionPairs('a', ['b', 'c'], 'mesh').length, 6);
});

test('connect refuses same name, same ID, overlapping pod CIDRs, and says why', () => {
  const a = side('c1', 'cluster1', 1, '10.244.0.0/16');
  checkPair(a, side('c2', 'cluster2', 2, '10.245.0.0/16'), false);
  assert.throws(
    () => checkPair(a, side('c2', 'cluster1', 2, '10.245.0.0/16'), false),
    refused(/both are named "cluster1"/),
  );
  assert.throws(
    () => checkPair(a, side('c2', 'cluster2', 1, '10.245.0.0/16'), false),
    refused(/both have cluster ID 1/),
  );
  assert.throws(
    () => checkPair(a, side('c2', 'cluster2', 2, '10.244.128.0/17'), false),
    refused(/pod CIDRs overlap \(10\.244\.0\.0\/16 and 10\.244\.128\.0\/17\)/),
  );
  assert.throws(() => checkPair(a, a, false), refused(/same cluster/));
});

test('connect refuses different CAs unless allowed, and different maxConnectedClusters', async () => {
  const base = {
    serviceType: 'NodePort' as const,
    listenIP: '127.0.0.1',
    etcdClientURLs: ['https://127.0.0.1:2379'],
    accessEndpoints: ['https://127.0.0.1:2379'],
    localEndpoint: 'https://127.0.0.1:2379',
    apiServerURL: 'http://x',
  };
  await prepareMesh({ ...base, labCluster: 'c1', clusterName: 'cluster1', clusterId: 1 });
  // c2 gets its own CA (as if enabled from another mesh CA).
  const other = await createCA();
  await writeSecretFile(meshPaths('c2').caCert, other.certPEM);
  await writeSecretFile(meshPaths('c2').caKey, other.keyPEM);
  await prepareMesh({ ...base, labCluster: 'c2', clusterName: 'cluster2', clusterId: 2 });
  const a = side('c1', 'cluster1', 1, '10.244.0.0/16');
  const b = side('c2', 'cluster2', 2, '10.245.0.0/16');
  assert.throws(() => checkPair(a, b, false), refused(/signed by different CAs/));
  checkPair(a, b, true);
  await prepareMesh({
    ...base,
    labCluster: 'c3',
    clusterName: 'cluster3',
    clusterId: 3,
    maxConnectedClusters: 511,
  });
  assert.throws(
    () => checkPair(a, side('c3', 'cluster3', 3, '10.246.0.0/16'), true),
    refused(
      /max-connected-clusters differs \(cluster "cluster1" has 255, cluster "cluster3" has 511\)/,
    ),
  );
});

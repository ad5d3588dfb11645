import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { checkPair, connectionPairs, ConnectRefusedError } from './connect.js';
import { prepareMesh } from './setup.js';
import { loopbackMeshOptions } from './testing.js';
import { useTempTendrilHome } from '../../../test/helpers/temp-home.js';
import {
  createCA,
  fingerprint,
  verifyCertificate,
  writeSecretFile,
} from '../../clustermesh/certs.js';
import { meshCAPaths, meshPaths, readMeshConfig } from '../../clustermesh/mesh-files.js';
import type { LabCluster } from '../../lab/state.js';
import type { InstallState } from '../install-state.js';

useTempTendrilHome('connect');

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

test('every cluster has its own CA (key only in its pki/); different CAs are accepted; different maxConnectedClusters refused', async () => {
  const r1 = await prepareMesh(loopbackMeshOptions('c1', 'cluster1', 1));
  const r2 = await prepareMesh(loopbackMeshOptions('c2', 'cluster2', 2));
  assert.notEqual(r1.ca.fingerprint, r2.ca.fingerprint, 'two clusters, two CAs');
  assert.equal(r1.caCreated, true);
  const again = await prepareMesh(loopbackMeshOptions('c1', 'cluster1', 1));
  assert.equal(again.ca.fingerprint, r1.ca.fingerprint, 're-enable keeps the CA');
  assert.equal(again.caCreated, false);
  for (const lab of ['c1', 'c2']) {
    assert.equal(existsSync(meshPaths(lab).legacyCAKey), false, 'no CA key in the mesh dir');
    assert.equal(statSync(meshCAPaths(lab).caKey).mode & 0o777, 0o600);
    assert.equal(statSync(meshCAPaths(lab).dir).mode & 0o777, 0o700);
    assert.equal(statSync(meshPaths(lab).dir).mode & 0o777, 0o700);
    for (const k of [meshPaths(lab).serverKey, meshPaths(lab).rootKey, meshPaths(lab).agentKey])
      assert.equal(statSync(k).mode & 0o777, 0o600, k);
  }
  const a = side('c1', 'cluster1', 1, '10.244.0.0/16');
  const b = side('c2', 'cluster2', 2, '10.245.0.0/16');
  checkPair(a, b, false);
  checkPair(a, b, true);
  await prepareMesh(
    loopbackMeshOptions('c3', 'cluster3', 3, undefined, { maxConnectedClusters: 511 }),
  );
  assert.throws(
    () => checkPair(a, side('c3', 'cluster3', 3, '10.246.0.0/16'), true),
    refused(
      /max-connected-clusters differs \(cluster "cluster1" has 255, cluster "cluster3" has 511\)/,
    ),
  );
});

test('a mesh dir of an older version (a copy of the shared CA key) gets its own CA and loses the key', async () => {
  const shared = await createCA();
  const p = meshPaths('old');
  await writeSecretFile(p.caCert, shared.certPEM);
  await writeSecretFile(p.legacyCAKey, shared.keyPEM);
  const r = await prepareMesh(loopbackMeshOptions('old', 'oldc', 9));
  assert.equal(r.caRotated, true);
  assert.notEqual(r.ca.fingerprint, shared.fingerprint);
  assert.equal(existsSync(p.legacyCAKey), false);
  assert.equal(fingerprint(readFileSync(p.caCert, 'utf8')), r.ca.fingerprint);
  // root and agent certificates re-issued by the new CA
  verifyCertificate(readFileSync(p.rootCert, 'utf8'), r.ca.certPEM);
  verifyCertificate(readFileSync(p.agentCert, 'utf8'), r.ca.certPEM);
});

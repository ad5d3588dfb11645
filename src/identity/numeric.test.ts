import assert from 'node:assert/strict';
import { test } from 'node:test';
import { labelsString } from './labels.js';
import { parseLabels } from './labels.js';
import {
  clusterIdentity,
  clusterIdOf,
  describeIdentity,
  IdentityError,
  isClusterIdentity,
  isReservedIdentity,
  localIndexOf,
  ReservedIdentity,
  reservedIdentityLabels,
  reservedIdentityOf,
  validateClusterId,
} from './numeric.js';

test('cluster identities carry the cluster ID in bits 16-23', () => {
  const cases: [number, number, number][] = [
    [1, 256, 0x010100],
    [1, 65535, 0x01ffff],
    [2, 256, 0x020100],
    [255, 300, 0xff012c],
  ];
  for (const [c, n, want] of cases) {
    const id = clusterIdentity(c, n);
    assert.equal(id, want);
    assert.equal(clusterIdOf(id), c);
    assert.equal(localIndexOf(id), n);
    assert.ok(isClusterIdentity(id));
    assert.ok(isClusterIdentity(id, c));
    assert.ok(!isClusterIdentity(id, c === 1 ? 2 : 1));
    assert.ok(!isReservedIdentity(id));
  }
});

test('bad cluster IDs and indexes are refused', () => {
  for (const c of [0, 256, -1, 1.5, NaN])
    assert.throws(
      () => validateClusterId(c),
      (e) =>
        e instanceof IdentityError &&
        e.code === 'IDENTITY_INVALID_CLUSTER_ID' &&
        /1 to 255/.test(e.hint ?? ''),
    );
  for (const n of [0, 255, 65536]) assert.throws(() => clusterIdentity(1, n), IdentityError);
  assert.equal(validateClusterId(7), 7);
});

test('reserved identities: numbers and labels both ways', () => {
  const want: [keyof typeof ReservedIdentity, number, string][] = [
    ['host', 1, 'reserved:host'],
    ['world', 2, 'reserved:world'],
    ['unmanaged', 3, 'reserved:unmanaged'],
    ['health', 4, 'reserved:health'],
    ['init', 5, 'reserved:init'],
    ['remoteNode', 6, 'reserved:remote-node'],
    ['kubeAPIServer', 7, 'reserved:kube-apiserver'],
  ];
  for (const [name, id, label] of want) {
    assert.equal(ReservedIdentity[name], id);
    assert.equal(labelsString(reservedIdentityLabels(id)!), label);
    assert.equal(reservedIdentityOf(parseLabels(label)), id);
    assert.ok(isReservedIdentity(id));
    assert.ok(!isClusterIdentity(id));
  }
  assert.equal(reservedIdentityLabels(99), undefined);
  assert.equal(reservedIdentityOf(parseLabels('reserved:host;k8s:a=b')), undefined);
  assert.equal(reservedIdentityOf(parseLabels('reserved:nonsense')), undefined);
  assert.equal(describeIdentity(1), 'host (1)');
  assert.equal(describeIdentity(0x010100), '65792 (cluster 1, index 256)');
});

test('the datapath policy programs use the reserved world identity', async () => {
  const { WORLD_IDENTITY } = await import('../datapath/linux/policy/programs.js');
  assert.equal(WORLD_IDENTITY, ReservedIdentity.world);
});

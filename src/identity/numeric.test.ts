import assert from 'node:assert/strict';
import { test } from 'node:test';
import { labelsString } from './labels.js';
import { parseLabels } from './labels.js';
import {
  clusterIdentity,
  clusterIdOf,
  currentIdentityLayout,
  describeIdentity,
  identityLayout,
  IdentityError,
  isClusterIdentity,
  isReservedIdentity,
  localIndexOf,
  ReservedIdentity,
  reservedIdentityLabels,
  reservedIdentityOf,
  setMaxConnectedClusters,
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

test('identity layout at max-connected-clusters 255 and 511 (Cilium: 8 or 9 cluster bits of 24)', () => {
  const l255 = identityLayout(255);
  assert.deepEqual(l255, {
    maxConnectedClusters: 255,
    maxClusterId: 255,
    clusterIdBits: 8,
    clusterIdShift: 16,
    maxLocalIndex: 65535,
  });
  const l511 = identityLayout(511);
  assert.deepEqual(l511, {
    maxConnectedClusters: 511,
    maxClusterId: 511,
    clusterIdBits: 9,
    clusterIdShift: 15,
    maxLocalIndex: 32767,
  });
  // 511: the cluster ID in bits 15-23, the cluster-local index in bits 0-14
  const cases: [number, number, number][] = [
    [1, 256, 0x008100],
    [1, 32767, 0x00ffff],
    [256, 256, 0x800100],
    [300, 1000, (300 << 15) | 1000],
    [511, 32767, 0xffffff],
  ];
  for (const [c, n, want] of cases) {
    const id = clusterIdentity(c, n, l511);
    assert.equal(id, want);
    assert.equal(clusterIdOf(id, l511), c);
    assert.equal(localIndexOf(id, l511), n);
    assert.ok(isClusterIdentity(id, c, l511));
    assert.ok(!isReservedIdentity(id));
  }
  // the same number means another cluster in the other layout
  assert.equal(clusterIdOf(0x010100, l255), 1);
  assert.equal(clusterIdOf(0x010100, l511), 2);
  // 511 layout: local indexes above 32767 and IDs above 511 are refused; 255: IDs above 255
  assert.throws(() => clusterIdentity(1, 32768, l511), /256\.\.32767/);
  assert.throws(() => clusterIdentity(512, 256, l511), IdentityError);
  assert.equal(validateClusterId(511, l511), 511);
  assert.throws(
    () => validateClusterId(300, l255),
    (e) => e instanceof IdentityError && /max-connected-clusters=511/.test(e.hint ?? ''),
  );
  // reserved identities are the same in both layouts
  for (const l of [l255, l511]) {
    assert.equal(clusterIdOf(ReservedIdentity.world, l), 0);
    assert.ok(!isClusterIdentity(ReservedIdentity.host, undefined, l));
  }
  assert.throws(
    () => identityLayout(300),
    (e) => e instanceof IdentityError && e.code === 'IDENTITY_INVALID_MAX_CONNECTED_CLUSTERS',
  );
});

test('the process-wide layout follows setMaxConnectedClusters (daemons set it from their config)', () => {
  try {
    assert.equal(currentIdentityLayout().maxClusterId, 255);
    setMaxConnectedClusters(511);
    assert.equal(clusterIdentity(300, 256), (300 << 15) | 256);
    assert.equal(clusterIdOf((300 << 15) | 256), 300);
    assert.equal(validateClusterId(400), 400);
  } finally {
    setMaxConnectedClusters(255);
  }
  assert.equal(clusterIdentity(1, 256), 0x010100);
  assert.throws(() => validateClusterId(400), IdentityError);
});

test('an allocator made under the 511 layout allocates cluster IDs above 255 in bits 15-23', async () => {
  const { IdentityAllocator } = await import('./allocator.js');
  const { KVStoreIdentityBackend } = await import('./kvstore-backend.js');
  const { MemoryKVStore } = await import('../kvstore/memory.js');
  setMaxConnectedClusters(511);
  try {
    const alloc = new IdentityAllocator(new KVStoreIdentityBackend(new MemoryKVStore()), {
      clusterId: 400,
    });
    const { id } = await alloc.allocate(parseLabels('k8s:app=a'));
    assert.equal(clusterIdOf(id), 400);
    assert.equal(id, (400 << 15) | 256);
  } finally {
    setMaxConnectedClusters(255);
  }
});

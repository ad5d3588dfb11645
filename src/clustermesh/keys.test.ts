import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  cacheDir,
  cacheKey,
  clusterConfigKey,
  decodeClusterConfig,
  decodeIPCacheEntry,
  decodeNode,
  decodeServiceExport,
  decodeTimestamp,
  encodeClusterConfig,
  encodeIPCacheEntry,
  encodeNode,
  encodeTimestamp,
  HEARTBEAT_KEY,
  identityKey,
  ipcacheKey,
  makeClusterConfig,
  MeshValueError,
  nodeKey,
  parseCacheKey,
  parseIdentityID,
  parseStateKey,
  serviceExportKey,
  serviceKey,
  stateDir,
  stateToCacheKey,
  syncedCanaryKey,
  validateClusterID,
  validateClusterName,
  type MeshNode,
} from './keys.js';

test('key layout is pinned (Cilium layout)', () => {
  assert.equal(clusterConfigKey('cluster1'), 'cilium/cluster-config/cluster1');
  assert.equal(
    nodeKey('cluster1', 'cluster1-worker'),
    'cilium/state/nodes/v1/cluster1/cluster1-worker',
  );
  assert.equal(
    serviceKey('cluster1', 'default', 'echo'),
    'cilium/state/services/v1/cluster1/default/echo',
  );
  assert.equal(identityKey(65793), 'cilium/state/identities/v1/id/65793');
  assert.equal(ipcacheKey('10.244.1.10'), 'cilium/state/ip/v1/default/10.244.1.10');
  assert.equal(serviceExportKey('c2', 'ns', 'svc'), 'cilium/state/serviceexports/v1/c2/ns/svc');
  assert.equal(syncedCanaryKey('c1', 'nodes'), 'cilium/synced/c1/cilium/state/nodes/v1');
  assert.equal(syncedCanaryKey('c1', 'identities'), 'cilium/synced/c1/cilium/state/identities/v1');
  assert.equal(syncedCanaryKey('c1', 'ip'), 'cilium/synced/c1/cilium/state/ip/v1');
  assert.equal(
    syncedCanaryKey('c2', 'services', 'cache'),
    'cilium/synced/c2/cilium/cache/services/v1',
  );
  assert.equal(HEARTBEAT_KEY, 'cilium/.heartbeat');
  assert.equal(cacheDir('nodes', 'c2'), 'cilium/cache/nodes/v1/c2');
  assert.equal(cacheDir('identities', 'c2'), 'cilium/cache/identities/v1/c2/id');
  assert.equal(cacheDir('ip', 'c2'), 'cilium/cache/ip/v1/c2');
  assert.equal(
    cacheKey('services', 'c2', 'default/echo'),
    'cilium/cache/services/v1/c2/default/echo',
  );
  assert.equal(stateDir('ip', 'ignored'), 'cilium/state/ip/v1/default');
});

test('state keys map to cache keys and parse back', () => {
  assert.equal(
    stateToCacheKey('nodes', 'c2', 'cilium/state/nodes/v1/c2/n1'),
    'cilium/cache/nodes/v1/c2/n1',
  );
  assert.equal(
    stateToCacheKey('identities', 'c2', 'cilium/state/identities/v1/id/131073'),
    'cilium/cache/identities/v1/c2/id/131073',
  );
  assert.equal(
    stateToCacheKey('ip', 'c2', 'cilium/state/ip/v1/default/10.245.0.5'),
    'cilium/cache/ip/v1/c2/10.245.0.5',
  );
  assert.equal(
    stateToCacheKey('nodes', 'c2', 'cilium/state/nodes/v1/c3/n1'),
    undefined,
    'another cluster is not mirrored',
  );
  assert.equal(stateToCacheKey('nodes', 'c2', 'cilium/state/nodes/v1/c2/'), undefined);
  assert.deepEqual(parseCacheKey('cilium/cache/services/v1/c2/default/echo'), {
    kind: 'services',
    cluster: 'c2',
    suffix: 'default/echo',
  });
  assert.deepEqual(parseCacheKey('cilium/cache/identities/v1/c2/id/131073'), {
    kind: 'identities',
    cluster: 'c2',
    suffix: '131073',
  });
  assert.equal(parseCacheKey('cilium/cache/identities/v1/c2/x/1'), undefined);
  assert.equal(parseCacheKey('cilium/state/nodes/v1/c2/n'), undefined);
  assert.deepEqual(parseStateKey('cilium/state/ip/v1/default/10.1.2.3'), {
    kind: 'ip',
    cluster: undefined,
    suffix: '10.1.2.3',
  });
  assert.deepEqual(parseStateKey('cilium/state/nodes/v1/c1/n'), {
    kind: 'nodes',
    cluster: 'c1',
    suffix: 'n',
  });
  assert.equal(parseIdentityID('131073'), 131073);
  assert.throws(() => parseIdentityID('abc'), MeshValueError);
});

test('cluster names follow Cilium rules', () => {
  for (const ok of ['cluster1', 'a', 'a-b', '0', 'x'.repeat(32)]) validateClusterName(ok);
  for (const bad of ['', 'Cluster1', '-a', 'a-', 'a_b', 'a.b', 'x'.repeat(33)]) {
    assert.throws(() => validateClusterName(bad), MeshValueError, bad);
  }
  assert.throws(() => validateClusterName('x'.repeat(33)), /at most 32/);
});

test('cluster IDs: 1..255, or 1..511 with maxConnectedClusters 511', () => {
  validateClusterID(1);
  validateClusterID(255);
  assert.throws(() => validateClusterID(0), /from 1 to 255/);
  assert.throws(() => validateClusterID(256), /from 1 to 255/);
  assert.throws(() => validateClusterID(1.5), MeshValueError);
  validateClusterID(511, 511);
  assert.throws(() => validateClusterID(512, 511), /from 1 to 511/);
  assert.throws(() => validateClusterID(3, 300), /255 or 511/);
});

test('cluster config codec', () => {
  const cfg = makeClusterConfig(7);
  assert.equal(
    encodeClusterConfig(cfg),
    '{"id":7,"capabilities":{"syncedCanaries":true,"maxConnectedClusters":255,"cached":false}}',
  );
  assert.deepEqual(decodeClusterConfig(encodeClusterConfig(cfg)), cfg);
  // An old-style config without capabilities gets Cilium's defaults.
  assert.deepEqual(decodeClusterConfig('{"id":3}'), {
    id: 3,
    capabilities: { syncedCanaries: false, maxConnectedClusters: 255, cached: false },
  });
  assert.throws(() => decodeClusterConfig('{"id":0}'), /cluster ID 0/);
  assert.throws(() => decodeClusterConfig('nope'), /not JSON/);
  assert.throws(() => decodeClusterConfig('[1]'), /not a JSON object/);
  assert.throws(() => makeClusterConfig(300, { maxConnectedClusters: 255 }), MeshValueError);
  assert.equal(makeClusterConfig(300, { maxConnectedClusters: 511 }).id, 300);
});

test('node and ipcache codecs round-trip and reject garbage', () => {
  const n: MeshNode = {
    name: 'cluster1-worker',
    cluster: 'cluster1',
    clusterID: 1,
    addresses: [{ type: 'InternalIP', ip: '172.30.1.11' }],
    podCIDRs: ['10.244.1.0/24'],
  };
  assert.deepEqual(decodeNode(encodeNode(n)), n);
  assert.throws(() => decodeNode('{"name":"x"}'), /"cluster"/);
  assert.throws(
    () => decodeNode('{"name":"x","cluster":"c","clusterID":1,"addresses":[{"ip":1}]}'),
    /addresses\[0\]/,
  );
  const e = {
    ip: '10.244.1.10',
    identity: 65793,
    hostIP: '172.30.1.11',
    k8sNamespace: 'default',
    k8sPodName: 'echo-1',
  };
  assert.deepEqual(decodeIPCacheEntry(encodeIPCacheEntry(e)), e);
  assert.throws(() => decodeIPCacheEntry('{"ip":"10.0.0.1","identity":-1}'), /identity/);
  const x = decodeServiceExport(
    JSON.stringify({
      cluster: 'c1',
      namespace: 'ns',
      name: 's',
      exportCreationTimestamp: '2026-01-01T00:00:00Z',
      ports: [{ protocol: 'TCP', port: 80 }],
    }),
  );
  assert.equal(x.type, 'ClusterSetIP');
  assert.equal(x.ports[0]!.port, 80);
  const t = new Date('2026-11-26T07:00:00.000Z');
  assert.equal(decodeTimestamp(encodeTimestamp(t))?.getTime(), t.getTime());
  assert.equal(decodeTimestamp('garbage'), undefined);
});

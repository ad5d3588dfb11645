import assert from 'node:assert/strict';
import { test } from 'node:test';
import { maxConnectedClustersMismatch, maxConnectedClustersOf } from './max-clusters.js';

const side = (name: string, mesh?: number, setting?: string) => ({
  context: `lab-${name}`,
  install: {
    clusterName: name,
    settings: (setting === undefined ? {} : { 'max-connected-clusters': setting }) as Record<
      string,
      string
    >,
  },
  mesh: mesh === undefined ? undefined : { maxConnectedClusters: mesh },
});

test('max-connected-clusters: the mesh config, else the install setting, else 255', () => {
  assert.equal(maxConnectedClustersOf(side('a')), 255);
  assert.equal(maxConnectedClustersOf(side('a', undefined, '511')), 511);
  assert.equal(maxConnectedClustersOf(side('a', 511, '255')), 511);
});

test('clusters that disagree are refused with both names and values, and the fix', () => {
  assert.equal(
    maxConnectedClustersMismatch(side('a', 511), side('b', undefined, '511')),
    undefined,
  );
  assert.equal(maxConnectedClustersMismatch(side('a'), side('b')), undefined);
  const m = maxConnectedClustersMismatch(side('east', 255), side('west', 511));
  assert.ok(m);
  assert.match(m.message, /cluster "east" has 255, cluster "west" has 511/);
  assert.match(m.hint, /tendril install --context lab-east --set max-connected-clusters=511/);
});

test('install: --set max-connected-clusters accepts 255 or 511; cluster IDs above 255 only with 511', async () => {
  const { parseSettings, validateClusterId } = await import('../install-state.js');
  assert.equal(parseSettings([])['max-connected-clusters'], '255');
  assert.equal(parseSettings(['max-connected-clusters=511'])['max-connected-clusters'], '511');
  assert.throws(() => parseSettings(['max-connected-clusters=300']), /must be one of 255, 511/);
  assert.equal(validateClusterId(300, 511), 300);
  assert.throws(
    () => validateClusterId(300),
    (e: Error & { hint?: string }) =>
      /from 1 to 255 \(max-connected-clusters is 255\)/.test(e.message) &&
      /--set max-connected-clusters=511/.test(e.hint ?? ''),
  );
  assert.throws(() => validateClusterId(512, 511), /from 1 to 511/);
  const { resolveManifestOptions } = await import('../kubernetes/options.js');
  const o = resolveManifestOptions({
    clusterName: 'c300',
    clusterId: 300,
    set: ['max-connected-clusters=511'],
  });
  assert.equal(o.clusterId, 300);
  assert.throws(() => resolveManifestOptions({ clusterName: 'c300', clusterId: 300 }), /1 to 255/);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  listInstallStates,
  parseSettings,
  pickClusterId,
  readInstallState,
  removeInstallState,
  validateClusterId,
  validateClusterName,
  writeInstallState,
} from './install-state.js';

test('cluster names: valid and invalid', () => {
  for (const ok of ['cluster1', 'a', 'my-cluster-2', 'x'.repeat(32)])
    assert.equal(validateClusterName(ok), ok);
  for (const bad of ['', 'Cluster1', '-a', 'a-', 'a_b', 'x'.repeat(33), 'a.b']) {
    assert.throws(() => validateClusterName(bad), /invalid cluster name/);
  }
});

test('cluster IDs: 1..255 only', () => {
  assert.equal(validateClusterId('1'), 1);
  assert.equal(validateClusterId(255), 255);
  for (const bad of ['0', '256', '-1', 'x', '1.5', ''])
    assert.throws(() => validateClusterId(bad), /invalid cluster ID/);
  assert.equal(pickClusterId([1, 2, 4]), 3);
  assert.equal(pickClusterId([]), 1);
  assert.throws(
    () => pickClusterId(Array.from({ length: 255 }, (_, i) => i + 1)),
    /every cluster ID/,
  );
});

test('--set parsing: defaults, normalisation, unknown keys refused', () => {
  const s = parseSettings(['routing-mode=tunnel', 'lb-algorithm=Maglev']);
  assert.equal(s['routing-mode'], 'tunnel');
  assert.equal(s['lb-algorithm'], 'maglev');
  assert.equal(s['mtu'], '1500');
  assert.equal(parseSettings(['routingMode=native'])['routing-mode'], 'native');
  assert.throws(() => parseSettings(['routing-mode=ipip']), /must be one of native, tunnel/);
  assert.throws(() => parseSettings(['nope=1']), /unknown setting "nope"/);
  assert.throws(() => parseSettings(['mtu']), /expected key=value/);
});

test('install state round-trips under TENDRIL_HOME', () => {
  const home = mkdtempSync(join(tmpdir(), 'tendril-inst-'));
  const old = process.env.TENDRIL_HOME;
  process.env.TENDRIL_HOME = home;
  try {
    assert.equal(readInstallState('c1'), undefined);
    writeInstallState({
      version: 1,
      labCluster: 'c1',
      clusterName: 'cluster1',
      clusterId: 7,
      routingMode: 'native',
      identityAllocationMode: 'crd',
      settings: {},
      installedAt: new Date().toISOString(),
    });
    assert.equal(readInstallState('c1')?.clusterId, 7);
    assert.deepEqual(
      listInstallStates().map((s) => s.clusterName),
      ['cluster1'],
    );
    removeInstallState('c1');
    assert.equal(readInstallState('c1'), undefined);
  } finally {
    if (old === undefined) delete process.env.TENDRIL_HOME;
    else process.env.TENDRIL_HOME = old;
    rmSync(home, { recursive: true, force: true });
  }
});

test('policy settings: enforcement mode and policy-default-local-cluster', () => {
  const d = parseSettings([]);
  assert.equal(d['policy-enforcement'], 'default');
  assert.equal(d['policy-default-local-cluster'], 'true');
  const s = parseSettings(['policy-enforcement=always', 'policy-default-local-cluster=false']);
  assert.equal(s['policy-enforcement'], 'always');
  assert.equal(s['policy-default-local-cluster'], 'false');
  assert.throws(
    () => parseSettings(['policy-enforcement=strict']),
    /must be one of default, always, never/,
  );
});

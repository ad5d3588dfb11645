import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveCluster, type LabCluster } from './state.js';
import { clusterDir } from '../util/paths.js';

test("a lab cluster's state dir (keys, tokens, pod specs, logs) is not readable by other users", () => {
  const home = mkdtempSync(join(tmpdir(), 'tendril-state-'));
  const old = process.env.TENDRIL_HOME;
  process.env.TENDRIL_HOME = home;
  try {
    saveCluster({ name: 'c1', nodes: [] } as unknown as LabCluster);
    assert.equal(statSync(clusterDir('c1')).mode & 0o777, 0o700);
    assert.equal(statSync(join(home, 'clusters')).mode & 0o777, 0o700);
  } finally {
    if (old === undefined) delete process.env.TENDRIL_HOME;
    else process.env.TENDRIL_HOME = old;
    rmSync(home, { recursive: true, force: true });
  }
});

/**
 * The mesh-scale benchmark's small variant (issue 14): a few simulated remote
 * clusters through kvstoremesh into one agent's BPF maps. The benchmark
 * itself fails unless the pinned ipcache holds exactly every remote endpoint
 * and node IP with its identity, every global service has exactly its
 * expected backends in the LB maps, and every remote node's route is in the
 * agent's netns; this test runs it, checks it succeeded and saw what it was
 * given, that a remote's reconnect left no entry missing, and that it left
 * nothing behind (bpffs directory, cgroup, network namespace).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { privilegedTest } from './helpers/privileged.js';
import { cgroup2Root } from '../src/util/paths.js';

const root = fileURLToPath(new URL('..', import.meta.url));

privilegedTest(
  'privileged: mesh-scale small variant: every remote entry in the BPF maps, nothing extra',
  () => {
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(root, 'bench/mesh-scale/index.ts')],
      {
        cwd: root,
        encoding: 'utf8',
        timeout: 170_000,
        env: {
          ...process.env,
          MESH_SCALE_CLUSTERS: '5',
          MESH_SCALE_ENDPOINTS: '200',
          MESH_SCALE_IDENTITIES: '20',
          MESH_SCALE_SERVICES: '20',
          MESH_SCALE_NODES_PER_CLUSTER: '2',
          MESH_SCALE_CHURN_PER_S: '100',
          MESH_SCALE_CHURN_SECONDS: '2',
          MESH_SCALE_TIMEOUT_S: '120',
          MESH_SCALE_JSON: 'stdout',
        },
      },
    );
    assert.equal(r.status, 0, `the benchmark failed:\n${r.stderr}\n${r.stdout}`);
    assert.match(r.stderr, /complete: 210 ipcache entries, 20 services, 10 routes/);
    const f = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, number>;
    assert.equal(f.scale_clusters, 5);
    assert.equal(f.scale_endpoints, 200);
    assert.equal(f.scale_nodes, 10);
    assert.ok(f.scale_full_sync_s! > 0 && Number.isFinite(f.scale_full_sync_s));
    assert.ok(Number.isFinite(f.scale_churn_p99_ms), 'churn changes were timed');
    assert.equal(f.scale_churn_missed, 0, 'every churn change reached the ipcache within 10 s');
    assert.ok(
      f.scale_churn_settle_s! >= 0,
      'every churned identity was in the map before the reconnect',
    );
    assert.equal(f.scale_reconnect_missing_entries, 0);
    assert.ok(f.scale_reconnect_s! > 0);
    const tag = `tendril-bench-ms${r.pid}`;
    assert.ok(!existsSync(join('/sys/fs/bpf', tag)), 'bpffs directory removed');
    assert.ok(!existsSync(join(cgroup2Root(), tag)), 'cgroup removed');
    assert.ok(
      !execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).includes(tag),
      'network namespace removed',
    );
  },
  { timeout: 180_000 },
);

/**
 * Lab runtime figures: how long `tendril lab create` takes for the default
 * cluster (control plane + 2 workers; until every daemon runs and every node
 * is Ready) and how long `tendril lab delete` takes. Runs in its own lab
 * prefix and TENDRIL_HOME, so it never touches a user's lab.
 *
 * Import `measureLabRuntime` (bench/lab/index.ts does), or run this file
 * alone: `node --import tsx bench/lab/runtime.ts [RUNS]` (needs root), which
 * writes bench/results/lab-runtime.json.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { median, report, type Figure } from '../lib/report.js';

/** Measures create_2node_s and delete_s (medians over `runs`, default 3). */
export async function measureLabRuntime(options: { runs?: number } = {}): Promise<Figure[]> {
  const runs = options.runs ?? 3;
  const saved = { home: process.env.TENDRIL_HOME, prefix: process.env.TENDRIL_LAB_PREFIX };
  const home = mkdtempSync(join(tmpdir(), 'tendril-bench-lab-'));
  process.env.TENDRIL_HOME = home;
  process.env.TENDRIL_LAB_PREFIX = `tendril-b${process.pid}x`;
  const { createCluster } = await import('../../src/lab/create.js');
  const { deleteCluster, deleteAllClusters } = await import('../../src/lab/teardown.js');
  const creates: number[] = [];
  const deletes: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await createCluster({ name: 'bench', wait: true });
      creates.push((performance.now() - t0) / 1000);
      const t1 = performance.now();
      await deleteCluster('bench');
      deletes.push((performance.now() - t1) / 1000);
    }
  } finally {
    await deleteAllClusters().catch(() => {});
    rmSync(home, { recursive: true, force: true });
    if (saved.home === undefined) delete process.env.TENDRIL_HOME;
    else process.env.TENDRIL_HOME = saved.home;
    if (saved.prefix === undefined) delete process.env.TENDRIL_LAB_PREFIX;
    else process.env.TENDRIL_LAB_PREFIX = saved.prefix;
  }
  return [
    {
      name: 'create_2node_s',
      value: median(creates),
      unit: 's',
      note: `lab create (cp + 2 workers) until daemons run and nodes Ready; median of ${runs}: ${creates.map((x) => x.toFixed(2)).join(', ')}`,
    },
    {
      name: 'delete_s',
      value: median(deletes),
      unit: 's',
      note: `lab delete of that cluster (last one: underlay too); median of ${runs}: ${deletes.map((x) => x.toFixed(2)).join(', ')}`,
    },
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.getuid?.() !== 0) {
    console.error('bench/lab/runtime.ts needs root (network namespaces, cgroups)');
    process.exit(1);
  }
  const runs = Number(process.argv[2] ?? 3);
  report('lab-runtime', await measureLabRuntime({ runs }));
}

/**
 * 511 clusters, end to end, as root, through the CLI: two lab clusters
 * installed with `--set max-connected-clusters=511` and cluster IDs above 255
 * (300 and 400; without the setting such an ID is refused), meshed with
 * `clustermesh enable` + `connect`. Then:
 *   - `clustermesh status --wait` succeeds on both sides and cluster1 shows
 *     cluster2 with ID 400;
 *   - cluster2's pod is in cluster1's ipcache (pinned BPF map, `tendril debug
 *     ipcache`) with an identity that carries cluster ID 400 in bits 15-23
 *     (the 511 layout), and cluster1's own pods carry 300.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { privilegedTest } from '../helpers/privileged.js';
import { ROOT, cli, cliOk, connectMesh, teardownLab, until, useUniqueLab } from './lab-fixture.js';

const lab = useUniqueLab('m511');

const { KubeClient } = await import('../../src/k8s/client.js');
const { apiServerURL, loadCluster } = await import('../../src/lab/state.js');
const { clusterIdOf, identityLayout } = await import('../../src/identity/numeric.js');

const L511 = identityLayout(511);
const ID1 = 300;
const ID2 = 400;

type Pod = { metadata: { name: string }; status?: { phase?: string; podIP?: string } };

async function ipcacheOf(context: string): Promise<{ prefix: string; identity: number }[]> {
  const r = await cliOk(['debug', 'ipcache', '--context', context]);
  const rows: { prefix: string; identity: number }[] = [];
  for (const line of r.out.split('\n')) {
    const m = /^(\d+\.\d+\.\d+\.\d+\/\d+)\s+(?:(\d+)|\S+ \((\d+)\))/.exec(line);
    if (m) rows.push({ prefix: m[1]!, identity: Number(m[2] ?? m[3]) });
  }
  return rows;
}

privilegedTest(
  'privileged: two clusters with IDs above 255 mesh under max-connected-clusters=511',
  async () => {
    try {
      await cliOk(['lab', 'create', 'cluster1', '--nodes', '1', '--wait'], { timeoutMs: 180_000 });
      await cliOk(['lab', 'create', 'cluster2', '--nodes', '1', '--wait'], { timeoutMs: 180_000 });
      const install = (ctx: string, name: string, id: number, set: string[]) =>
        cli([
          'install',
          '--context',
          ctx,
          '--cluster-name',
          name,
          '--cluster-id',
          String(id),
          ...set,
        ]);
      // an ID above 255 needs the setting
      const refused = await install('lab-cluster1', 'cluster1', ID1, []);
      assert.notEqual(refused.status, 0);
      assert.match(refused.all, /max-connected-clusters=511/);
      for (const [ctx, name, id] of [
        ['lab-cluster1', 'cluster1', ID1],
        ['lab-cluster2', 'cluster2', ID2],
      ] as const) {
        const r = await install(ctx, name, id, ['--set', 'max-connected-clusters=511']);
        assert.equal(r.status, 0, r.all);
      }
      await connectMesh();
      for (const ctx of ['lab-cluster1', 'lab-cluster2'])
        await cliOk(
          ['clustermesh', 'status', '--context', ctx, '--wait', '--wait-duration', '90s'],
          {
            timeoutMs: 150_000,
          },
        );
      const st = JSON.parse(
        (await cliOk(['clustermesh', 'status', '--context', 'lab-cluster1', '-o', 'json'])).out,
      ) as { clusters: { name: string; local: boolean; clusterId?: number }[] };
      assert.equal(st.clusters.find((c) => c.name === 'cluster2' && !c.local)?.clusterId, ID2);

      await cliOk(['--context', 'lab-cluster2', 'apply', '-f', '-'], {
        input: readFileSync(join(ROOT, 'examples/seed-walkthrough/echo-c2.yaml'), 'utf8'),
      });
      const k2 = new KubeClient({ server: apiServerURL(loadCluster('cluster2')) });
      const pod = await until(
        'the echo pod of cluster2 running',
        async () => {
          const l = (
            await k2.list('v1', 'Pod', {
              namespace: 'default',
              labelSelector: 'app=echo-service-c2',
            })
          ).items as Pod[];
          return l.find((p) => p.status?.phase === 'Running' && p.status.podIP);
        },
        120_000,
      );
      const podIP = pod.status!.podIP!;
      const row = await until(
        "cluster2's pod in cluster1's BPF ipcache",
        async () => (await ipcacheOf('lab-cluster1')).find((e) => e.prefix === `${podIP}/32`),
        60_000,
      );
      assert.equal(
        clusterIdOf(row.identity, L511),
        ID2,
        `identity ${row.identity} carries cluster ID ${ID2} in bits 15-23`,
      );
      assert.ok(row.identity > 0xffff, 'above the 16-bit range: the 511 layout');
      k2.close();
    } finally {
      await teardownLab(lab);
    }
  },
  { timeout: 600_000 },
);

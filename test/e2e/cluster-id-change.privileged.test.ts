/**
 * A meshed cluster's ID changes, end to end, as root, through the CLI:
 * two meshed lab clusters; the seed's global echo service in cluster2
 * (examples/seed-walkthrough/echo-c2.yaml) answers from cluster1 by name;
 * then cluster2 is reinstalled with another cluster ID
 * (`tendril install --cluster-id 3 --force`, which re-enables its mesh
 * so the install's ID reaches the clustermesh-apiserver and cluster1's
 * record of cluster2). Cluster1's kvstoremesh must drain cluster2's
 * state of the old ID and mirror it again under the new one:
 *   - cluster1's ipcache (pinned BPF map, `tendril debug ipcache`) has no
 *     identity of cluster ID 2 left, and cluster2's pod has an identity of
 *     cluster ID 3 (bits 16-23);
 *   - `tendril clustermesh status -o json` on cluster1 shows cluster2 with
 *     ID 3, connected and synced, and `--wait` succeeds;
 *   - the global service answers again from cluster1 (the echo JSON comes
 *     from cluster2's pod).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { privilegedTest } from '../helpers/privileged.js';
import {
  ROOT,
  cli,
  cliOk,
  createMeshedPair,
  curlFromPod,
  teardownLab,
  until,
  useUniqueLab,
  type EchoAnswer,
} from './lab-fixture.js';

const lab = useUniqueLab('cid');

const { KubeClient } = await import('../../src/k8s/client.js');
const { apiServerURL } = await import('../../src/lab/state.js');

const OLD_ID = 2;
const NEW_ID = 3;
const URL_C2 = 'http://echo-service-c2.default.svc.cluster.local:80';

type Pod = { metadata: { name: string }; status?: { phase?: string; podIP?: string } };

/** One row of `tendril debug ipcache`: prefix and numeric identity. */
interface IPCacheRow {
  prefix: string;
  identity: number;
}

/** `tendril debug ipcache --context CTX`, every node's rows (the identity's number, whatever its description). */
async function ipcacheOf(context: string): Promise<IPCacheRow[]> {
  const r = await cliOk(['debug', 'ipcache', '--context', context]);
  const rows: IPCacheRow[] = [];
  for (const line of r.out.split('\n')) {
    // "10.245.1.23/32   196864 (cluster 3, index 256)   172.30.2.10"  or  "... world (2) ..."
    const m = /^(\d+\.\d+\.\d+\.\d+\/\d+)\s+(?:(\d+)|\S+ \((\d+)\))/.exec(line);
    if (m) rows.push({ prefix: m[1]!, identity: Number(m[2] ?? m[3]) });
  }
  assert.ok(rows.length > 0, `no ipcache rows in:\n${r.out}`);
  return rows;
}

/** A remote as `tendril clustermesh status -o json` of CONTEXT lists it under `clusters`. */
interface RemoteView {
  name: string;
  clusterId: number | undefined;
  connected: boolean;
  synced: boolean;
  counts: Record<string, number> | undefined;
}

async function remoteView(context: string, name: string): Promise<RemoteView | undefined> {
  const r = await cli(['clustermesh', 'status', '--context', context, '-o', 'json']);
  const doc = JSON.parse(r.out) as { clusters: (RemoteView & { local: boolean })[] };
  return doc.clusters.find((c) => c.name === name && !c.local);
}

privilegedTest(
  'privileged: a remote cluster whose ID changes is drained, then reconnected with the new ID',
  async (t) => {
    const started = Date.now();
    let k2: InstanceType<typeof KubeClient> | undefined;
    try {
      const { c2 } = await createMeshedPair();
      k2 = new KubeClient({ server: apiServerURL(c2) });
      const kc2 = k2;
      const echoPod = () =>
        until(
          'the echo pod of cluster2 running',
          async () => {
            const l = (
              await kc2.list('v1', 'Pod', {
                namespace: 'default',
                labelSelector: 'app=echo-service-c2',
              })
            ).items as Pod[];
            const running = l.filter((p) => p.status?.phase === 'Running' && p.status.podIP);
            return running.length === 1 ? running[0]! : undefined;
          },
          90_000,
        );
      /** curl from a new pod of cluster1 until an answer comes; it must come from cluster2's echo pod. */
      const answeredByC2 = async (what: string) => {
        const a = await until<EchoAnswer>(
          `${what}: an answer from ${URL_C2}`,
          () => curlFromPod('lab-cluster1', URL_C2),
          90_000,
          1000,
        );
        const p = await echoPod();
        assert.equal(a.os.hostname, p.metadata.name, `${what}: answered by ${a.os.hostname}`);
        assert.match(a.ip, /^10\.244\./, `${what}: the client is a pod of cluster1`);
        return a;
      };
      const ofCluster = (rows: IPCacheRow[], id: number) =>
        rows.filter((r) => r.identity >> 16 === id);

      await cliOk(['--context', 'lab-cluster2', 'apply', '-f', '-'], {
        input: readFileSync(join(ROOT, 'examples/seed-walkthrough/echo-c2.yaml'), 'utf8'),
      });
      const pod = await echoPod();
      const podIP = pod.status!.podIP!;

      await t.test('before: the global service of cluster2 answers from cluster1', async () => {
        await answeredByC2('before the change');
        const rows = await until(
          "cluster2's pod in cluster1's ipcache with a cluster-2 identity",
          async () => {
            const r = await ipcacheOf('lab-cluster1');
            return r.some((e) => e.prefix === `${podIP}/32` && e.identity >> 16 === OLD_ID)
              ? r
              : undefined;
          },
          30_000,
        );
        assert.ok(ofCluster(rows, OLD_ID).length > 0);
        const v = await remoteView('lab-cluster1', 'cluster2');
        assert.equal(v?.clusterId, OLD_ID, JSON.stringify(v));
      });

      await t.test(
        `cluster2 reinstalled with ID ${NEW_ID}: cluster1 drains ID ${OLD_ID}, reconnects with ID ${NEW_ID}`,
        async () => {
          const reinstall = [
            'install',
            '--context',
            'lab-cluster2',
            '--cluster-name',
            'cluster2',
            '--cluster-id',
            String(NEW_ID),
          ];
          const refused = await cli(reinstall);
          assert.notEqual(refused.status, 0, 'another ID without --force is refused');
          assert.match(refused.all, /--force/);
          // install --force alone carries the mesh along: it re-enables the
          // clustermesh-apiserver (which takes the ID from mesh.json) with the new ID
          const reinstalled = await cliOk([...reinstall, '--force'], { timeoutMs: 240_000 });
          assert.match(
            reinstalled.all,
            new RegExp(`re-enabling it with cluster ID ${NEW_ID}`),
            'install --force re-enables the mesh',
          );
          assert.match(
            reinstalled.all,
            new RegExp(`Told cluster1 about the new cluster ID ${NEW_ID}`),
          );

          // cluster1's view: cluster2 with the new ID, connected and synced
          const view = await until(
            `cluster2 shown with ID ${NEW_ID}, connected and synced, from cluster1`,
            async () => {
              const v = await remoteView('lab-cluster1', 'cluster2');
              return v?.clusterId === NEW_ID && v.connected && v.synced ? v : undefined;
            },
            60_000,
          );
          t.diagnostic(`cluster1's view of cluster2: ${JSON.stringify(view)}`);
          // cluster1's record of cluster2 (from connect) now expects the new ID
          const st = JSON.parse(
            (await cliOk(['clustermesh', 'status', '--context', 'lab-cluster1', '-o', 'json'])).out,
          ) as {
            apiserver: { kvstoremesh: { remotes: { name: string; expectedClusterId: number }[] } };
          };
          assert.equal(
            st.apiserver.kvstoremesh.remotes.find((r) => r.name === 'cluster2')?.expectedClusterId,
            NEW_ID,
          );
          await cliOk(
            [
              'clustermesh',
              'status',
              '--context',
              'lab-cluster1',
              '--wait',
              '--wait-duration',
              '60s',
            ],
            { timeoutMs: 90_000 },
          );
          const text = await cliOk(['clustermesh', 'status', '--context', 'lab-cluster1']);
          assert.match(text.out, new RegExp(`cluster2 \\(ID ${NEW_ID}\\)`), text.out);

          // drained: nothing of the old ID in cluster1's ipcache; cluster2's pod under the new ID
          const p = await echoPod();
          const rows = await until(
            `cluster1's ipcache without cluster ID ${OLD_ID}, with cluster2's pod under ID ${NEW_ID}`,
            async () => {
              const r = await ipcacheOf('lab-cluster1');
              return ofCluster(r, OLD_ID).length === 0 &&
                r.some((e) => e.prefix === `${p.status!.podIP}/32` && e.identity >> 16 === NEW_ID)
                ? r
                : undefined;
            },
            60_000,
          );
          t.diagnostic(
            `cluster-${NEW_ID} identities in cluster1's ipcache: ${ofCluster(rows, NEW_ID)
              .map((r) => `${r.prefix}=${r.identity}`)
              .join(', ')}`,
          );
          // the drain happened (in the session that saw the new cluster config, or at reconnect), before the reconnect
          const log = (await cliOk(['lab', 'logs', 'cluster1', 'clustermesh-apiserver'])).out
            .split('\n')
            .filter((l) => /subsys=kvstoremesh/.test(l) && /remote=cluster2/.test(l));
          const drained = log.findIndex((l) =>
            new RegExp(`remote cluster ID changed: draining .*from=${OLD_ID} to=${NEW_ID}`).test(l),
          );
          const reconnected = log.findIndex((l) =>
            new RegExp(`connected to remote cluster .*clusterId=${NEW_ID}`).test(l),
          );
          assert.ok(
            drained >= 0 && reconnected > drained,
            `cluster1's kvstoremesh log: drain, then reconnect:\n${log.join('\n')}`,
          );
          // cluster2's own identities carry the new ID, none the old
          const ids = await cliOk(['debug', 'identities', '--context', 'lab-cluster2']);
          const numbers = [...ids.out.matchAll(/^(\d+)\s/gm)].map((m) => Number(m[1]));
          assert.ok(numbers.length > 0, ids.out);
          assert.ok(
            numbers.every((n) => n >> 16 === NEW_ID),
            `cluster2's identities:\n${ids.out}`,
          );
        },
      );

      await t.test(
        'after: the global service of cluster2 answers again from cluster1',
        async () => {
          await answeredByC2('after the change');
        },
      );
      t.diagnostic(`runtime ${Math.round((Date.now() - started) / 1000)} s`);
    } finally {
      k2?.close();
      await teardownLab(lab);
    }
  },
  { timeout: 600_000 },
);

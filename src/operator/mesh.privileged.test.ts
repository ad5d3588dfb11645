/**
 * Two lab clusters meshed, as root: the agents route to the other cluster's
 * pod CIDRs and learn its ipcache; the operator imports cluster1's global
 * echo service into cluster2 (which has no such Service) and fills the
 * seed's marker slice; a pod in cluster2 reaches it by its cluster.local
 * name (the seed's step 5) and by pod IP; an MCS export gives cluster2 a
 * ServiceImport and a derived Service with cluster1's backend.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { privilegedTest } from '../../test/helpers/privileged.js';

const prefix = `tendril-t${process.pid}x`;
const home = mkdtempSync(join(tmpdir(), 'tendril-mesh-test-'));
process.env.TENDRIL_LAB_PREFIX = prefix;
process.env.TENDRIL_HOME = home;
delete process.env.TENDRIL_CONFIG;
delete process.env.TENDRIL_CONTEXT;

const { KubeClient } = await import('../k8s/client.js');
const { createCluster } = await import('../lab/create.js');
const { deleteAllClusters } = await import('../lab/teardown.js');
const { projectRoot } = await import('../lab/daemons.js');
const { apiServerURL } = await import('../lab/state.js');
const { install } = await import('../agent/install.js');
const { AgentClient } = await import('../agent/api/client.js');
const { agentSocketPath } = await import('../agent/config.js');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(500);
  }
}

after(async () => {
  await deleteAllClusters().catch(() => {});
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${d}/environ`, 'utf8').includes(`TENDRIL_HOME=${home}`))
        process.kill(Number(d), 'SIGKILL');
    } catch {
      // gone
    }
  }
  rmSync(home, { recursive: true, force: true });
});

const cli = (args: string[], input?: string) =>
  spawnSync(process.execPath, [join(projectRoot(), 'bin/tendril.mjs'), ...args], {
    env: process.env,
    encoding: 'utf8',
    timeout: 120_000,
    input: input ?? '',
  });
const ok = (args: string[], input?: string) => {
  const r = cli(args, input);
  assert.equal(r.status, 0, `tendril ${args.join(' ')}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
};

privilegedTest(
  'privileged: two meshed clusters: remote routes and ipcache, remote-only service by DNS name, marker slice, MCS import',
  async () => {
    const c1 = await createCluster({ name: 'cluster1', nodes: 1, wait: true });
    const c2 = await createCluster({ name: 'cluster2', nodes: 1, wait: true });
    const k1 = new KubeClient({ server: apiServerURL(c1) });
    const k2 = new KubeClient({ server: apiServerURL(c2) });
    try {
      await install({ context: 'lab-cluster1', clusterName: 'cluster1', clusterId: 1 });
      await install({ context: 'lab-cluster2', clusterName: 'cluster2', clusterId: 2 });
      ok(['clustermesh', 'enable', '--context', 'lab-cluster1', '--service-type', 'NodePort']);
      ok([
        'clustermesh',
        'connect',
        '--context',
        'lab-cluster2',
        '--destination-context',
        'lab-cluster1',
      ]);
      ok(
        ['--context', 'lab-cluster1', 'apply', '-f', '-'],
        readFileSync(join(projectRoot(), 'examples/seed-walkthrough/echo-c1.yaml'), 'utf8'),
      );
      const echo = await until('echo pod in cluster1', async () => {
        const l = await k1.list('v1', 'Pod', {
          namespace: 'default',
          labelSelector: 'app=echo-service-c1',
        });
        return l.items.find((p) => p.status?.phase === 'Running' && p.status.podIP);
      });
      const w2 = c2.nodes[1]!;
      // agents of cluster2 route to cluster1's pod CIDRs and know its identities
      await until('routes and ipcache from the mesh', async () => {
        const a = new AgentClient(agentSocketPath('cluster2', w2.name));
        const routes = await a.routes();
        const ipc = await a.ipcache();
        return c1.nodes.every((n) =>
          routes.some((r) => r.podCIDR === n.podCIDR && r.nodeIP === n.ip),
        ) && ipc.some((e) => e.prefix === `${echo.status.podIP}/32` && e.identity >> 16 === 1)
          ? true
          : undefined;
      });
      // the marker slice is filled in cluster1
      await until('marker slice filled', async () => {
        const s = await k1.get('discovery.k8s.io/v1', 'EndpointSlice', 'echo-service-c1-mesh', {
          namespace: 'default',
        });
        return (s as unknown as { endpoints?: Array<{ addresses: string[] }> }).endpoints?.some(
          (e) => e.addresses.includes(echo.status.podIP),
        )
          ? true
          : undefined;
      });
      // cluster2 has no such Service of its own: the operator imports it
      const imported = await until('import in cluster2', () =>
        k2.getOrUndefined('v1', 'Service', 'echo-service-c1', { namespace: 'default' }),
      );
      assert.equal(imported.metadata.labels?.['tendril.io/imported-service'], 'true');
      // the seed's step 5, literally (a pod in cluster2, by the cluster.local name)
      const out = await until(
        'curl from cluster2 by name',
        () => {
          const r = cli([
            '--context',
            'lab-cluster2',
            'run',
            '-i',
            '--rm',
            '--restart=Never',
            'curl',
            '--image=curlimages/curl',
            '--',
            'curl',
            '-s',
            '-m',
            '5',
            'http://echo-service-c1.default.svc.cluster.local:80',
          ]);
          if (r.status !== 0) return undefined;
          const i = r.stdout.indexOf('{');
          return i >= 0
            ? (JSON.parse(r.stdout.slice(i, r.stdout.lastIndexOf('}') + 1)) as {
                ip: string;
                os: { hostname: string };
              })
            : undefined;
        },
        90_000,
      );
      assert.equal(out.os.hostname, echo.metadata.name, 'answered by the pod of cluster1');
      assert.match(out.ip, /^10\.245\./, 'the client is a pod of cluster2 (no NAT)');

      // MCS: export in cluster1 -> ServiceImport + derived Service in cluster2 with cluster1's backend
      ok(
        ['--context', 'lab-cluster1', 'apply', '-f', '-'],
        'apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceExport\nmetadata:\n  name: echo-service-c1\n  namespace: default\n',
      );
      const imp = await until('ServiceImport in cluster2', async () => {
        const i = await k2.getOrUndefined(
          'multicluster.x-k8s.io/v1alpha1',
          'ServiceImport',
          'echo-service-c1',
          { namespace: 'default' },
        );
        return i?.spec?.ips?.length ? i : undefined;
      });
      const vip = imp.spec.ips[0] as string;
      await until('derived service backends in cluster2', async () => {
        const svcs = await new AgentClient(agentSocketPath('cluster2', w2.name)).services();
        return svcs.some(
          (s) =>
            s.frontend.ip === vip &&
            s.backends.some((b) => b.ip === echo.status.podIP && b.clusterId === 1),
        )
          ? true
          : undefined;
      });
      const exp = await k1.get(
        'multicluster.x-k8s.io/v1alpha1',
        'ServiceExport',
        'echo-service-c1',
        { namespace: 'default' },
      );
      const conds = (exp.status?.conditions ?? []) as Array<{ type: string; status: string }>;
      assert.ok(
        conds.some((c) => c.type === 'Valid' && c.status === 'True'),
        JSON.stringify(conds),
      );
    } finally {
      k1.close();
      k2.close();
    }
  },
  { timeout: 400_000 },
);

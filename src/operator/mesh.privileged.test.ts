/**
 * Two lab clusters meshed, as root: the agents route to the other cluster's
 * pod CIDRs and learn its ipcache; the operator imports cluster1's global
 * echo service into cluster2 (which has no such Service) and fills the
 * seed's marker slice; a pod in cluster2 reaches it by its cluster.local
 * name (the seed's step 5) and by pod IP; an MCS export gives cluster2 a
 * ServiceImport and a derived Service with cluster1's backend.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after } from 'node:test';
import { privilegedTest } from '../../test/helpers/privileged.js';
import {
  cliOk,
  connectMesh,
  curlFromPod,
  ROOT,
  teardownLab,
  until,
  useUniqueLab,
} from '../../test/e2e/lab-fixture.js';

const lab = useUniqueLab('mesh');
after(() => teardownLab(lab));

const { KubeClient } = await import('../k8s/client.js');
const { createCluster } = await import('../lab/create.js');
const { apiServerURL } = await import('../lab/state.js');
const { install } = await import('../install/install.js');
const { AgentClient } = await import('../agent/api/client.js');
const { agentSocketPath } = await import('../install/lab-daemon-config.js');

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
      await connectMesh();
      await cliOk(['--context', 'lab-cluster1', 'apply', '-f', '-'], {
        input: readFileSync(join(ROOT, 'examples/seed-walkthrough/echo-c1.yaml'), 'utf8'),
      });
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
      // the seed's step 5 (`run -i --rm ... curlimages/curl`: a pod in cluster2, by the cluster.local name)
      const out = await until(
        'curl from cluster2 by name',
        () => curlFromPod('lab-cluster2', 'http://echo-service-c1.default.svc.cluster.local:80'),
        90_000,
      );
      assert.equal(out.os.hostname, echo.metadata.name, 'answered by the pod of cluster1');
      assert.match(out.ip, /^10\.245\./, 'the client is a pod of cluster2 (no NAT)');

      // MCS: export in cluster1 -> ServiceImport + derived Service in cluster2 with cluster1's backend
      await cliOk(['--context', 'lab-cluster1', 'apply', '-f', '-'], {
        input:
          'apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceExport\nmetadata:\n  name: echo-service-c1\n  namespace: default\n',
      });
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
      // cluster1's operator writes the export's status on its own turn: the
      // import in cluster2 may be there first
      let conds: Array<{ type: string; status: string }> = [];
      await until('ServiceExport Valid=True in cluster1', async () => {
        const exp = await k1.get(
          'multicluster.x-k8s.io/v1alpha1',
          'ServiceExport',
          'echo-service-c1',
          { namespace: 'default' },
        );
        conds = (exp.status?.conditions ?? []) as typeof conds;
        return conds.some((c) => c.type === 'Valid' && c.status === 'True') ? true : undefined;
      }).catch((e: Error) => assert.fail(`${e.message}; conditions ${JSON.stringify(conds)}`));
    } finally {
      k1.close();
      k2.close();
    }
  },
  { timeout: 400_000 },
);

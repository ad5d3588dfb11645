// The lab API server against real clients: @kubernetes/client-node's
// list/watch informer and the kubectl binary.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import type { KubeObject } from '../../k8s/objects.js';
import { setContext, writeStandaloneKubeConfig } from '../../k8s/kubeconfig.js';
import { fakeNode, startTestApiServer, type TestApiServer } from './testing.js';

const run = promisify(execFile);

describe('lab API server with real clients', () => {
  let t: TestApiServer;
  before(async () => {
    t = await startTestApiServer();
  });
  after(async () => {
    await t.cleanup();
  });

  it('feeds a client-node informer adds, updates and deletes in order with correct resourceVersions', async () => {
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'lab', server: t.server.url, skipTLSVerify: true }],
      users: [{ name: 'lab' }],
      contexts: [{ name: 'lab', cluster: 'lab', user: 'lab' }],
      currentContext: 'lab',
    });
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const path = '/api/v1/namespaces/default/services';
    const seen: Array<[string, string, string]> = [];
    const informer = k8s.makeInformer(kc, path, () =>
      core.listNamespacedService({ namespace: 'default' }),
    );
    const record = (type: string) => (o: k8s.V1Service) =>
      seen.push([type, o.metadata!.name!, o.metadata!.resourceVersion!]);
    informer.on('add', record('add'));
    informer.on('update', record('update'));
    informer.on('delete', record('delete'));
    let informerError: unknown;
    informer.on('error', (e) => (informerError = e));
    await informer.start();
    try {
      const waitFor = async (n: number) => {
        for (let i = 0; i < 200 && seen.length < n; i++)
          await new Promise((r) => setTimeout(r, 10));
      };
      await waitFor(1); // the kubernetes Service from the initial list
      assert.deepEqual(
        seen.map((s) => s.slice(0, 2)),
        [['add', 'kubernetes']],
      );
      seen.length = 0;
      const a = await t.client.create<KubeObject>({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'inf-a' },
        spec: { ports: [{ port: 80 }] },
      });
      const a2 = await t.client.patch('v1', 'Service', 'inf-a', {
        metadata: { labels: { x: '1' } },
      });
      const b = await t.client.create<KubeObject>({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'inf-b' },
        spec: { ports: [{ port: 81 }] },
      });
      const gone = await t.client.delete('v1', 'Service', 'inf-a');
      await waitFor(4);
      assert.deepEqual(seen, [
        ['add', 'inf-a', a.metadata.resourceVersion],
        ['update', 'inf-a', a2.metadata.resourceVersion],
        ['add', 'inf-b', b.metadata.resourceVersion],
        ['delete', 'inf-a', gone.metadata.resourceVersion],
      ]);
      assert.ok(Number(gone.metadata.resourceVersion) > Number(b.metadata.resourceVersion));
      assert.deepEqual(
        (informer as unknown as k8s.ListWatch<k8s.V1Service>)
          .list()
          .map((s: k8s.V1Service) => s.metadata!.name)
          .sort(),
        ['inf-b', 'kubernetes'],
      );
      assert.equal(informerError, undefined);
    } finally {
      await informer.stop();
    }
  });

  it(
    'serves real kubectl: create -f, get, apply, scale, label, delete',
    { skip: !existsSync('/usr/bin/kubectl') && 'kubectl not installed' },
    async () => {
      const home = t.dataDir;
      const cfg = join(home, 'tendril-config');
      setContext({ name: 'lab-test', cluster: 'test', server: t.server.url }, cfg);
      const kubeconfig = join(home, 'kubeconfig');
      writeStandaloneKubeConfig(kubeconfig, {}, cfg);
      const kubectl = (...args: string[]) =>
        run('kubectl', ['--kubeconfig', kubeconfig, ...args], {
          env: { ...process.env, HOME: home, KUBECACHEDIR: join(home, 'cache') },
        });
      const seed = readFileSync(
        new URL('../../../examples/seed-walkthrough/echo-c1.yaml', import.meta.url),
        'utf8',
      );
      const file = join(home, 'echo.yaml');
      writeFileSync(file, seed);
      const created = await kubectl('create', '-f', file);
      assert.match(created.stdout, /deployment.apps\/echo-service-c1 created/);
      assert.match(created.stdout, /service\/echo-service-c1 created/);
      assert.match(created.stdout, /endpointslice.discovery.k8s.io\/echo-service-c1-mesh created/);
      await t.server.settle();
      const pods = await kubectl('get', 'pods');
      assert.match(pods.stdout, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\n/);
      assert.match(pods.stdout, /echo-service-c1-\S+\s+0\/1\s+Pending\s+0\s+/);
      const svc = await kubectl('get', 'svc', 'echo-service-c1', '-o', 'json');
      assert.equal(JSON.parse(svc.stdout).spec.ports[0].targetPort, 8080);
      const multi = await kubectl('get', 'deploy,svc,endpointslices');
      assert.match(multi.stdout, /deployment.apps\/echo-service-c1\s+0\/1\s+1\s+0\s+/);
      assert.match(
        multi.stdout,
        /service\/kubernetes\s+ClusterIP\s+10\.96\.0\.1\s+<none>\s+443\/TCP/,
      );
      writeFileSync(file, seed.replace('replicas: 1', 'replicas: 2'));
      const applied = await kubectl('apply', '-f', file);
      assert.match(applied.stdout, /deployment.apps\/echo-service-c1 configured/);
      const scaled = await kubectl('scale', 'deploy', 'echo-service-c1', '--replicas=3');
      assert.match(scaled.stdout, /deployment.apps\/echo-service-c1 scaled/);
      assert.equal(
        (await t.client.get('apps/v1', 'Deployment', 'echo-service-c1')).spec.replicas,
        3,
      );
      const labels = await kubectl('label', 'svc', 'echo-service-c1', 'tier=web');
      assert.match(labels.stdout, /service\/echo-service-c1 labeled/);
      const del = await kubectl('delete', 'svc', 'echo-service-c1');
      assert.match(del.stdout, /service "echo-service-c1" deleted/);
    },
  );

  it(
    'serves kubectl wait, rollout status and rollout restart',
    { skip: !existsSync('/usr/bin/kubectl') && 'kubectl not installed' },
    async () => {
      const home = t.dataDir;
      const cfg = join(home, 'tendril-config-2');
      setContext({ name: 'lab-test', cluster: 'test', server: t.server.url }, cfg);
      const kubeconfig = join(home, 'kubeconfig-2');
      writeStandaloneKubeConfig(kubeconfig, {}, cfg);
      const kubectl = (...args: string[]) =>
        run('kubectl', ['--kubeconfig', kubeconfig, ...args], {
          env: { ...process.env, HOME: home, KUBECACHEDIR: join(home, 'cache') },
        });
      await t.client.create(fakeNode('k-worker'));
      await t.client.create<KubeObject>({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'roll' },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'roll' } },
          template: {
            metadata: { labels: { app: 'roll' } },
            spec: { containers: [{ name: 'c', image: 'busybox' }] },
          },
        },
      });
      await t.server.settle();
      for (const p of (await t.client.list('v1', 'Pod', { labelSelector: 'app=roll' })).items) {
        await t.client.updateStatus({
          ...p,
          status: {
            ...p.status,
            phase: 'Running',
            podIP: '10.244.1.50',
            conditions: [{ type: 'Ready', status: 'True' }],
          },
        });
      }
      await t.server.settle();
      assert.match(
        (await kubectl('wait', '--for=condition=Ready', 'pod', '-l', 'app=roll', '--timeout=10s'))
          .stdout,
        /condition met/,
      );
      assert.match(
        (await kubectl('rollout', 'status', 'deploy/roll', '--timeout=10s')).stdout,
        /deployment "roll" successfully rolled out/,
      );
      assert.match(
        (await kubectl('rollout', 'restart', 'deploy/roll')).stdout,
        /deployment.apps\/roll restarted/,
      );
    },
  );
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeClient } from '../k8s/client.js';
import { startTestApiServer } from '../../test/helpers/apiserver.js';
import { KubernetesTarget, TargetNotSupportedError, K8S_NAMESPACE } from './target.js';
import type { KubeObject } from '../k8s/objects.js';

const pod = (name: string, node: string): KubeObject =>
  ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: K8S_NAMESPACE,
      labels: { 'app.kubernetes.io/part-of': 'tendril', 'k8s-app': 'tendril-agent' },
    },
    spec: { nodeName: node, containers: [{ name: 'agent', image: 'tendril' }] },
  }) as KubeObject;

test('KubernetesTarget: daemons from pods, restart by deleting the pod, unsupported operations say so', async () => {
  const api = await startTestApiServer();
  const dir = mkdtempSync(join(tmpdir(), 'tendril-k8starget-'));
  try {
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      `apiVersion: v1\nkind: Config\ncurrent-context: k\nclusters: [{name: c, cluster: {server: "${api.server.url}"}}]\nusers: [{name: u, user: {}}]\ncontexts: [{name: k, context: {cluster: c, user: u}}]\n`,
    );
    const t = KubernetesTarget.fromKubeconfig(kubeconfig);
    try {
      await t
        .apply([
          { apiVersion: 'v1', kind: 'Namespace', metadata: { name: K8S_NAMESPACE } } as KubeObject,
        ])
        .catch(() => undefined); // may exist already
      await t.apply([pod('tendril-agent-abc', 'n1')]);
      await t.apply([pod('tendril-agent-abc', 'n1')]); // apply twice: an update
      const ds = await t.daemons();
      assert.deepEqual(
        ds.map((d) => [d.name, d.node, d.running]),
        [['tendril-agent-abc', 'n1', false]],
        'a pod with no Running status is not running',
      );
      assert.ok(await t.read('v1', 'Pod', 'tendril-agent-abc', K8S_NAMESPACE));
      await t.restartDaemon('tendril-agent-abc');
      const gone = await t.read('v1', 'Pod', 'tendril-agent-abc', K8S_NAMESPACE);
      assert.ok(
        !gone || gone.metadata.deletionTimestamp,
        'deleted (or terminating, as a kubelet ends it)',
      );
      await assert.rejects(t.restartDaemon('tendril-agent-nope'), /no pod kube-system/);
      await assert.rejects(t.daemonLogs('x', 10), /no pod kube-system\/x/);
      assert.throws(() => t.meshFiles(), TargetNotSupportedError);
      // a pod that exists but has not started: the API server's pods/log says why
      await t.apply([pod('tendril-dns-abc', 'n1')]);
      await assert.rejects(
        t.daemonLogs('tendril-dns-abc', 10),
        /container "agent" in pod "tendril-dns-abc" is waiting to start/,
      );
      assert.deepEqual(await t.nodes(), []);
      await assert.rejects(t.agentStatus('n1'), TargetNotSupportedError);
      await assert.rejects(t.operatorStatus(), TargetNotSupportedError);
      await assert.rejects(t.meshApiserverStatus(), TargetNotSupportedError);
    } finally {
      t.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await api.cleanup();
  }
});

/** A stand-in API server for what the lab's does not serve: pods/log and ConfigMaps (in memory). */
async function fakeApi() {
  const seen: string[] = [];
  const configMaps = new Map<string, { metadata: Record<string, unknown>; data?: object }>();
  let rv = 1;
  const status = (code: number, reason: string) =>
    JSON.stringify({
      kind: 'Status',
      apiVersion: 'v1',
      status: 'Failure',
      code,
      reason,
      message: reason,
    });
  const srv = createServer((req, res) => {
    const url = req.url ?? '';
    seen.push(`${req.method} ${url}`);
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const json = (code: number, o: unknown) =>
        res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(o));
      const cm = /^\/api\/v1\/namespaces\/kube-system\/configmaps(?:\/([^/?]+))?$/.exec(url);
      if (url.startsWith('/api/v1/namespaces/kube-system/pods/clustermesh-apiserver-1/log')) {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('line 1\nline 2\n');
      } else if (cm && req.method === 'GET' && cm[1]) {
        const o = configMaps.get(cm[1]);
        if (o) json(200, o);
        else
          res.writeHead(404, { 'content-type': 'application/json' }).end(status(404, 'NotFound'));
      } else if (cm && req.method === 'POST' && !cm[1]) {
        const o = JSON.parse(body);
        o.metadata.resourceVersion = String(rv++);
        configMaps.set(o.metadata.name, o);
        json(201, o);
      } else if (cm && req.method === 'PUT' && cm[1]) {
        const o = JSON.parse(body);
        if (o.metadata.resourceVersion !== configMaps.get(cm[1])?.metadata.resourceVersion) {
          res.writeHead(409, { 'content-type': 'application/json' }).end(status(409, 'Conflict'));
          return;
        }
        o.metadata.resourceVersion = String(rv++);
        configMaps.set(cm[1], o);
        json(200, o);
      } else {
        res.writeHead(404, { 'content-type': 'application/json' }).end(status(404, 'NotFound'));
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  const t = new KubernetesTarget(new KubeClient({ server: `http://127.0.0.1:${port}` }));
  return {
    t,
    seen,
    configMaps,
    close: async () => {
      t.close();
      await new Promise((r) => srv.close(r));
    },
  };
}

test("KubernetesTarget: the tendril-config ConfigMap is the daemons' settings (create, then replace)", async () => {
  const f = await fakeApi();
  try {
    assert.deepEqual(await f.t.readDaemonConfig(), {}, 'absent: no settings');
    await f.t.writeDaemonConfig('agent', { 'cluster-name': 'c1' });
    assert.deepEqual(await f.t.readDaemonConfig(), { 'cluster-name': 'c1' });
    await f.t.writeDaemonConfig('operator', { 'cluster-name': 'c1', 'cluster-id': '7' });
    assert.deepEqual(await f.t.readDaemonConfig(), { 'cluster-id': '7', 'cluster-name': 'c1' });
    assert.deepEqual(
      f.seen.filter((x) => !x.startsWith('GET')),
      [
        'POST /api/v1/namespaces/kube-system/configmaps',
        'PUT /api/v1/namespaces/kube-system/configmaps/tendril-config',
      ],
    );
  } finally {
    await f.close();
  }
});

test('KubernetesTarget.daemonLogs: pods/log as text, tailLines and the container passed on', async () => {
  const f = await fakeApi();
  try {
    assert.equal(await f.t.daemonLogs('clustermesh-apiserver-1/apiserver', 20), 'line 1\nline 2\n');
    assert.equal(
      f.seen[0],
      'GET /api/v1/namespaces/kube-system/pods/clustermesh-apiserver-1/log?tailLines=20&container=apiserver',
    );
    await assert.rejects(f.t.daemonLogs('gone', 5), /no pod kube-system\/gone/);
  } finally {
    await f.close();
  }
});

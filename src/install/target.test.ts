import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
      await assert.rejects(t.daemonLogs('x'), TargetNotSupportedError);
      assert.throws(() => t.meshFiles(), TargetNotSupportedError);
      // the ConfigMap kind: either the client knows it and it round-trips, or it says it does not
      const wrote = await t.writeDaemonConfig('agent', { 'cluster-name': 'c1' }).then(
        () => true,
        (e: unknown) => {
          assert.ok(e instanceof TargetNotSupportedError, String(e));
          return false;
        },
      );
      if (wrote) assert.deepEqual(await t.readDaemonConfig(), { 'cluster-name': 'c1' });
    } finally {
      t.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await api.cleanup();
  }
});

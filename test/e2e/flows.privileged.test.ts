/**
 * Flow events end to end in one lab cluster: a client pod reaches the seed's echo
 * Service (socket LB translation, policy verdict, forwarded traffic), then a
 * CiliumNetworkPolicy lets only app=client in and a pod app=other is dropped. The
 * node agent's flow ring (read through its API, GET /v1/flows) holds a FORWARDED
 * flow naming both pods, their namespace and the Service, and a DROPPED
 * POLICY_DENIED flow naming the policy.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { privilegedTest } from '../helpers/privileged.js';
import {
  ROOT,
  cliOk,
  createInstalledCluster,
  reachFromLabelledPod,
  teardownLab,
  until,
  useUniqueLab,
} from './lab-fixture.js';
import type { Flow } from '../../src/observe/flow.js';

const lab = useUniqueLab('flow');
const { KubeClient } = await import('../../src/k8s/client.js');
const { apiServerURL, loadCluster } = await import('../../src/lab/state.js');
const { AgentClient } = await import('../../src/agent/api/client.js');
const { agentSocketPath } = await import('../../src/install/lab-daemon-config.js');

const POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: echo-from-client
spec:
  endpointSelector: {matchLabels: {app: echo-service-c1}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client}}]
`;

/** curl the ClusterIP from a new pod labelled app=APP; true when the echo answered. */
const reach = (app: string, ip: string) =>
  reachFromLabelledPod('lab-cluster1', app, `http://${ip}:80/`);

async function allFlows(): Promise<Flow[]> {
  const out: Flow[] = [];
  for (const n of loadCluster('cluster1').nodes) {
    try {
      out.push(...(await new AgentClient(agentSocketPath('cluster1', n.name)).flows()).flows);
    } catch {
      /* no agent on this node */
    }
  }
  return out;
}

privilegedTest(
  'privileged: the agent turns datapath events into flows: a forwarded service connection and a policy drop',
  async () => {
    let kube: InstanceType<typeof KubeClient> | undefined;
    try {
      await createInstalledCluster();
      kube = new KubeClient({ server: apiServerURL(loadCluster('cluster1')) });
      await cliOk(['--context', 'lab-cluster1', 'apply', '-f', '-'], {
        input: readFileSync(join(ROOT, 'examples/seed-walkthrough/echo-c1.yaml'), 'utf8'),
      });
      const svc = await kube.get('v1', 'Service', 'echo-service-c1', { namespace: 'default' });
      const vip = svc.spec.clusterIP as string;
      await until('client reaches the echo service', () => reach('client', vip), 120_000, 1000);

      const fwd = await until(
        'a FORWARDED flow client -> echo naming the service',
        async () =>
          (await allFlows()).find(
            (f) =>
              f.verdict === 'FORWARDED' &&
              f.source?.podName.startsWith('client-') === true &&
              f.destination?.podName.startsWith('echo-service-c1-') === true &&
              f.destinationService?.name === 'echo-service-c1',
          ),
        30_000,
        500,
      );
      assert.equal(fwd.source!.namespace, 'default');
      assert.equal(fwd.destination!.namespace, 'default');
      assert.equal(fwd.destinationService!.namespace, 'default');
      assert.equal(fwd.destination!.clusterName, 'cluster1');
      assert.ok(fwd.destination!.labels.includes('k8s:app=echo-service-c1'));
      assert.deepEqual(fwd.destination!.workloads, [
        { name: 'echo-service-c1', kind: 'Deployment' },
      ]);
      assert.ok(fwd.l4?.TCP, 'TCP');
      assert.ok(fwd.nodeName);
      const xlate = (await allFlows()).find(
        (f) => f.verdict === 'TRANSLATED' && f.destinationService?.name === 'echo-service-c1',
      );
      assert.ok(xlate, 'the socket LB reported its translation');

      await cliOk(['--context', 'lab-cluster1', 'apply', '-f', '-'], { input: POLICY });
      await until('app=other is denied', async () => !(await reach('other', vip)), 60_000, 500);
      const drop = await until(
        'a DROPPED POLICY_DENIED flow other -> echo naming the policy',
        async () =>
          (await allFlows()).find(
            (f) =>
              f.verdict === 'DROPPED' &&
              f.dropReasonDesc === 'POLICY_DENIED' &&
              f.source?.podName.startsWith('other-') === true &&
              f.destination?.podName.startsWith('echo-service-c1-') === true,
          ),
        30_000,
        500,
      );
      assert.equal(drop.trafficDirection, 'INGRESS');
      assert.deepEqual(
        drop.ingressDeniedBy?.map((p) => [p.kind, p.namespace, p.name]),
        [['CiliumNetworkPolicy', 'default', 'echo-from-client']],
      );
    } finally {
      kube?.close();
      await teardownLab(lab);
    }
  },
  { timeout: 600_000 },
);

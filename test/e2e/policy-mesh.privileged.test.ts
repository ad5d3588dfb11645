/**
 * Network policy across two meshed lab clusters: a server pod in cluster1 with a
 * CiliumNetworkPolicy allowing app=client. Without a cluster requirement the
 * selector matches cluster1's clients only (1.19's policy-default-local-cluster):
 * a cluster2 client with the same labels is denied, recognised by its own
 * identity from the mesh; `{key: io.cilium.k8s.policy.cluster, operator: Exists}`
 * lets it in.
 */
import assert from 'node:assert/strict';
import { privilegedTest } from '../helpers/privileged.js';
import {
  cliOk,
  createMeshedPair,
  podRunning,
  reachFromLabelledPod,
  teardownLab,
  until,
  useUniqueLab,
} from './lab-fixture.js';
import { ECHO_SERVER_POD, SERVER_FROM_CLIENT_POLICY } from './pods.js';

const lab = useUniqueLab('polx');
const { KubeClient } = await import('../../src/k8s/client.js');
const { apiServerURL } = await import('../../src/lab/state.js');

/** Runs curl in a new pod labelled app=APP; true when the server answered. */
const reach = (context: string, app: string, ip: string) =>
  reachFromLabelledPod(context, app, `http://${ip}:8080/`);

const EXISTS = SERVER_FROM_CLIENT_POLICY.replace(
  'fromEndpoints: [{matchLabels: {app: client}}]',
  'fromEndpoints: [{matchLabels: {app: client}, matchExpressions: [{key: io.cilium.k8s.policy.cluster, operator: Exists}]}]',
);

privilegedTest(
  'privileged: across meshed clusters, a selector matches the local cluster only unless it names the cluster label',
  async () => {
    let kube: InstanceType<typeof KubeClient> | undefined;
    try {
      const { c1 } = await createMeshedPair();
      kube = new KubeClient({ server: apiServerURL(c1) });
      await cliOk(['--context', 'lab-cluster1', 'apply', '-f', '-'], { input: ECHO_SERVER_POD });
      const pod = await podRunning(kube, 'server');
      const ip = pod.status.podIP as string;
      await until(
        'a cluster2 pod reaches the cluster1 server without policy',
        () => reach('lab-cluster2', 'client', ip),
        90_000,
        500,
      );

      await cliOk(['--context', 'lab-cluster1', 'apply', '-f', '-'], {
        input: SERVER_FROM_CLIENT_POLICY,
      });
      await until(
        'the cluster1 client is allowed',
        () => reach('lab-cluster1', 'client', ip),
        30_000,
        500,
      );
      await until(
        'the cluster2 client (same labels) is denied',
        async () => !(await reach('lab-cluster2', 'client', ip)),
        30_000,
        500,
      );
      assert.equal(await reach('lab-cluster2', 'client', ip), false, 'local-cluster default');

      await cliOk(['--context', 'lab-cluster1', 'apply', '-f', '-'], { input: EXISTS });
      await until(
        'the cluster2 client is allowed with the Exists requirement',
        () => reach('lab-cluster2', 'client', ip),
        30_000,
        500,
      );
      assert.equal(
        await reach('lab-cluster2', 'other', ip),
        false,
        'app=other of cluster2 stays denied',
      );
    } finally {
      kube?.close();
      await teardownLab(lab);
    }
  },
  { timeout: 900_000 },
);

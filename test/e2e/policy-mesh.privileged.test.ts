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

const lab = useUniqueLab('polx');
const { KubeClient } = await import('../../src/k8s/client.js');
const { apiServerURL } = await import('../../src/lab/state.js');

const SERVER = `apiVersion: v1
kind: Pod
metadata:
  name: server
  labels: {app: server}
spec:
  containers:
    - name: echo
      image: mendhak/http-https-echo:28
      ports: [{containerPort: 8080, name: http}]
`;
const POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: server-from-client
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client}}]
      toPorts: [{ports: [{port: http, protocol: TCP}]}]
`;

/** Runs curl in a new pod labelled app=APP; true when the server answered. */
const reach = (context: string, app: string, ip: string) =>
  reachFromLabelledPod(context, app, `http://${ip}:8080/`);

const EXISTS = POLICY.replace(
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
      await cliOk(['--context', 'lab-cluster1', 'apply', '-f', '-'], { input: SERVER });
      const pod = await podRunning(kube, 'server');
      const ip = pod.status.podIP as string;
      await until(
        'a cluster2 pod reaches the cluster1 server without policy',
        () => reach('lab-cluster2', 'client', ip),
        90_000,
        500,
      );

      await cliOk(['--context', 'lab-cluster1', 'apply', '-f', '-'], { input: POLICY });
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

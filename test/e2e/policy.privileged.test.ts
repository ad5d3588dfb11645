/**
 * Network policy end to end in one lab cluster: an echo server pod, client pods
 * made by `tendril run` with labels. Without policy every client reaches the
 * server; a CiliumNetworkPolicy selecting the server makes its ingress
 * default-deny and allows app=client only; deleting it restores access. The
 * agent computes the policy from the watched CNP and CiliumIdentities and the
 * TCX programs on the server's veth enforce it.
 */
import assert from 'node:assert/strict';
import { privilegedTest } from '../helpers/privileged.js';
import {
  cli,
  cliOk,
  podRunning,
  reachFromLabelledPod,
  teardownLab,
  until,
  useUniqueLab,
} from './lab-fixture.js';

const lab = useUniqueLab('pol');
const { KubeClient } = await import('../../src/k8s/client.js');
const { apiServerURL, loadCluster } = await import('../../src/lab/state.js');

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
const reach = (app: string, ip: string) =>
  reachFromLabelledPod('lab-cluster1', app, `http://${ip}:8080/`);

privilegedTest(
  'privileged: a CiliumNetworkPolicy makes a pod default-deny and allows it by labels',
  async () => {
    let kube: InstanceType<typeof KubeClient> | undefined;
    try {
      await cliOk(['lab', 'create', 'cluster1', '--nodes', '1', '--wait'], { timeoutMs: 180_000 });
      await cliOk([
        'install',
        '--context',
        'lab-cluster1',
        '--cluster-name',
        'cluster1',
        '--cluster-id',
        '1',
      ]);
      kube = new KubeClient({ server: apiServerURL(loadCluster('cluster1')) });
      await cliOk(['--context', 'lab-cluster1', 'apply', '-f', '-'], { input: SERVER });
      const pod = await podRunning(kube, 'server');
      const ip = pod.status.podIP as string;

      await until(
        'client reaches the server without policy',
        () => reach('client', ip),
        60_000,
        500,
      );
      assert.equal(await reach('other', ip), true, 'without policy any pod reaches the server');

      await cliOk(['--context', 'lab-cluster1', 'apply', '-f', '-'], { input: POLICY });
      await until(
        'app=other is denied once the policy selects the server',
        async () => !(await reach('other', ip)),
        30_000,
        500,
      );
      assert.equal(await reach('other', ip), false, 'app=other stays denied');
      await until('app=client is still allowed', () => reach('client', ip), 30_000, 500);

      const bad = await cli(['--context', 'lab-cluster1', 'apply', '-f', '-'], {
        input: POLICY.replace('port: http', 'port: "0"').replace('server-from-client', 'bad'),
      });
      assert.notEqual(bad.status, 0);
      assert.match(bad.all, /spec\.ingress\[0\]\.toPorts\[0\]\.ports\[0\]\.port/);

      await cliOk(['--context', 'lab-cluster1', 'delete', 'cnp', 'server-from-client']);
      await until(
        'app=other reaches the server after the policy is deleted',
        () => reach('other', ip),
        30_000,
        500,
      );
    } finally {
      kube?.close();
      await teardownLab(lab);
    }
  },
  { timeout: 600_000 },
);

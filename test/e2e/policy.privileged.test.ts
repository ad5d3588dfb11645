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
  createInstalledCluster,
  podRunning,
  reachFromLabelledPod,
  teardownLab,
  until,
  useUniqueLab,
} from './lab-fixture.js';
import { ECHO_SERVER_POD, SERVER_FROM_CLIENT_POLICY } from './pods.js';

const lab = useUniqueLab('pol');
const { KubeClient } = await import('../../src/k8s/client.js');
const { apiServerURL, loadCluster } = await import('../../src/lab/state.js');

/** Runs curl in a new pod labelled app=APP; true when the server answered. */
const reach = (app: string, ip: string) =>
  reachFromLabelledPod('lab-cluster1', app, `http://${ip}:8080/`);

privilegedTest(
  'privileged: a CiliumNetworkPolicy makes a pod default-deny and allows it by labels',
  async () => {
    let kube: InstanceType<typeof KubeClient> | undefined;
    try {
      await createInstalledCluster();
      kube = new KubeClient({ server: apiServerURL(loadCluster('cluster1')) });
      await cliOk(['--context', 'lab-cluster1', 'apply', '-f', '-'], { input: ECHO_SERVER_POD });
      const pod = await podRunning(kube, 'server');
      const ip = pod.status.podIP as string;

      await until(
        'client reaches the server without policy',
        () => reach('client', ip),
        60_000,
        500,
      );
      assert.equal(await reach('other', ip), true, 'without policy any pod reaches the server');

      await cliOk(['--context', 'lab-cluster1', 'apply', '-f', '-'], {
        input: SERVER_FROM_CLIENT_POLICY,
      });
      await until(
        'app=other is denied once the policy selects the server',
        async () => !(await reach('other', ip)),
        30_000,
        500,
      );
      assert.equal(await reach('other', ip), false, 'app=other stays denied');
      await until('app=client is still allowed', () => reach('client', ip), 30_000, 500);

      const bad = await cli(['--context', 'lab-cluster1', 'apply', '-f', '-'], {
        input: SERVER_FROM_CLIENT_POLICY.replace('port: http', 'port: "0"').replace(
          'server-from-client',
          'bad',
        ),
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

/**
 * CIDR identities and the host entity end to end, in one lab cluster: a peer
 * outside the cluster (two addresses, 172.30.200.1 and 172.30.200.129, on the
 * lab's underlay bridge, a TCP echo server on port 80 there, and a route back
 * to the worker's pod CIDR) and a client pod running the matrix prober (TCP
 * echo on 81).
 * - Egress: without policy the client reaches both; a CNP with `toCIDRSet:
 *   172.30.200.0/24 except 172.30.200.128/25` on the client allows .1 and
 *   denies .129 (the prefixes get node-local CIDR identities in the ipcache);
 *   deleting it allows both.
 * - Ingress: the outside peer connects to the pod from .1 and from .129: a CNP
 *   with `fromCIDRSet` (same CIDR and except) admits .1 only, and so does a
 *   NetworkPolicy `ipBlock` with `except`.
 * - The host entity: the worker node itself (its netns, a prober there): a CNP
 *   allowing `fromEntities: [host]` only admits the node and not the outside
 *   peer; an `ingressDeny` of `host` shuts the node out (deny beats the
 *   built-in allow-localhost) while the outside peer, allowed as `world`, passes.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { privilegedTest } from '../helpers/privileged.js';
import {
  cliOk,
  createInstalledCluster,
  inPodCommand,
  podRunning,
  teardownLab,
  until,
  useUniqueLab,
} from './lab-fixture.js';
import { sleepingPod } from './pods.js';
import { Prober } from './prober.js';

const lab = useUniqueLab('pcd');
const { KubeClient } = await import('../../src/k8s/client.js');
const { apiServerURL, loadCluster } = await import('../../src/lab/state.js');
const { underlayNetns, nodeNetns, UNDERLAY_BRIDGE } = await import('../../src/lab/layout.js');

const PROBER = fileURLToPath(new URL('./matrix-prober.mjs', import.meta.url));
const INSIDE = '172.30.200.1';
const EXCEPTED = '172.30.200.129';
const POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: to-external, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress:
    - toCIDRSet: [{cidr: 172.30.200.0/24, except: [172.30.200.128/25]}]
      toPorts: [{ports: [{port: "80", protocol: TCP}]}]
`;

const FROM_CIDR = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: from-external, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: client}}
  ingress:
    - fromCIDRSet: [{cidr: 172.30.200.0/24, except: [172.30.200.128/25]}]
      toPorts: [{ports: [{port: "81", protocol: TCP}]}]
`;
const FROM_IPBLOCK = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-external-np, namespace: default}
spec:
  podSelector: {matchLabels: {app: client}}
  ingress:
    - from: [{ipBlock: {cidr: 172.30.200.0/24, except: [172.30.200.128/25]}}]
      ports: [{port: 81, protocol: TCP}]
`;
const FROM_HOST = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: from-host, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: client}}
  ingress: [{fromEntities: [host]}]
`;
const DENY_HOST = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: deny-host, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: client}}
  ingress: [{fromEntities: [world]}]
  ingressDeny: [{fromEntities: [host]}]
`;

privilegedTest(
  'privileged: CIDR identities (toCIDRSet and fromCIDRSet/ipBlock with except) for a peer outside the cluster, and the host entity',
  async () => {
    let kube: InstanceType<typeof KubeClient> | undefined;
    const children: ChildProcess[] = [];
    try {
      await createInstalledCluster();
      kube = new KubeClient({ server: apiServerURL(loadCluster('cluster1')) });
      const k = kube;
      await k.create(sleepingPod('default', 'client', { app: 'client' }));
      const pod = await podRunning(k, 'client', 120_000);
      const node = await k.get('v1', 'Node', pod.spec.nodeName as string);
      const nodeIP = (node.status.addresses as Array<{ type: string; address: string }>).find(
        (a) => a.type === 'InternalIP',
      )!.address;
      // the peer outside the cluster: addresses on the underlay bridge (removed with the lab's underlay netns)
      const ns = underlayNetns();
      const ipns = (...args: string[]) =>
        execFileSync('ip', ['netns', 'exec', ns, 'ip', ...args], { encoding: 'utf8' });
      ipns('addr', 'add', `${INSIDE}/16`, 'dev', UNDERLAY_BRIDGE);
      ipns('addr', 'add', `${EXCEPTED}/16`, 'dev', UNDERLAY_BRIDGE);
      ipns('route', 'replace', node.spec.podCIDR as string, 'via', nodeIP);
      const echo = spawn('ip', ['netns', 'exec', ns, process.execPath, PROBER, '80'], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      children.push(echo);
      const outside = new Prober(echo);
      await outside.ready;
      // a prober in the worker node's own netns: the host entity
      const onNode = spawn(
        'ip',
        ['netns', 'exec', nodeNetns(pod.spec.nodeName as string), process.execPath, PROBER, '82'],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      );
      children.push(onNode);
      const host = new Prober(onNode);
      await host.ready;
      const [cmd, args] = inPodCommand(
        { cluster: 'cluster1', node: pod.spec.nodeName as string, uid: pod.metadata.uid! },
        [process.execPath, PROBER, '81'],
      );
      const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
      children.push(child);
      const client = new Prober(child);
      await client.ready;

      await until(
        'the client reaches both outside addresses without policy',
        async () => (await client.reach(INSIDE)) && (await client.reach(EXCEPTED)),
        60_000,
      );
      await cliOk(['--context', 'lab-cluster1', 'apply', '-f', '-'], { input: POLICY });
      await until(
        'the excepted address denied once the policy selects the client',
        async () => !(await client.reach(EXCEPTED, 1500)),
        60_000,
      );
      for (let i = 0; i < 3; i++) {
        assert.equal(await client.reach(INSIDE, 5000), true, `${INSIDE} allowed (inside the CIDR)`);
        assert.equal(await client.reach(EXCEPTED, 1500), false, `${EXCEPTED} denied (except)`);
      }
      await cliOk(['--context', 'lab-cluster1', 'delete', 'cnp', 'to-external']);
      await until(
        'the excepted address reached after the policy is deleted',
        () => client.reach(EXCEPTED),
        60_000,
      );

      // Ingress from outside the cluster: fromCIDRSet with except, then ipBlock with except.
      const podIP = pod.status.podIP as string;
      const fromOutside = (from: string, timeoutMs = 2000) =>
        outside.reach(podIP, timeoutMs, { port: 81, from });
      const fromNode = (timeoutMs = 2000) => host.reach(podIP, timeoutMs, { port: 81 });
      await until(
        'the pod reached from both outside addresses and the node without policy',
        async () => (await fromOutside(INSIDE)) && (await fromOutside(EXCEPTED)) && fromNode(),
        60_000,
      );
      for (const [kind, name, policy] of [
        ['cnp', 'from-external', FROM_CIDR],
        ['netpol', 'from-external-np', FROM_IPBLOCK],
      ] as const) {
        await cliOk(['--context', 'lab-cluster1', 'apply', '-f', '-'], { input: policy });
        await until(
          `${kind} ${name}: the excepted address denied`,
          async () => !(await fromOutside(EXCEPTED, 1500)),
          60_000,
        );
        for (let i = 0; i < 2; i++) {
          assert.equal(await fromOutside(INSIDE, 5000), true, `${kind}: ${INSIDE} admitted`);
          assert.equal(await fromOutside(EXCEPTED, 1500), false, `${kind}: ${EXCEPTED} denied`);
        }
        await cliOk(['--context', 'lab-cluster1', 'delete', kind, name]);
        await until(
          `${kind} ${name} deleted: the excepted address admitted`,
          () => fromOutside(EXCEPTED),
          60_000,
        );
      }

      // The host entity: the node is `host`, the outside peer is not.
      await cliOk(['--context', 'lab-cluster1', 'apply', '-f', '-'], { input: FROM_HOST });
      await until(
        'fromEntities host: the outside peer denied',
        async () => !(await fromOutside(INSIDE, 1500)),
        60_000,
      );
      assert.equal(await fromNode(5000), true, 'fromEntities host: the node admitted');
      await cliOk(['--context', 'lab-cluster1', 'delete', 'cnp', 'from-host']);
      await cliOk(['--context', 'lab-cluster1', 'apply', '-f', '-'], { input: DENY_HOST });
      await until('ingressDeny host: the node denied', async () => !(await fromNode(1500)), 60_000);
      for (let i = 0; i < 2; i++) {
        assert.equal(await fromNode(1500), false, 'ingressDeny host: the node denied');
        assert.equal(await fromOutside(INSIDE, 5000), true, 'ingressDeny host: world admitted');
      }
      await cliOk(['--context', 'lab-cluster1', 'delete', 'cnp', 'deny-host']);
      await until('the node admitted again', () => fromNode(), 60_000);
    } finally {
      for (const c of children) c.kill('SIGKILL');
      kube?.close();
      await teardownLab(lab);
    }
  },
  { timeout: 600_000 },
);

/**
 * CIDR identities end to end, in one lab cluster: a peer outside the cluster
 * (two addresses, 172.30.200.1 and 172.30.200.129, on the lab's underlay
 * bridge, a TCP echo server on port 80 there, and a route back to the worker's
 * pod CIDR) and a client pod running the matrix prober. Without policy the
 * client reaches both; a CNP with `toCIDRSet: 172.30.200.0/24 except
 * 172.30.200.128/25` on the client allows .1 and denies .129 (the prefixes
 * get node-local CIDR identities in the ipcache); deleting it allows both.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { privilegedTest } from '../helpers/privileged.js';
import { cliOk, inPodCommand, teardownLab, until, useUniqueLab } from './lab-fixture.js';

const lab = useUniqueLab('pcd');
const { KubeClient } = await import('../../src/k8s/client.js');
const { apiServerURL, loadCluster } = await import('../../src/lab/state.js');
const { underlayNetns, UNDERLAY_BRIDGE } = await import('../../src/lab/layout.js');

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

/** Reads JSON lines of a prober; resolves requests by id. */
function proberOf(child: ChildProcess) {
  let next = 0;
  const waiting = new Map<number, (v: Record<string, unknown>) => void>();
  let onReady!: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const m = JSON.parse(line) as Record<string, unknown>;
    if (m.ready) onReady();
    else waiting.get(m.id as number)?.(m);
  });
  const reach = async (ip: string, timeoutMs = 2000): Promise<boolean> => {
    const id = ++next;
    const m = await new Promise<Record<string, unknown>>((resolve) => {
      waiting.set(id, resolve);
      child.stdin!.write(
        JSON.stringify({ id, op: 'probe', timeoutMs, targets: [{ ip, port: 80, proto: 'tcp' }] }) +
          '\n',
      );
    });
    waiting.delete(id);
    return (m.results as boolean[])[0] === true;
  };
  return { ready, reach };
}

privilegedTest(
  'privileged: toCIDRSet with except reaches a peer outside the cluster through its CIDR identity',
  async () => {
    let kube: InstanceType<typeof KubeClient> | undefined;
    const children: ChildProcess[] = [];
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
      const k = kube;
      await k.create({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'client', namespace: 'default', labels: { app: 'client' } },
        spec: { containers: [{ name: 'sleep', image: 'busybox', command: ['sleep', '36000'] }] },
      });
      const pod = await until(
        'client running',
        async () => {
          const p = await k.getOrUndefined('v1', 'Pod', 'client', { namespace: 'default' });
          return p?.status?.phase === 'Running' && p.status.podIP ? p : undefined;
        },
        120_000,
        300,
      );
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
      await proberOf(echo).ready;
      const [cmd, args] = inPodCommand(
        { cluster: 'cluster1', node: pod.spec.nodeName as string, uid: pod.metadata.uid! },
        [process.execPath, PROBER, '81'],
      );
      const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
      children.push(child);
      const client = proberOf(child);
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
    } finally {
      for (const c of children) c.kill('SIGKILL');
      kube?.close();
      await teardownLab(lab);
    }
  },
  { timeout: 600_000 },
);

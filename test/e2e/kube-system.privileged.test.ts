/**
 * Tendril's daemons as kube-system objects in a lab cluster, with real
 * kubectl (Debian's kubectl 1.32), as root: after `tendril install`,
 * `kubectl -n kube-system get pods|ds,deploy` show the agent DaemonSet (a pod
 * per node), the operator and DNS Deployments, Running, with the node's
 * address (host network); `logs deploy/tendril-operator`, `logs
 * ds/tendril-agent` and `logs -f` read the daemons' output; killing the
 * operator process by its pid makes the supervisor restart it and the pod's
 * restartCount 1 (`logs -p` shows the killed run); deleting an agent's pod
 * restarts that agent under a new pod; `clustermesh enable` adds the
 * clustermesh-apiserver Deployment (containers etcd and apiserver); no
 * CiliumEndpoint or identity is made for these pods; uninstall removes them.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { privilegedTest } from '../helpers/privileged.js';
import { cli, cliOk, teardownLab, until, useUniqueLab } from './lab-fixture.js';

const lab = useUniqueLab('ksy');
const CLUSTER = 'ksys1';
const CTX = `lab-${CLUSTER}`;

function kubectl(args: string[]): Promise<{ status: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      'kubectl',
      ['--context', CTX, ...args],
      { env: process.env, timeout: 60_000, maxBuffer: 16 << 20 },
      (error, out, err) => {
        const code = (error as { code?: unknown } | null)?.code;
        resolve({ status: error ? (typeof code === 'number' ? code : 1) : 0, out, err });
      },
    );
  });
}

async function kubectlOk(args: string[]): Promise<string> {
  const r = await kubectl(args);
  assert.equal(r.status, 0, `kubectl ${args.join(' ')} failed: ${r.err}`);
  return r.out;
}

interface PodJSON {
  metadata: { name: string; labels: Record<string, string> };
  spec: { nodeName: string; hostNetwork: boolean };
  status: {
    phase: string;
    podIP: string;
    containerStatuses: Array<{
      name: string;
      ready: boolean;
      restartCount: number;
      containerID?: string;
      lastState: { terminated?: { exitCode: number } };
    }>;
  };
}

async function systemPods(selector: string): Promise<PodJSON[]> {
  const r = await kubectl(['-n', 'kube-system', 'get', 'pods', '-l', selector, '-o', 'json']);
  if (r.status !== 0) return [];
  return (JSON.parse(r.out) as { items: PodJSON[] }).items;
}

const allReady = (pods: PodJSON[]) =>
  pods.length > 0 &&
  pods.every(
    (p) => p.status.phase === 'Running' && p.status.containerStatuses?.every((c) => c.ready),
  );

/** The pid in a reflected container's ID (supervisor://DAEMON/PID). */
function pidOf(p: PodJSON): number {
  const id = p.status.containerStatuses[0]!.containerID ?? '';
  const m = /^supervisor:\/\/[^/]+\/(\d+)$/.exec(id);
  assert.ok(m, `container ID ${id}`);
  return Number(m[1]);
}

privilegedTest(
  'privileged: Tendril daemons as kube-system DaemonSet/Deployments/pods with real kubectl',
  async () => {
    try {
      await cliOk(['lab', 'create', CLUSTER, '--nodes', '1', '--wait'], { timeoutMs: 240_000 });
      await cliOk(['install', '--context', CTX, '--cluster-name', CLUSTER, '--cluster-id', '7'], {
        timeoutMs: 180_000,
      });
      const { loadCluster } = await import('../../src/lab/state.js');
      const c = loadCluster(CLUSTER);
      const ipOf = new Map(c.nodes.map((n) => [n.name, n.ip]));

      await until(
        'agents, operator and DNS pods to be Running and ready',
        async () =>
          allReady(await systemPods('k8s-app=tendril-agent')) &&
          (await systemPods('k8s-app=tendril-agent')).length === 2 &&
          allReady(await systemPods('k8s-app=tendril-operator')) &&
          allReady(await systemPods('k8s-app=tendril-dns')),
        60_000,
      );
      const table = await kubectlOk(['-n', 'kube-system', 'get', 'pods', '-o', 'wide']);
      assert.match(table, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE/);
      for (const n of c.nodes)
        assert.match(
          table,
          new RegExp(
            `tendril-agent-[a-z0-9]{5}\\s+1/1\\s+Running\\s+0\\s+\\S+\\s+${n.ip.replace(/\./g, '\\.')}\\s+${n.name}`,
          ),
          table,
        );
      assert.match(table, /tendril-operator-[a-z0-9]+-[a-z0-9]{5}\s+1\/1\s+Running\s+0/);
      assert.match(table, /tendril-dns-[a-z0-9]+-[a-z0-9]{5}\s+1\/1\s+Running\s+0/);
      for (const p of await systemPods('app.kubernetes.io/part-of=tendril')) {
        assert.equal(p.spec.hostNetwork, true);
        assert.equal(p.status.podIP, ipOf.get(p.spec.nodeName));
      }

      const workloads = await kubectlOk(['-n', 'kube-system', 'get', 'ds,deploy']);
      assert.match(
        workloads,
        /daemonset\.apps\/tendril-agent\s+2\s+2\s+2\s+2\s+2\s+<none>/,
        workloads,
      );
      assert.match(workloads, /deployment\.apps\/tendril-operator\s+1\/1\s+1\s+1/);
      assert.match(workloads, /deployment\.apps\/tendril-dns\s+1\/1\s+1\s+1/);
      // Tendril's own CLI prints the same objects
      const viaTendril = await cliOk(['--context', CTX, 'get', 'ds', '-n', 'kube-system']);
      assert.match(viaTendril.out, /tendril-agent\s+2\s+2\s+2\s+2\s+2/);

      // logs: the daemon's current run, without the supervisor's lines
      const opLogFile = readFileSync(
        `${lab.home}/clusters/${CLUSTER}/logs/tendril-operator.log`,
        'utf8',
      );
      const opLogs = await kubectlOk(['-n', 'kube-system', 'logs', 'deploy/tendril-operator']);
      assert.ok(opLogs.length > 0, 'operator logs are empty');
      assert.doesNotMatch(opLogs, /supervisor: /);
      for (const line of opLogs.trim().split('\n').slice(0, 5))
        assert.ok(opLogFile.includes(line), `${line} is not in the operator's log`);
      const agentLogs = await kubectl(['-n', 'kube-system', 'logs', 'ds/tendril-agent']);
      assert.equal(agentLogs.status, 0, agentLogs.err);
      assert.ok(agentLogs.out.length > 0, 'agent logs are empty');
      assert.equal(
        (
          await kubectlOk(['-n', 'kube-system', 'logs', 'deploy/tendril-operator', '--tail=1'])
        ).split('\n').length,
        2,
      );

      // logs -f follows the operator until its process ends
      const f = spawn(
        'kubectl',
        ['--context', CTX, '-n', 'kube-system', 'logs', '-f', 'deploy/tendril-operator'],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let followed = '';
      f.stdout.on('data', (d: Buffer) => (followed += d.toString()));
      const followEnded = new Promise<number | null>((r) => f.on('exit', (code) => r(code)));
      try {
        await until('logs -f to print', async () => followed.length > 0, 20_000);

        // kill the operator process by its pid: the supervisor restarts it, the pod counts a restart
        const [op] = await systemPods('k8s-app=tendril-operator');
        const pid = pidOf(op!);
        assert.equal(
          Number(readFileSync(`${lab.home}/clusters/${CLUSTER}/pids/tendril-operator.pid`, 'utf8')),
          pid,
        );
        process.kill(pid, 'SIGKILL');
        const code = await Promise.race([
          followEnded,
          new Promise<string>((r) => setTimeout(() => r('timeout'), 20_000)),
        ]);
        assert.equal(code, 0, 'logs -f did not end when the operator was killed');
        await until(
          'the operator pod to count one restart and be ready again',
          async () => {
            const [p] = await systemPods('k8s-app=tendril-operator');
            const cs = p?.status.containerStatuses[0];
            return p?.metadata.name === op!.metadata.name && cs?.restartCount === 1 && cs.ready;
          },
          30_000,
        );
        const [after] = await systemPods('k8s-app=tendril-operator');
        assert.equal(after!.status.containerStatuses[0]!.lastState.terminated?.exitCode, 137);
        assert.notEqual(pidOf(after!), pid);
        const table2 = await kubectlOk([
          '-n',
          'kube-system',
          'get',
          'pods',
          '-l',
          'k8s-app=tendril-operator',
        ]);
        // RESTARTS with the age of the last restart, as kubectl prints it
        assert.match(table2, /tendril-operator-\S+\s+1\/1\s+Running\s+1 \(\d+s ago\)\s/, table2);
        // the kubelet's Events of the reflected pod: describe's Events section
        await until(
          'describe to show the operator pod’s BackOff and Started Events',
          async () => {
            const d = await kubectl(['-n', 'kube-system', 'describe', 'pod', op!.metadata.name]);
            return (
              /Events:[\s\S]*Normal\s+Started\s+\S+\s+kubelet\s+Started container operator/.test(
                d.out,
              ) &&
              /Warning\s+BackOff\s+\S+\s+kubelet\s+Back-off restarting failed container operator in pod /.test(
                d.out,
              )
            );
          },
          20_000,
        );
        const previous = await kubectlOk([
          '-n',
          'kube-system',
          'logs',
          '-p',
          'deploy/tendril-operator',
        ]);
        assert.equal(previous.trim().split('\n')[0], opLogs.trim().split('\n')[0]);
      } finally {
        f.kill();
      }

      // deleting an agent's pod restarts that agent under a new pod, as a DaemonSet would
      const agents = await systemPods('k8s-app=tendril-agent');
      const victim = agents.find((p) => p.spec.nodeName.endsWith('-worker'))!;
      const oldPid = pidOf(victim);
      await kubectlOk([
        '-n',
        'kube-system',
        'delete',
        'pod',
        victim.metadata.name,
        '--timeout=60s',
      ]);
      await until(
        'a new agent pod on the worker',
        async () => {
          const now = await systemPods('k8s-app=tendril-agent');
          const w = now.find((p) => p.spec.nodeName === victim.spec.nodeName);
          return (
            now.length === 2 &&
            w !== undefined &&
            w.metadata.name !== victim.metadata.name &&
            allReady([w]) &&
            pidOf(w) !== oldPid
          );
        },
        60_000,
      );

      // kubectl get events: the deleted agent pod's Killing
      const events = await kubectlOk(['-n', 'kube-system', 'get', 'events']);
      assert.match(
        events,
        new RegExp(`Normal\\s+Killing\\s+pod/${victim.metadata.name}\\s+Stopping container agent`),
        events,
      );

      // no endpoints or identities for host-network daemon pods
      const ceps = await kubectlOk(['-n', 'kube-system', 'get', 'ciliumendpoints', '-o', 'name']);
      assert.equal(ceps.trim(), '');
      const ids = await kubectlOk(['get', 'ciliumidentities', '-o', 'json']);
      assert.doesNotMatch(ids, /tendril-agent|tendril-operator/);
      // tendril status is not disturbed, once the restarted agent answers: the reflected pod
      // is Ready when its process runs (the lab has no readiness probe), and the agent opens
      // its API socket a moment later
      let st = await cli(['status', '--context', CTX]);
      for (const deadline = Date.now() + 30_000; st.status !== 0 && Date.now() < deadline;) {
        await new Promise((r) => setTimeout(r, 1000));
        st = await cli(['status', '--context', CTX]);
      }
      assert.equal(st.status, 0, st.all);

      // the clustermesh-apiserver (with its etcd) appears once the mesh is enabled
      await cliOk(['clustermesh', 'enable', '--context', CTX, '--service-type', 'NodePort'], {
        timeoutMs: 150_000,
      });
      await until(
        'the clustermesh-apiserver pod to be ready',
        async () => allReady(await systemPods('k8s-app=clustermesh-apiserver')),
        60_000,
      );
      const [mesh] = await systemPods('k8s-app=clustermesh-apiserver');
      assert.deepEqual(mesh!.status.containerStatuses.map((s) => s.name).sort(), [
        'apiserver',
        'etcd',
      ]);
      assert.match(
        await kubectlOk(['-n', 'kube-system', 'get', 'deploy', 'clustermesh-apiserver']),
        /clustermesh-apiserver\s+1\/1\s+1\s+1/,
      );
      const meshLogs = await kubectl(['-n', 'kube-system', 'logs', 'deploy/clustermesh-apiserver']);
      assert.equal(meshLogs.status, 0, meshLogs.err);
      const etcdLogs = await kubectl([
        '-n',
        'kube-system',
        'logs',
        'deploy/clustermesh-apiserver',
        '-c',
        'etcd',
      ]);
      assert.equal(etcdLogs.status, 0, etcdLogs.err);
      assert.notEqual(meshLogs.out, etcdLogs.out);

      // exec is refused with a clear message
      const ex = await kubectl([
        '-n',
        'kube-system',
        'exec',
        'deploy/tendril-operator',
        '--',
        'true',
      ]);
      assert.notEqual(ex.status, 0);
      assert.match(ex.err, /supervisor runs/);

      // uninstall: the reflections go with the daemons
      await cliOk(['clustermesh', 'disable', '--context', CTX], { timeoutMs: 120_000 });
      await cliOk(['uninstall', '--context', CTX], { timeoutMs: 120_000 });
      await until(
        'the reflected objects to be removed',
        async () =>
          (await systemPods('app.kubernetes.io/part-of=tendril')).length === 0 &&
          (await kubectlOk(['-n', 'kube-system', 'get', 'ds,deploy', '-o', 'name'])).trim() === '',
        30_000,
      );
    } finally {
      await teardownLab(lab);
    }
  },
  { timeout: 600_000 },
);

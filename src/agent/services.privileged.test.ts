/**
 * Services at the socket in a lab cluster, as root: the seed's echo
 * Deployment and Service reached by DNS name from a pod on another node, DNS
 * over UDP through the kube-dns VIP, all 3 backends getting connections, a
 * deleted backend getting none, an agent killed under load losing no
 * connection, and uninstall leaving no program attached to any node cgroup.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after } from 'node:test';
import { privilegedTest } from '../../test/helpers/privileged.js';
import {
  cli,
  cliOk,
  inPod,
  inPodCommand,
  podRunning,
  ROOT,
  sleep,
  teardownLab,
  until,
  useUniqueLab,
} from '../../test/e2e/lab-fixture.js';

const lab = useUniqueLab('svc');
after(() => teardownLab(lab));

const { KubeClient } = await import('../k8s/client.js');
const { createCluster } = await import('../lab/create.js');
const { daemonStatus } = await import('../lab/daemons.js');
const { nodeCgroup } = await import('../lab/layout.js');
const { apiServerURL } = await import('../lab/state.js');
const { install, uninstall, agentDaemonName } = await import('../install/install.js');
const { AgentClient } = await import('./api/client.js');
const { agentSocketPath } = await import('../install/lab-daemon-config.js');

privilegedTest(
  'privileged: services at the socket: DNS name, UDP DNS, 3 backends, deleted backend, agent restart under load, uninstall detaches',
  async () => {
    const c = await createCluster({ name: 'c1', nodes: 2, wait: true });
    const kube = new KubeClient({ server: apiServerURL(c) });
    try {
      await install({ context: 'lab-c1', clusterName: 'cluster1' });
      const workers = c.nodes.filter((n) => n.role === 'worker');
      await cliOk(['--context', 'lab-c1', 'apply', '-f', '-'], {
        input: readFileSync(join(ROOT, 'examples/seed-walkthrough/echo-c1.yaml'), 'utf8'),
      });
      // the client goes on the worker the echo pod is NOT on (the seed's "another node")
      const echoPod = await until('echo pod scheduled', async () => {
        const l = await kube.list('v1', 'Pod', {
          namespace: 'default',
          labelSelector: 'app=echo-service-c1',
        });
        return l.items.find((p) => p.spec?.nodeName);
      });
      const w2 = workers.find((n) => n.name !== echoPod.spec.nodeName)!;
      await kube.create({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'client', namespace: 'default' },
        spec: {
          nodeName: w2.name,
          containers: [{ name: 'sh', image: 'busybox', command: ['sleep', '36000'] }],
        },
      });
      const client = await podRunning(kube, 'client', 45_000);
      const pod = { cluster: 'c1', node: w2.name, uid: client.metadata.uid! };

      // --- the seed's curl, by DNS name, through tendril exec (the pod's resolv.conf) ---
      const body = await until(
        'echo by DNS name',
        async () => {
          const r = await cli(
            [
              '--context',
              'lab-c1',
              'exec',
              'client',
              '--',
              'wget',
              '-q',
              '-O',
              '-',
              'http://echo-service-c1.default.svc.cluster.local',
            ],
            { timeoutMs: 60_000 },
          );
          return r.status === 0
            ? (JSON.parse(r.out) as { os: { hostname: string }; ip: string })
            : undefined;
        },
        60_000,
      );
      assert.match(body.os.hostname, /^echo-service-c1-/);
      assert.equal(
        body.ip,
        client.status.podIP,
        'the echo sees the client pod: no NAT, translation at the socket',
      );

      // --- DNS over UDP through the kube-dns VIP; replies come from the VIP ---
      const ns = inPod(pod, [
        'busybox',
        'nslookup',
        'echo-service-c1.default.svc.cluster.local',
        '10.96.0.10',
      ]);
      const svc = await kube.get('v1', 'Service', 'echo-service-c1', { namespace: 'default' });
      assert.ok(ns.includes(svc.spec.clusterIP), ns);

      // --- 3 replicas: all get new connections ---
      const vip = `http://${svc.spec.clusterIP}:80/`;
      const curlVip = () =>
        JSON.parse(
          inPod(pod, [
            'curl',
            '-s',
            '-m',
            '3',
            '--retry',
            '5',
            '--retry-connrefused',
            '--retry-delay',
            '1',
            vip,
          ]),
        ).os.hostname as string;
      await kube.patch(
        'apps/v1',
        'Deployment',
        'echo-service-c1',
        { spec: { replicas: 3 } },
        { namespace: 'default' },
      );
      const seen = await until(
        '3 backends answer',
        () => {
          const names = new Set<string>();
          for (let i = 0; i < 30; i++) names.add(curlVip());
          return names.size === 3 ? names : undefined;
        },
        90_000,
      );
      assert.equal(seen.size, 3);

      // --- a deleted backend gets no new connections once reconciled ---
      const victim = [...seen][0]!;
      await kube.delete('v1', 'Pod', victim, { namespace: 'default' });
      await until('victim gone from the service', () => {
        for (let i = 0; i < 20; i++) if (curlVip() === victim) return undefined;
        return true;
      });
      for (let i = 0; i < 20; i++) assert.notEqual(curlVip(), victim);

      // --- a service with no backends refuses at once ---
      await kube.create({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'empty', namespace: 'default' },
        spec: { selector: { app: 'none' }, ports: [{ port: 80, protocol: 'TCP' }] },
      });
      const empty = await kube.get('v1', 'Service', 'empty', { namespace: 'default' });
      await until('empty service in the maps', async () =>
        (await new AgentClient(agentSocketPath('c1', w2.name)).services()).some(
          (s) => s.frontend.ip === empty.spec.clusterIP,
        ),
      );
      const t0 = Date.now();
      const r = spawnSync(
        ...inPodCommand(pod, ['curl', '-s', '-m', '5', `http://${empty.spec.clusterIP}/`]),
        { encoding: 'utf8' },
      );
      assert.equal(r.status, 7, 'curl: connection refused');
      assert.ok(Date.now() - t0 < 2000, 'refused at once, not a timeout');

      // --- kill the client node's agent under load: no established connection lost ---
      const before = await new AgentClient(agentSocketPath('c1', w2.name)).status();
      const wrk = spawn(...inPodCommand(pod, ['wrk', '-t1', '-c4', '-d8s', vip]));
      let out = '';
      wrk.stdout.on('data', (b: Buffer) => (out += b.toString()));
      wrk.stderr.on('data', (b: Buffer) => (out += b.toString()));
      const closed = new Promise<number | null>((res) => wrk.on('close', (code) => res(code)));
      await sleep(2000);
      const d = daemonStatus('c1').find((x) => x.name === agentDaemonName(w2.name))!;
      process.kill(d.pid!, 'SIGKILL');
      const code = await closed;
      assert.equal(code, 0, out);
      assert.match(out, /Requests\/sec/);
      assert.doesNotMatch(out, /Socket errors/, out);
      assert.doesNotMatch(out, /Non-2xx/, out);
      const after2 = await until('agent back', async () => {
        const s = await new AgentClient(agentSocketPath('c1', w2.name), {
          timeoutMs: 1000,
        }).status();
        return s.pid !== before.pid && s.health === 'OK' ? s : undefined;
      });
      assert.equal(
        after2.socketLB.attached,
        true,
        'the restarted agent re-attached (reused its pinned links)',
      );
      assert.ok(curlVip());

      // --- uninstall: no program left attached ---
      await uninstall({ context: 'lab-c1' });
      for (const n of c.nodes) {
        if (!existsSync(nodeCgroup('c1', n.name))) continue;
        const attached = execFileSync('bpftool', ['cgroup', 'tree', nodeCgroup('c1', n.name)], {
          encoding: 'utf8',
        });
        assert.ok(
          !/connect4|sendmsg4|recvmsg4|getpeername4/.test(attached),
          `${n.name}: ${attached}`,
        );
      }
    } finally {
      kube.close();
    }
  },
  { timeout: 400_000 },
);

/**
 * Tendril in a lab cluster, as root: install (and its guards), pods getting
 * addresses from their node's pod CIDR through tendril-cni, identities and
 * CiliumEndpoints, pod-to-pod across nodes by IP in native and tunnel mode,
 * an agent killed and restarted by the supervisor resuming from its state,
 * and uninstall leaving no daemon, pin, route or attached program behind.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after } from 'node:test';
import { privilegedTest } from '../../test/helpers/privileged.js';
import { sleep, teardownLab, until, useUniqueLab } from '../../test/e2e/lab-fixture.js';

const lab = useUniqueLab('inst');
const { prefix } = lab;
after(() => teardownLab(lab));

const { KubeClient } = await import('../k8s/client.js');
const { createCluster } = await import('../lab/create.js');
const { daemonStatus } = await import('../lab/daemons.js');
const { nodeBpffsDir, nodeCgroup, podNetns } = await import('../lab/layout.js');
const { apiServerURL } = await import('../lab/state.js');
const { install, uninstall, agentDaemonName, DAEMON_OPERATOR } = await import('./install.js');
const { readInstallState } = await import('./install-state.js');
const { AgentClient } = await import('../agent/api/client.js');
const { agentSocketPath } = await import('./lab-daemon-config.js');
const { collectStatus } = await import('./status.js');
type KubeObject = import('../k8s/objects.js').KubeObject;

/** curl from inside a pod's network namespace (no cgroup: pod-to-pod by IP). */
function curlFromPod(uid: string, url: string): string {
  return execFileSync(
    'nsenter',
    [`--net=/run/netns/${podNetns(uid)}`, 'curl', '-s', '-m', '5', url],
    { encoding: 'utf8', timeout: 10_000 },
  );
}

const echo = (replicas: number): KubeObject[] => [
  {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'echo', namespace: 'default', labels: { app: 'echo' } },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'echo' } },
      template: {
        metadata: { labels: { app: 'echo' } },
        spec: {
          containers: [
            { name: 'echo', image: 'mendhak/http-https-echo:28', ports: [{ containerPort: 8080 }] },
          ],
        },
      },
    },
  },
];

privilegedTest(
  'privileged: install, pods across nodes (native and tunnel), agent restart, uninstall leaves nothing',
  async () => {
    const c = await createCluster({ name: 'c1', nodes: 2, wait: true });
    const ctx = 'lab-c1';
    const kube = new KubeClient({ server: apiServerURL(c) });
    try {
      // --- guards ---
      await assert.rejects(
        install({ context: ctx, clusterName: 'Bad_Name' }),
        /invalid cluster name/,
      );
      await assert.rejects(
        install({ context: ctx, clusterName: 'cluster1', clusterId: '300' }),
        /invalid cluster ID/,
      );
      await assert.rejects(install({ context: 'lab-nope', clusterName: 'cluster1' }), /nope/);
      await assert.rejects(
        install({ context: ctx, clusterName: 'cluster1', set: ['routing-mode=ipip'] }),
        /must be one of native, tunnel/,
      );

      // --- install, racing a second install ---
      const [r1, r2] = await Promise.allSettled([
        install({
          context: ctx,
          clusterName: 'cluster1',
          enableL7Proxy: true,
          enableCrossClusterIpvs: true,
          identityAllocationMode: 'crd',
        }),
        (async () => {
          await sleep(5);
          return install({ context: ctx, clusterName: 'cluster1' });
        })(),
      ]);
      assert.equal(r1.status, 'fulfilled', r1.status === 'rejected' ? String(r1.reason) : '');
      assert.equal(r2.status, 'rejected');
      assert.match(
        String((r2 as PromiseRejectedResult).reason),
        /another `tendril install` \(pid \d+, since [^)]+\) holds the lock on cluster c1/,
      );
      const res = (r1 as PromiseFulfilledResult<Awaited<ReturnType<typeof install>>>).value;
      assert.equal(res.state.clusterId, 1);
      assert.ok(res.notes.some((n) => /IPVS is not used/.test(n)));
      assert.ok(res.notes.some((n) => /not applicable/.test(n)));
      assert.ok(res.notes.some((n) => /cluster ID 1 picked/.test(n)));
      assert.equal(readInstallState('c1')?.clusterName, 'cluster1');

      const again = await install({ context: ctx, clusterName: 'cluster1' });
      assert.equal(again.changed, false);
      await assert.rejects(
        install({ context: ctx, clusterName: 'cluster1', clusterId: 7 }),
        /identities embed|refusing to change it to 7/,
      );

      // --- pods on both workers get addresses from their node's CIDR ---
      for (const o of echo(2)) await kube.create(o);
      /** Waits until exactly N echo pods are Running with an IP; returns them. */
      const runningEchoPods = (n: number) =>
        until(`${n} running echo pods with IPs`, async () => {
          const l = await kube.list('v1', 'Pod', {
            namespace: 'default',
            labelSelector: 'app=echo',
          });
          const ok = l.items.filter((p) => p.status?.phase === 'Running' && p.status?.podIP);
          return ok.length === n ? ok : undefined;
        });
      const pods = await runningEchoPods(2);
      const nodes = new Set(pods.map((p) => p.spec.nodeName));
      assert.equal(nodes.size, 2, 'spread over both workers');
      for (const p of pods) {
        const node = c.nodes.find((n) => n.name === p.spec.nodeName)!;
        assert.equal(
          p.status.podIP.split('.').slice(0, 3).join('.'),
          node.podCIDR.split('.').slice(0, 3).join('.'),
          `${p.metadata.name} IP in ${node.podCIDR}`,
        );
      }
      // identities (cluster ID in bits 16-23) and CiliumEndpoints
      const ceps = await until('CiliumEndpoints with identities', async () => {
        const l = await kube.list('cilium.io/v2', 'CiliumEndpoint', { namespace: 'default' });
        return l.items.length === 2 && l.items.every((e) => Number(e.status?.identity?.id) > 0)
          ? l.items
          : undefined;
      });
      const id = Number(ceps[0]!.status.identity.id);
      assert.equal(id >> 16, 1);
      assert.equal(Number(ceps[1]!.status.identity.id), id, 'same labels, same identity');
      assert.ok(
        (await kube.list('cilium.io/v2', 'CiliumIdentity')).items.some(
          (o) => Number(o.metadata.name) === id,
        ),
      );

      // --- pod to pod across nodes, native routing ---
      const [a, b] = pods as [KubeObject, KubeObject];
      const body = await until('echo answers across nodes', () =>
        JSON.parse(curlFromPod(a.metadata.uid!, `http://${b.status.podIP}:8080/x`)),
      );
      assert.equal(body.path, '/x');
      assert.equal(body.ip, a.status.podIP, 'no NAT: the echo sees the client pod IP');

      // --- the agent's view ---
      const w1 = b.spec.nodeName as string;
      const st = await new AgentClient(agentSocketPath('c1', w1)).status();
      assert.equal(st.counts.endpoints, 1);
      assert.ok(st.reconcilers.find((r) => r.name === 'routes')!.desired >= 2);
      const cs = await collectStatus(ctx);
      assert.equal(cs.daemons.agents.ready, 3);
      assert.equal(cs.counts.endpoints, 2);

      // --- kill the agent: the supervisor restarts it, it resumes from its state ---
      const d0 = daemonStatus('c1').find((d) => d.name === agentDaemonName(w1))!;
      process.kill(d0.pid!, 'SIGKILL');
      const st2 = await until('agent restarted', async () => {
        const s = await new AgentClient(agentSocketPath('c1', w1), { timeoutMs: 1000 }).status();
        return s.pid !== st.pid ? s : undefined;
      });
      assert.equal(st2.counts.endpoints, 1, 'endpoint restored');
      assert.equal(
        (
          await until('echo after agent restart', () =>
            JSON.parse(curlFromPod(a.metadata.uid!, `http://${b.status.podIP}:8080/`)),
          )
        ).ip,
        a.status.podIP,
      );
      // a new pod on that node gets a fresh address (IPAM persisted)
      await kube.patch(
        'apps/v1',
        'Deployment',
        'echo',
        { spec: { replicas: 4 } },
        { namespace: 'default' },
      );
      const four = await runningEchoPods(4);
      assert.equal(new Set(four.map((p) => p.status.podIP)).size, 4, 'no address handed out twice');

      // --- tunnel mode ---
      const t = await install({
        context: ctx,
        clusterName: 'cluster1',
        set: ['routing-mode=tunnel'],
      });
      assert.equal(t.state.routingMode, 'tunnel');
      await until('vxlan routes', () => {
        const r = execFileSync('ip', ['-n', `${prefix}-${w1}`, 'route', 'show', 'proto', '199'], {
          encoding: 'utf8',
        });
        return /dev tendril_vxlan/.test(r) ? true : undefined;
      });
      const mtu = execFileSync(
        'ip',
        ['-n', `${prefix}-${w1}`, '-j', 'link', 'show', 'tendril_vxlan'],
        { encoding: 'utf8' },
      );
      assert.equal(JSON.parse(mtu)[0].mtu, 1450);
      const rx0 = JSON.parse(
        execFileSync('ip', ['-n', `${prefix}-${w1}`, '-j', '-s', 'link', 'show', 'tendril_vxlan'], {
          encoding: 'utf8',
        }),
      )[0].stats64.rx.packets as number;
      assert.equal(
        (
          await until('echo through the tunnel', () =>
            JSON.parse(curlFromPod(a.metadata.uid!, `http://${b.status.podIP}:8080/t`)),
          )
        ).path,
        '/t',
      );
      const rx1 = JSON.parse(
        execFileSync('ip', ['-n', `${prefix}-${w1}`, '-j', '-s', 'link', 'show', 'tendril_vxlan'], {
          encoding: 'utf8',
        }),
      )[0].stats64.rx.packets as number;
      assert.ok(rx1 > rx0, 'the request went through the VXLAN device');

      // --- uninstall ---
      await uninstall({ context: ctx });
      const names = daemonStatus('c1').map((d) => d.name);
      assert.ok(
        !names.includes(DAEMON_OPERATOR) && !names.some((n) => n.startsWith('tendril-agent-')),
        names.join(','),
      );
      assert.equal(readInstallState('c1'), undefined);
      for (const n of c.nodes) {
        assert.equal(existsSync(nodeBpffsDir('c1', n.name)), false, 'pins removed');
        assert.equal(
          execFileSync('ip', ['-n', n.netns, 'route', 'show', 'proto', '199'], {
            encoding: 'utf8',
          }).trim(),
          '',
          'routes removed',
        );
        if (existsSync(nodeCgroup('c1', n.name))) {
          const attached = execFileSync('bpftool', ['cgroup', 'show', nodeCgroup('c1', n.name)], {
            encoding: 'utf8',
          }).trim();
          assert.equal(attached, '', `no program attached to ${n.name}'s cgroup`);
        }
      }
      assert.equal((await kube.list('cilium.io/v2', 'CiliumIdentity')).items.length, 0);
      const un2 = await uninstall({ context: ctx });
      assert.equal(un2.removed, false);
    } finally {
      kube.close();
    }
  },
  { timeout: 300_000 },
);

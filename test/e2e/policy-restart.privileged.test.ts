/**
 * Policy under change, in one lab cluster: a server pod (default/app=server)
 * and two clients, one in namespace `blue` (labelled team=blue), one in `red`
 * (team=red); each pod runs the matrix prober (test/e2e/matrix-prober.mjs,
 * TCP echo on port 80, and requests on a new connection each) inside its
 * netns and cgroup. A NetworkPolicy admits `namespaceSelector: {team: blue}`.
 *
 * 1. Namespace labels are part of identities: blue is allowed, red denied;
 *    relabelling red to team=blue allows it, and back to team=red denies it.
 * 2. Agent restart under the policy and load: the allowed client sends a
 *    stream of requests (a new TCP connection each) and the denied client
 *    keeps trying while the node's agent is SIGKILLed (the lab's supervisor
 *    restarts it): no allowed request fails, no denied one succeeds, and the
 *    policy maps and TCX links are still pinned afterwards.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { privilegedTest } from '../helpers/privileged.js';
import {
  cliOk,
  createInstalledCluster,
  inPodCommand,
  podRunning,
  sleep,
  teardownLab,
  until,
  useUniqueLab,
} from './lab-fixture.js';
import { sleepingPod } from './pods.js';
import { Prober } from './prober.js';

const lab = useUniqueLab('prs');
const { KubeClient } = await import('../../src/k8s/client.js');
const { apiServerURL, loadCluster } = await import('../../src/lab/state.js');
const { daemonStatus } = await import('../../src/lab/daemons.js');
const { nodeBpffsDir } = await import('../../src/lab/layout.js');

const PROBER = fileURLToPath(new URL('./matrix-prober.mjs', import.meta.url));
const POLICY = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-team-blue, namespace: default}
spec:
  podSelector: {matchLabels: {app: server}}
  policyTypes: [Ingress]
  ingress:
    - from: [{namespaceSelector: {matchLabels: {team: blue}}}]
      ports: [{port: 80, protocol: TCP}]
`;

type Kube = InstanceType<typeof KubeClient>;

privilegedTest(
  'privileged: namespace labels select by NetworkPolicy namespaceSelector; an agent restart under policy and load loses no allowed request and lets no denied one through',
  async () => {
    let kube: Kube | undefined;
    const children: ChildProcess[] = [];
    try {
      await createInstalledCluster();
      kube = new KubeClient({ server: apiServerURL(loadCluster('cluster1')) });
      const k = kube;
      for (const team of ['blue', 'red'])
        await k.create({
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name: team, labels: { team } },
        });
      await k.create(sleepingPod('default', 'server', { app: 'server' }));
      await k.create(sleepingPod('blue', 'client', { app: 'client' }));
      await k.create(sleepingPod('red', 'client', { app: 'client' }));
      const start = async (ns: string, name: string) => {
        const o = await podRunning(k, name, 120_000, ns);
        const [cmd, args] = inPodCommand(
          { cluster: 'cluster1', node: o.spec.nodeName as string, uid: o.metadata.uid! },
          [process.execPath, PROBER, '80'],
        );
        const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
        children.push(child);
        const prober = new Prober(child);
        await prober.ready;
        return { prober, ip: o.status.podIP as string, node: o.spec.nodeName as string };
      };
      const server = await start('default', 'server');
      const blue = await start('blue', 'client');
      const red = await start('red', 'client');

      // ---- 1. namespace labels in identities
      await until(
        'both clients reach the server without policy',
        async () =>
          (await blue.prober.reach(server.ip, 2000)) && (await red.prober.reach(server.ip, 2000)),
        60_000,
      );
      await cliOk(['--context', 'lab-cluster1', 'apply', '-f', '-'], { input: POLICY });
      await until(
        'red (team=red) denied once the policy selects the server',
        async () => !(await red.prober.reach(server.ip, 1500)),
        60_000,
      );
      assert.equal(await blue.prober.reach(server.ip, 3000), true, 'blue (team=blue) allowed');
      await k.patch('v1', 'Namespace', 'red', { metadata: { labels: { team: 'blue' } } });
      await until(
        'red allowed once its namespace is labelled team=blue',
        () => red.prober.reach(server.ip, 2000),
        60_000,
      );
      await k.patch('v1', 'Namespace', 'red', { metadata: { labels: { team: 'red' } } });
      await until(
        'red denied again once its namespace is labelled team=red',
        async () => !(await red.prober.reach(server.ip, 1500)),
        60_000,
      );
      for (let i = 0; i < 3; i++) {
        assert.equal(await red.prober.reach(server.ip, 1500), false, 'red stays denied');
        assert.equal(await blue.prober.reach(server.ip, 3000), true, 'blue stays allowed');
      }

      // ---- 2. agent restart under the policy and load
      const agentName = `tendril-agent-${server.node}`;
      const agent = () => daemonStatus('cluster1').find((d) => d.name === agentName);
      const before = agent();
      assert.ok(before?.running && before.pid, `${agentName} is running`);
      const pinDir = join(nodeBpffsDir('cluster1', server.node), 'policy');
      const pinsBefore = readdirSync(pinDir).filter((f) => f.startsWith('ep_'));
      const linksBefore = readdirSync(join(pinDir, 'links'));
      assert.ok(pinsBefore.length >= 3, `an endpoint policy map per pod: ${pinsBefore.join(' ')}`);
      assert.ok(linksBefore.length >= 6, `two TCX links per pod: ${linksBefore.join(' ')}`);

      let loadOn = true;
      const allowed = { ok: 0, failed: 0 };
      const denied = { ok: 0, failed: 0 };
      const loop = async (
        c: { prober: Prober },
        timeoutMs: number,
        tally: { ok: number; failed: number },
      ) => {
        while (loadOn) {
          if (await c.prober.reach(server.ip, timeoutMs)) tally.ok++;
          else tally.failed++;
        }
      };
      // allowed: a generous timeout (the machine is loaded; a drop never answers at all)
      // denied: four loops at once, so a short window of wrong policy during the restart is hit
      const loops = [
        loop(blue, 10_000, allowed),
        ...[1, 2, 3, 4].map(() => loop(red, 800, denied)),
      ];
      await sleep(3000);
      process.kill(before.pid, 'SIGKILL');
      const after = await until(
        `${agentName} restarted by the supervisor`,
        () => {
          const d = agent();
          return d?.running && d.pid && d.pid !== before.pid ? d : undefined;
        },
        60_000,
        200,
      );
      assert.equal(after.restarts, before.restarts + 1);
      // keep the load on while the new agent restores its state and reconciles
      await until(
        'the restarted agent answers (tendril endpoint list)',
        async () => {
          await cliOk(['--context', 'lab-cluster1', 'endpoint', 'list'], { timeoutMs: 20_000 });
          return true;
        },
        90_000,
        1000,
      );
      await sleep(8000);
      loadOn = false;
      await Promise.all(loops);

      assert.ok(allowed.ok >= 10, `the allowed client made requests: ${JSON.stringify(allowed)}`);
      assert.ok(denied.failed >= 20, `the denied client kept trying: ${JSON.stringify(denied)}`);
      assert.equal(allowed.failed, 0, `no allowed request failed: ${JSON.stringify(allowed)}`);
      assert.equal(denied.ok, 0, `no denied request succeeded: ${JSON.stringify(denied)}`);
      for (const f of pinsBefore)
        assert.ok(existsSync(join(pinDir, f)), `policy map ${f} still pinned`);
      for (const f of linksBefore)
        assert.ok(existsSync(join(pinDir, 'links', f)), `TCX link ${f} still pinned`);
      // still enforced by the (reused) programs: a fresh round of requests
      assert.equal(await red.prober.reach(server.ip, 1500), false, 'red still denied');
      assert.equal(await blue.prober.reach(server.ip, 5000), true, 'blue still allowed');
      console.log(
        `# agent restart under load: allowed ${allowed.ok} ok / ${allowed.failed} failed, denied ${denied.failed} dropped / ${denied.ok} through`,
      );
    } finally {
      for (const c of children) c.kill('SIGKILL');
      kube?.close();
      await teardownLab(lab);
    }
  },
  { timeout: 900_000 },
);

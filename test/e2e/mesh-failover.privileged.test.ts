/**
 * Two meshed lab clusters (one pair for the whole file), as root, through
 * the CLI, checked by real traffic from pods and by the agents' state:
 *   1. affinity local: a global service in both clusters, `affinity: local`
 *      in cluster2 -> cluster2's pod answers; its deployment scaled to 0 ->
 *      cluster1's pod answers; scaled back -> cluster2's pod again. An
 *      invalid affinity value is reported (tendril status, and a False
 *      condition on the Service, gone once fixed).
 *   2. cluster1's clustermesh etcd goes away and comes back: cluster2's
 *      local service answers throughout; cluster1's entries are kept and
 *      shown stale; while it is away cluster1 deletes a global service and
 *      replaces its pod; afterwards cluster2 has cluster1's new state and
 *      nothing of the old (agent state and the pinned BPF maps).
 *   3. MCS: a ServiceExport in cluster1 -> a ServiceImport in cluster2, and
 *      `<svc>.<ns>.svc.clusterset.local` resolves and answers from a pod of
 *      cluster2.
 */
import assert from 'node:assert/strict';
import { privilegedTest } from '../helpers/privileged.js';
import {
  cli,
  cliOk,
  createMeshedPair,
  curlFromPod,
  sleep,
  teardownLab,
  until,
  useUniqueLab,
  type EchoAnswer,
} from './lab-fixture.js';

const lab = useUniqueLab('mesh');

const { KubeClient } = await import('../../src/k8s/client.js');
const { apiServerURL } = await import('../../src/lab/state.js');
const { AgentClient } = await import('../../src/agent/api/client.js');
const { agentSocketPath } = await import('../../src/install/lab-daemon-config.js');
const { addDaemon, removeDaemon, listDaemonSpecs } = await import('../../src/lab/daemons.js');
const { DAEMON_MESH_ETCD } = await import('../../src/install/clustermesh/enable.js');

type Pod = { metadata: { name: string }; status?: { phase?: string; podIP?: string } };

const deployment = (replicas: number) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: echo
  labels: {app: echo}
spec:
  replicas: ${replicas}
  selector:
    matchLabels: {app: echo}
  template:
    metadata:
      labels: {app: echo}
    spec:
      containers:
        - name: echo
          image: mendhak/http-https-echo:28
          ports: [{containerPort: 8080}]
`;
const service = (name: string, annotations: Record<string, string>) => `apiVersion: v1
kind: Service
metadata:
  name: ${name}
  annotations:
${Object.entries(annotations)
  .map(([k, v]) => `    ${k}: "${v}"`)
  .join('\n')}
spec:
  selector: {app: echo}
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080}]
`;
const GLOBAL = { 'service.cilium.io/global': 'true' };
const apply = (ctx: string, yaml: string) =>
  cliOk(['--context', ctx, 'apply', '-f', '-'], { input: yaml });

privilegedTest(
  'privileged: mesh failover (affinity local), remote outage and resync, MCS clusterset.local',
  async (t) => {
    const started = Date.now();
    let k1: InstanceType<typeof KubeClient> | undefined;
    let k2: InstanceType<typeof KubeClient> | undefined;
    try {
      const { c1, c2 } = await createMeshedPair();
      k1 = new KubeClient({ server: apiServerURL(c1) });
      k2 = new KubeClient({ server: apiServerURL(c2) });
      const kc1 = k1;
      const kc2 = k2;
      const agent2 = new AgentClient(agentSocketPath('cluster2', c2.nodes[1]!.name));
      const runningPods = async (k: InstanceType<typeof KubeClient>) =>
        (
          (await k.list('v1', 'Pod', { namespace: 'default', labelSelector: 'app=echo' }))
            .items as Pod[]
        ).filter((p) => p.status?.phase === 'Running' && p.status.podIP);
      const podNames = async (k: InstanceType<typeof KubeClient>) =>
        (await runningPods(k)).map((p) => p.metadata.name);
      const clusterIP = async (k: InstanceType<typeof KubeClient>, name: string) =>
        (await k.get('v1', 'Service', name, { namespace: 'default' })).spec.clusterIP as string;
      /** cluster2's agent's backends of the service at VIP, as "clusterId/ip". */
      const backendsAt = async (vip: string) =>
        (await agent2.services())
          .filter((s) => s.frontend.ip === vip && s.frontend.port === 80)
          .flatMap((s) => s.backends.map((b) => `${b.clusterId}/${b.ip}`))
          .sort();
      /** curl by name from a new pod of cluster2 until the answer is from one of PODS(). */
      /** curl by name from a new pod of cluster2 (retried until it answers); the answer must come from one of PODS(). */
      const answeredBy = async (url: string, pods: () => Promise<string[]>, what: string) => {
        const a = await until<EchoAnswer>(
          `an answer from ${url}`,
          () => curlFromPod('lab-cluster2', url),
          90_000,
        );
        const names = await pods();
        assert.ok(
          names.includes(a.os.hostname),
          `${what}: answered by ${a.os.hostname}, not one of ${names.join(', ')}`,
        );
        return a;
      };

      // cluster1: echo + global services "echo", "keep" and "gone"; cluster2: echo + "echo" with affinity local.
      await apply(
        'lab-cluster1',
        [
          deployment(1),
          service('echo', GLOBAL),
          service('keep', GLOBAL),
          service('gone', GLOBAL),
        ].join('---\n'),
      );
      await apply(
        'lab-cluster2',
        [
          deployment(1),
          service('echo', { ...GLOBAL, 'service.cilium.io/affinity': 'local' }),
          service('bad', { ...GLOBAL, 'service.cilium.io/affinity': 'nearest' }),
        ].join('---\n'),
      );
      const [p1] = await until('echo pod of cluster1', async () => {
        const l = await runningPods(kc1);
        return l.length === 1 ? l : undefined;
      });
      await until('echo pod of cluster2', async () =>
        (await runningPods(kc2)).length === 1 ? true : undefined,
      );
      const vip2 = await clusterIP(kc2, 'echo');
      const url = 'http://echo.default.svc.cluster.local:80';

      await t.test(
        'affinity local: local backend, failover to cluster1, back to local',
        async () => {
          // cluster2's view of the global service: its own pod only (cluster1's is known but not preferred)
          await until('affinity local: only cluster2 backends', async () => {
            const b = await backendsAt(vip2);
            return b.length === 1 && b[0]!.startsWith('2/') ? b : undefined;
          });
          const a = await answeredBy(url, () => podNames(kc2), 'a cluster2 pod answering');
          assert.match(a.ip, /^10\.245\./, 'the client is a pod of cluster2');
          // no local backend left -> cluster1's
          await apply('lab-cluster2', deployment(0));
          await until('cluster2 pods gone', async () =>
            (await runningPods(kc2)).length === 0 ? true : undefined,
          );
          await until('failover to cluster1 backends', async () => {
            const b = await backendsAt(vip2);
            return b.length === 1 && b[0] === `1/${p1!.status!.podIP}` ? b : undefined;
          });
          const b = await answeredBy(
            url,
            () => podNames(kc1),
            'a cluster1 pod answering after failover',
          );
          assert.equal(b.os.hostname, p1!.metadata.name);
          // back: local preferred again
          await apply('lab-cluster2', deployment(1));
          await until('local backend again', async () => {
            const l = await backendsAt(vip2);
            return l.length === 1 && l[0]!.startsWith('2/') ? l : undefined;
          });
          await answeredBy(url, () => podNames(kc2), 'a cluster2 pod answering again');
        },
      );

      await t.test('invalid affinity value is reported', async () => {
        const r = await until(
          'the invalid affinity in tendril status',
          async () => {
            const s = await cli(['status', '--context', 'lab-cluster2']);
            return /nearest/.test(s.all) ? s : undefined;
          },
          30_000,
        );
        assert.match(r.all, /default\/bad/);
        assert.match(
          r.all,
          /service\.cilium\.io\/affinity: "nearest" is not one of local, remote, none/,
        );
        assert.match(r.all, /SERVICE_INVALID_AFFINITY/);
        // on the Service itself: a False condition, shown by describe
        const cond = await until('the condition on Service bad', async () => {
          const svc = await kc2.get('v1', 'Service', 'bad', { namespace: 'default' });
          return ((svc.status?.conditions ?? []) as Array<Record<string, string>>).find(
            (c) => c.type === 'tendril.io/MeshAnnotationsValid',
          );
        });
        assert.equal(cond.status, 'False');
        assert.equal(cond.reason, 'InvalidAnnotation');
        assert.match(cond.message!, /affinity: "nearest" is not one of local, remote, none/);
        const d = await cliOk(['--context', 'lab-cluster2', 'describe', 'svc', 'bad']);
        assert.match(
          d.out,
          /tendril\.io\/MeshAnnotationsValid=False \(InvalidAnnotation: .*nearest/,
        );
        // fixed -> the condition goes
        await apply(
          'lab-cluster2',
          service('bad', { ...GLOBAL, 'service.cilium.io/affinity': 'remote' }),
        );
        await until('the condition removed once fixed', async () => {
          const svc = await kc2.get('v1', 'Service', 'bad', { namespace: 'default' });
          return ((svc.status?.conditions ?? []) as Array<Record<string, string>>).some(
            (c) => c.type === 'tendril.io/MeshAnnotationsValid',
          )
            ? undefined
            : true;
        });
      });

      await t.test(
        'cluster1 etcd away and back: local service works, stale kept, full resync',
        async () => {
          const vipKeep = await until('keep imported into cluster2', () => clusterIP(kc2, 'keep'));
          const vipGone = await until('gone imported into cluster2', () => clusterIP(kc2, 'gone'));
          const oldIP = p1!.status!.podIP!;
          await until('remote backends of keep/gone in cluster2', async () =>
            (await backendsAt(vipKeep)).join() === `1/${oldIP}` &&
            (await backendsAt(vipGone)).join() === `1/${oldIP}`
              ? true
              : undefined,
          );
          // a long-lived client pod in cluster2, to curl the local service often
          await apply(
            'lab-cluster2',
            'apiVersion: v1\nkind: Pod\nmetadata:\n  name: client\nspec:\n  containers:\n    - name: c\n      image: curlimages/curl\n      command: [sleep, "3600"]\n',
          );
          await until('client pod running', async () =>
            (await kc2.get('v1', 'Pod', 'client', { namespace: 'default' })).status?.phase ===
            'Running'
              ? true
              : undefined,
          );
          const localPods = await podNames(kc2);
          let stop = false;
          const failures: string[] = [];
          let answers = 0;
          const poller = (async () => {
            while (!stop) {
              const r = await cli(
                [
                  '--context',
                  'lab-cluster2',
                  'exec',
                  'client',
                  '--',
                  'curl',
                  '-sS',
                  '-m',
                  '3',
                  url,
                ],
                { timeoutMs: 20_000 },
              );
              const i = r.out.indexOf('{');
              let host = '';
              try {
                host = (JSON.parse(r.out.slice(i, r.out.lastIndexOf('}') + 1)) as EchoAnswer).os
                  .hostname;
              } catch {
                // not JSON
              }
              if (r.status === 0 && localPods.includes(host)) answers++;
              else failures.push(`exit ${r.status}: ${r.all.slice(0, 300)}`);
              await sleep(300);
            }
          })();

          const spec = listDaemonSpecs('cluster1').find((d) => d.name === DAEMON_MESH_ETCD);
          assert.ok(spec, 'cluster1 has a clustermesh etcd daemon');
          await removeDaemon('cluster1', DAEMON_MESH_ETCD, { wait: true });
          let restored = false;
          try {
            const st = await until(
              'cluster1 shown stale from cluster2',
              async () => {
                const s = await cli(['clustermesh', 'status', '--context', 'lab-cluster2']);
                return /cluster1 \(ID 1\): configured, not connected, not synced, stale/.test(s.out)
                  ? s
                  : undefined;
              },
              45_000,
            );
            assert.equal(st.status, 1, 'status exits 1 while a remote is away');
            // while away, cluster1 changes: a global service deleted, its pod replaced
            await cliOk(['--context', 'lab-cluster1', 'delete', 'service', 'gone']);
            await cliOk(['--context', 'lab-cluster1', 'delete', 'pod', p1!.metadata.name]);
            await until('a new echo pod in cluster1', async () => {
              const l = await runningPods(kc1);
              return l.length === 1 && l[0]!.status!.podIP !== oldIP ? true : undefined;
            });
            // cluster2 keeps cluster1's last known state (stale, not dropped)
            await sleep(3000);
            assert.deepEqual(
              await backendsAt(vipKeep),
              [`1/${oldIP}`],
              'stale remote backend kept',
            );
            assert.deepEqual(
              await backendsAt(vipGone),
              [`1/${oldIP}`],
              'stale remote service kept',
            );
            addDaemon('cluster1', spec);
            restored = true;
          } finally {
            if (!restored) addDaemon('cluster1', spec);
          }
          await cliOk(
            [
              'clustermesh',
              'status',
              '--context',
              'lab-cluster2',
              '--wait',
              '--wait-duration',
              '60s',
            ],
            {
              timeoutMs: 90_000,
            },
          );
          const [p1new] = await runningPods(kc1);
          const newIP = p1new!.status!.podIP!;
          await until(
            'cluster1 new state in cluster2, nothing stale',
            async () => {
              const keep = await backendsAt(vipKeep);
              const goneSvc = await kc2.getOrUndefined('v1', 'Service', 'gone', {
                namespace: 'default',
              });
              const gone = await backendsAt(vipGone);
              return keep.join() === `1/${newIP}` && goneSvc === undefined && gone.length === 0
                ? true
                : undefined;
            },
            60_000,
          );
          stop = true;
          await poller;
          assert.deepEqual(failures, [], `the local service failed ${failures.length} time(s)`);
          assert.ok(
            answers >= 3,
            `the local service was reached ${answers} time(s) during the outage`,
          );
          // compare against cluster1's actual state: every cluster1 backend in cluster2's
          // agent state and pinned maps is a pod cluster1 has now; the old IP is nowhere
          // The ipcache is a prefix of its own, resynced (and its stale entries
          // dropped) after its own synced canary, so it may settle just after the
          // services did: wait for it, bounded.
          const ipc = await until(
            'old cluster1 pod IP gone from cluster2 ipcache',
            async () => {
              const entries = await agent2.ipcache();
              return entries.some((e) => e.prefix === `${oldIP}/32`) ? undefined : entries;
            },
            30_000,
          );
          assert.ok(ipc.some((e) => e.prefix === `${newIP}/32` && e.identity >> 16 === 1));
          const c1IPs = new Set((await runningPods(kc1)).map((p) => p.status!.podIP!));
          for (const s of await agent2.services())
            for (const b of s.backends)
              if (b.clusterId === 1)
                assert.ok(c1IPs.has(b.ip), `stale cluster1 backend ${b.ip} for ${s.frontend.ip}`);
          const maps = await cliOk(['--context', 'lab-cluster2', 'debug', 'services']);
          assert.ok(!maps.out.includes(`${oldIP}:`), `old backend in the BPF maps:\n${maps.out}`);
          assert.ok(
            maps.out.includes(`${newIP}:8080`),
            `new backend not in the BPF maps:\n${maps.out}`,
          );
          assert.ok(
            !maps.out.includes(`${vipGone}:80`),
            `deleted service's VIP in the BPF maps:\n${maps.out}`,
          );
        },
      );

      await t.test(
        'MCS: ServiceExport -> ServiceImport, clusterset.local from a cluster2 pod',
        async () => {
          await apply(
            'lab-cluster1',
            'apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceExport\nmetadata:\n  name: keep\n  namespace: default\n',
          );
          const imp = await until('ServiceImport keep in cluster2', async () => {
            const i = await kc2.getOrUndefined(
              'multicluster.x-k8s.io/v1alpha1',
              'ServiceImport',
              'keep',
              {
                namespace: 'default',
              },
            );
            return i?.spec?.ips?.length ? i : undefined;
          });
          const clusters = ((imp.status?.clusters ?? []) as Array<{ cluster: string }>).map(
            (c) => c.cluster,
          );
          assert.deepEqual(clusters, ['cluster1'], JSON.stringify(imp.status));
          const a = await answeredBy(
            'http://keep.default.svc.clusterset.local:80',
            () => podNames(kc1),
            'keep.default.svc.clusterset.local answered by cluster1',
          );
          assert.match(a.ip, /^10\.245\./, 'the client is a pod of cluster2');
          // the name resolves to the ServiceImport's address
          const dig = await cliOk([
            '--context',
            'lab-cluster2',
            'exec',
            'client',
            '--',
            'nslookup',
            'keep.default.svc.clusterset.local',
          ]);
          assert.ok(dig.out.includes(imp.spec.ips[0] as string), dig.out);
        },
      );
      t.diagnostic(`runtime ${Math.round((Date.now() - started) / 1000)} s`);
    } finally {
      k1?.close();
      k2?.close();
      await teardownLab(lab);
    }
  },
  { timeout: 900_000 },
);

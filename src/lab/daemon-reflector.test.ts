import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { KubeObject } from '../k8s/objects.js';
import { ApiError } from '../k8s/status.js';
import { nopLogger } from '../util/log.js';
import { startTestApiServer, type TestApiServer } from './apiserver/testing.js';
import { LAB_REFLECTION_ANNOTATION, daemonRuns, podDaemons, readDaemonRun } from './daemon-pods.js';
import { daemonRole, desiredReflection, type SupervisedDaemon } from './daemon-reflection.js';
import { DaemonReflector } from './daemon-reflector.js';
import type { LabCluster } from './state.js';
import {
  DAEMON_DNS,
  DAEMON_OPERATOR,
  agentDaemonName,
  installDaemons,
} from '../install/install.js';
import { labManifestOptions, reflectOf } from '../install/lab-reflection.js';
import { kubeletSpec } from './create.js';
import { logQuery, streamLog } from '../cli/logs.js';

const cluster: LabCluster = {
  name: 'test',
  index: 7,
  prefix: 'tt',
  podCIDR: '10.250.0.0/16',
  serviceCIDR: '10.96.0.0/16',
  apiPort: 1,
  apiSocket: '/nonexistent',
  apiStore: 'memory',
  createdAt: '2026-12-06T00:00:00Z',
  nodes: [
    {
      name: 'test-control-plane',
      index: 0,
      role: 'control-plane',
      netns: 'tt-test-control-plane',
      ip: '172.30.7.10',
      podCIDR: '10.250.0.0/24',
    },
    {
      name: 'test-worker',
      index: 1,
      role: 'worker',
      netns: 'tt-test-worker',
      ip: '172.30.7.11',
      podCIDR: '10.250.1.0/24',
    },
  ],
};

/** A supervised daemon of one of the install wing's specs (or the lab's kubelet). */
function daemon(name: string, extra: Partial<SupervisedDaemon> = {}): SupervisedDaemon {
  const specs = [
    ...installDaemons(cluster, {}, { clusterName: 'c7', clusterId: 7 }),
    kubeletSpec(cluster, cluster.nodes[1]!),
  ];
  const spec = specs.find((x) => x.name === name)!;
  assert.ok(spec, name);
  return {
    name,
    spec,
    running: true,
    pid: 4242,
    startedAt: '2026-12-06T10:00:00.000Z',
    restarts: 2,
    finished: false,
    ...extra,
  };
}

/** A fake supervisor: its daemons and the restarts the reflector asked for. */
class FakeSource {
  list: SupervisedDaemon[] = [
    daemon(DAEMON_OPERATOR),
    daemon(DAEMON_DNS),
    daemon(agentDaemonName('test-control-plane')),
    daemon(agentDaemonName('test-worker')),
    daemon('kubelet-test-worker'),
  ];
  restarted: string[] = [];
  daemons(): SupervisedDaemon[] {
    return this.list.map((d) => ({ ...d }));
  }
  async restart(name: string): Promise<void> {
    this.restarted.push(name);
  }
  set(name: string, patch: Partial<SupervisedDaemon>): void {
    this.list = this.list.map((d) => (d.name === name ? { ...d, ...patch } : d));
  }
}

interface Pod extends KubeObject {
  status: {
    phase: string;
    podIP: string;
    containerStatuses: Array<{
      name: string;
      ready: boolean;
      restartCount: number;
      state: Record<string, unknown>;
      lastState: { terminated?: { exitCode: number; reason: string } };
    }>;
  };
}

describe('daemon roles', () => {
  it('reflects the daemons the install wing marks, and none of the lab’s own', () => {
    const role = (name: string) => daemonRole(daemon(name).spec);
    assert.deepEqual(role(DAEMON_OPERATOR), {
      kind: 'Deployment',
      workload: 'tendril-operator',
      container: 'operator',
    });
    assert.equal(role(DAEMON_DNS)?.workload, 'tendril-dns');
    assert.deepEqual(role(agentDaemonName('test-worker')), {
      kind: 'DaemonSet',
      workload: 'tendril-agent',
      container: 'agent',
    });
    assert.equal(role('kubelet-test-worker'), undefined);
    assert.deepEqual(role('hubble-relay'), {
      kind: 'Deployment',
      workload: 'hubble-relay',
      container: 'hubble-relay',
    });
    const o = labManifestOptions(cluster, { clusterName: 'c7', clusterId: 7 });
    assert.equal(reflectOf('mesh-apiserver', o).container, 'apiserver');
    assert.equal(reflectOf('mesh-etcd', o).workload.metadata.name, 'clustermesh-apiserver');
  });

  it('takes names, labels and containers from the rendered manifests, made true to the lab', () => {
    const r = desiredReflection(cluster, new FakeSource().daemons());
    const ds = r.workloads.find((w) => w.kind === 'DaemonSet')!;
    assert.equal(ds.metadata.name, 'tendril-agent');
    assert.equal(ds.metadata.labels?.['k8s-app'], 'tendril-agent');
    const tpl = ds.spec.template.spec;
    assert.equal(tpl.hostNetwork, true);
    assert.equal(tpl.serviceAccountName, 'tendril-agent');
    assert.equal(tpl.volumes, undefined);
    assert.equal(tpl.initContainers, undefined);
    assert.equal(tpl.containers[0].name, 'agent');
    assert.equal(tpl.containers[0].volumeMounts, undefined);
    // the node's name is the downward API's, as the manifests pass it
    assert.deepEqual(tpl.containers[0].command.slice(-2), ['--node-name', '$(K8S_NODE_NAME)']);
    const agents = r.pods.filter((p) => p.kind === 'DaemonSet');
    assert.deepEqual(agents.map((p) => p.node.name).sort(), ['test-control-plane', 'test-worker']);
    assert.equal(agents[0]!.templateHash, agents[1]!.templateHash);
    assert.deepEqual(r.workloads.map((w) => `${w.kind}/${w.metadata.name}`).sort(), [
      'DaemonSet/tendril-agent',
      'Deployment/tendril-dns',
      'Deployment/tendril-operator',
    ]);
  });
});

describe('daemon log runs', () => {
  const log = Buffer.from(
    [
      '--- 2026-12-06T10:00:00.000Z supervisor: starting tendril-operator: node op.ts',
      'first run line',
      '--- 2026-12-06T10:00:05.000Z supervisor: tendril-operator exited (code null, signal SIGKILL)',
      '--- 2026-12-06T10:00:05.500Z supervisor: starting tendril-operator: node op.ts',
      'second run line 1',
      '--- not a mark',
      'second run line 2',
      '',
    ].join('\n'),
  );

  it('finds each run after its start mark and drops the supervisor lines', () => {
    const runs = daemonRuns(log, 'tendril-operator');
    assert.equal(runs.length, 2);
    const dir = mkdtempSync(join(tmpdir(), 'tendril-runs-'));
    try {
      const path = join(dir, 'op.log');
      writeFileSync(path, log);
      assert.equal(
        readDaemonRun(path, 'tendril-operator', 'current').data.toString(),
        'second run line 1\n--- not a mark\nsecond run line 2\n',
      );
      assert.equal(
        readDaemonRun(path, 'tendril-operator', 'previous').data.toString(),
        'first run line\n',
      );
      assert.throws(() => readDaemonRun(path, 'tendril-dns', 'current'), /has not started/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('DaemonReflector against the lab API server', () => {
  let api: TestApiServer;
  let home: string;
  const oldHome = process.env.TENDRIL_HOME;
  const source = new FakeSource();
  let reflector: DaemonReflector;
  const kube = () => api.client;
  const pods = async () =>
    (await kube().list('v1', 'Pod', { namespace: 'kube-system' })).items.filter(
      (p) => !p.metadata.deletionTimestamp,
    ) as Pod[];
  const podOf = async (workload: string) => {
    const all = await pods();
    return all.filter((p) => p.metadata.labels?.['k8s-app'] === workload);
  };

  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'tendril-reflector-'));
    process.env.TENDRIL_HOME = home;
    api = await startTestApiServer();
    reflector = new DaemonReflector('test', source, nopLogger, { cluster, client: api.client });
  });
  after(async () => {
    await reflector.stop();
    await api.cleanup();
    rmSync(home, { recursive: true, force: true });
    if (oldHome === undefined) delete process.env.TENDRIL_HOME;
    else process.env.TENDRIL_HOME = oldHome;
  });

  it('writes the DaemonSet, the Deployments and a host-network pod per daemon', async () => {
    await reflector.sync();
    await api.server.settle();
    const ds = await kube().get('apps/v1', 'DaemonSet', 'tendril-agent', {
      namespace: 'kube-system',
    });
    assert.equal(ds.metadata.annotations?.[LAB_REFLECTION_ANNOTATION], 'supervisor');
    const agents = await podOf('tendril-agent');
    assert.equal(agents.length, 2);
    const byNode = new Map(agents.map((p) => [p.spec.nodeName, p]));
    assert.equal(byNode.get('test-worker')!.status.podIP, '172.30.7.11');
    assert.equal(byNode.get('test-worker')!.spec.hostNetwork, true);
    assert.equal(byNode.get('test-worker')!.status.phase, 'Running');
    assert.equal(podDaemons(byNode.get('test-worker')!).get('agent'), 'tendril-agent-test-worker');
    const [op] = await podOf('tendril-operator');
    assert.ok(op, 'operator pod');
    assert.match(op.metadata.name!, /^tendril-operator-[a-z0-9]+-[a-z0-9]{5}$/);
    assert.equal(op.spec.nodeName, 'test-control-plane');
    assert.equal(op.status.containerStatuses[0]!.name, 'operator');
    assert.equal(op.status.containerStatuses[0]!.ready, true);
    assert.equal(op.status.containerStatuses[0]!.restartCount, 0);
    // the lab's deployment controller made no pods of its own for the reflected Deployment
    assert.equal((await podOf('tendril-operator')).length, 1);
    const dep = await kube().get('apps/v1', 'Deployment', 'tendril-operator', {
      namespace: 'kube-system',
    });
    assert.equal(dep.status?.readyReplicas, 1);
    assert.equal(dep.status?.updatedReplicas, 1);
    const ds2 = await kube().get('apps/v1', 'DaemonSet', 'tendril-agent', {
      namespace: 'kube-system',
    });
    assert.equal(ds2.status?.desiredNumberScheduled, 2);
    assert.equal(ds2.status?.numberReady, 2);
    assert.equal(ds2.status?.updatedNumberScheduled, 2);
    // a second sync with nothing changed writes nothing
    const rv = (await kube().list('v1', 'Pod', { namespace: 'kube-system' })).metadata
      .resourceVersion;
    await reflector.sync();
    assert.equal(
      (await kube().list('v1', 'Pod', { namespace: 'kube-system' })).metadata.resourceVersion,
      rv,
    );
  });

  it('counts the supervisor’s restarts since the pod was made, with the last exit', async () => {
    source.set('tendril-operator', {
      restarts: 3,
      pid: 4343,
      startedAt: '2026-12-06T10:01:00.000Z',
      lastExit: { code: null, signal: 'SIGKILL', at: '2026-12-06T10:00:59.000Z' },
    });
    await reflector.sync();
    const [op] = await podOf('tendril-operator');
    const cs = op!.status.containerStatuses[0]!;
    assert.equal(cs.restartCount, 1);
    assert.equal(cs.lastState.terminated?.exitCode, 137);
    assert.equal(cs.lastState.terminated?.reason, 'Error');
    // waiting to be restarted: CrashLoopBackOff, not ready
    source.set('tendril-operator', { running: false });
    await reflector.sync();
    const [op2] = await podOf('tendril-operator');
    assert.deepEqual(Object.keys(op2!.status.containerStatuses[0]!.state), ['waiting']);
    assert.equal(op2!.status.containerStatuses[0]!.ready, false);
    const dep = await kube().get('apps/v1', 'Deployment', 'tendril-operator', {
      namespace: 'kube-system',
    });
    assert.equal(dep.status?.readyReplicas, 0);
    source.set('tendril-operator', { running: true });
    await reflector.sync();
  });

  it('serves pods/log of a reflected pod from the daemon’s run in its log', async () => {
    const logs = join(home, 'clusters', 'test', 'logs');
    mkdirSync(logs, { recursive: true });
    appendFileSync(
      join(logs, 'tendril-operator.log'),
      '--- 2026-12-06T10:00:00.000Z supervisor: starting tendril-operator: node op.ts\nold\n' +
        '--- 2026-12-06T10:01:00.000Z supervisor: starting tendril-operator: node op.ts\nnew 1\nnew 2\n',
    );
    const [op] = await podOf('tendril-operator');
    const path = `/api/v1/namespaces/kube-system/pods/${op!.metadata.name}/log`;
    assert.equal(await kube().requestText(path), 'new 1\nnew 2\n');
    assert.equal(await kube().requestText(`${path}?tailLines=1`), 'new 2\n');
    assert.equal(await kube().requestText(`${path}?previous=true`), 'old\n');
    await assert.rejects(kube().requestText(`${path}?timestamps=true`), /without per-line times/);
    // tendril logs --timestamps passes the flag and gets the same refusal
    await assert.rejects(
      streamLog(`${api.server.url}${path}?${logQuery('operator', { timestamps: true })}`, () => {}),
      (err: unknown) =>
        err instanceof ApiError &&
        err.httpCode === 400 &&
        /reflects the lab daemon "tendril-operator", whose log the supervisor keeps without per-line times \(drop --timestamps\)/.test(
          err.message,
        ),
    );
  });

  it('restarts the daemons of a deleted pod and writes a new pod', async () => {
    const [op] = await podOf('tendril-operator');
    await kube().delete('v1', 'Pod', op!.metadata.name!, { namespace: 'kube-system' });
    // bound to a node: marked for deletion until the reflector (its kubelet's stand-in) confirms;
    // the reflector's own watch may already have done so
    const marked = await kube().getOrUndefined('v1', 'Pod', op!.metadata.name!, {
      namespace: 'kube-system',
    });
    assert.ok(!marked || marked.metadata.deletionTimestamp);
    await reflector.sync();
    assert.deepEqual(source.restarted, ['tendril-operator']);
    assert.equal(
      await kube().getOrUndefined('v1', 'Pod', op!.metadata.name!, { namespace: 'kube-system' }),
      undefined,
    );
    await reflector.sync();
    const [fresh] = await podOf('tendril-operator');
    assert.ok(fresh && fresh.metadata.name !== op!.metadata.name);
    assert.equal(fresh.status.containerStatuses[0]!.restartCount, 0);
    // a second sync does not restart again
    await reflector.sync();
    assert.deepEqual(source.restarted, ['tendril-operator']);
  });

  it('writes the kubelet’s Events: Started, BackOff on an exit, Killing on a delete', async () => {
    interface Ev extends KubeObject {
      reason: string;
      type: string;
      message: string;
      involvedObject: { kind: string; name: string; uid: string; fieldPath?: string };
      source: { component: string; host?: string };
    }
    const eventsOf = async (pod: KubeObject) =>
      ((await kube().list('v1', 'Event', { namespace: 'kube-system' })).items as Ev[]).filter(
        (e) => e.involvedObject.uid === pod.metadata.uid,
      );
    /** Waits for the Events (posted without waiting) of `pod` to include `reasons` (in any order). */
    const waitFor = async (pod: KubeObject, reasons: string[]) => {
      const deadline = Date.now() + 5000;
      for (;;) {
        const evs = await eventsOf(pod);
        const have = evs.map((e) => e.reason);
        if (reasons.every((r) => have.filter((x) => x === r).length >= count(reasons, r)))
          return evs;
        if (Date.now() > deadline)
          assert.fail(
            `events of ${pod.metadata.name}: ${have.join(', ')}; wanted ${reasons.join(', ')}`,
          );
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const count = (xs: string[], x: string) => xs.filter((y) => y === x).length;
    const [op] = await podOf('tendril-operator');
    const started = await waitFor(op!, ['Started']);
    assert.equal(started[0]!.type, 'Normal');
    assert.equal(started[0]!.message, 'Started container operator');
    assert.equal(started[0]!.involvedObject.kind, 'Pod');
    assert.equal(started[0]!.involvedObject.fieldPath, 'spec.containers{operator}');
    assert.deepEqual(started[0]!.source, { component: 'kubelet', host: 'test-control-plane' });
    // the daemon exits; the supervisor backs off: one BackOff Warning, however many syncs
    const d = source.list.find((x) => x.name === 'tendril-operator')!;
    source.set('tendril-operator', {
      running: false,
      restarts: d.restarts + 1,
      lastExit: { code: 1, signal: null, at: '2026-12-06T10:05:00.000Z' },
    });
    await reflector.sync();
    await reflector.sync();
    const backoff = (await waitFor(op!, ['Started', 'BackOff'])).filter(
      (e) => e.reason === 'BackOff',
    );
    assert.equal(backoff.length, 1);
    assert.equal(backoff[0]!.type, 'Warning');
    assert.equal(
      backoff[0]!.message,
      `Back-off restarting failed container operator in pod ${op!.metadata.name}_kube-system(${op!.metadata.uid})`,
    );
    // restarted: Started again
    source.set('tendril-operator', { running: true, startedAt: '2026-12-06T10:05:01.000Z' });
    await reflector.sync();
    await waitFor(op!, ['Started', 'Started', 'BackOff']);
    // an exit and restart between two syncs (the wait not seen) is a BackOff too
    source.set('tendril-operator', {
      restarts: d.restarts + 2,
      startedAt: '2026-12-06T10:06:01.000Z',
      lastExit: { code: null, signal: 'SIGKILL', at: '2026-12-06T10:06:00.000Z' },
    });
    await reflector.sync();
    await waitFor(op!, ['Started', 'Started', 'Started', 'BackOff', 'BackOff']);
    // kubectl delete pod: Killing, then the new pod is Started
    await kube().delete('v1', 'Pod', op!.metadata.name!, { namespace: 'kube-system' });
    await reflector.sync();
    await reflector.sync();
    const killing = (await waitFor(op!, ['Killing'])).filter((e) => e.reason === 'Killing');
    assert.equal(killing.length, 1);
    assert.equal(killing[0]!.message, 'Stopping container operator');
    const [fresh] = await podOf('tendril-operator');
    assert.ok(fresh && fresh.metadata.uid !== op!.metadata.uid);
    await waitFor(fresh, ['Started']);
    // events.k8s.io/v1 serves the same Events (kubectl get events reads it)
    const v1 = await kube().list('events.k8s.io/v1', 'Event', { namespace: 'kube-system' });
    assert.ok(
      v1.items.some(
        (e) =>
          (e as unknown as { regarding: { uid: string }; reason: string }).regarding.uid ===
            op!.metadata.uid && (e as unknown as { reason: string }).reason === 'Killing',
      ),
    );
  });

  it('refuses a DaemonSet that is no reflection (the lab runs no DaemonSet controller)', async () => {
    await assert.rejects(
      kube().create({
        apiVersion: 'apps/v1',
        kind: 'DaemonSet',
        metadata: { name: 'mine', namespace: 'default' },
        spec: {
          selector: { matchLabels: { app: 'x' } },
          template: {
            metadata: { labels: { app: 'x' } },
            spec: { containers: [{ name: 'c', image: 'busybox' }] },
          },
        },
      }),
      (err: unknown) =>
        err instanceof ApiError &&
        err.httpCode === 422 &&
        /runs no DaemonSet controller/.test(err.message),
    );
  });

  it('refuses exec on a reflected pod with a message naming the daemon', async () => {
    const [op] = await podOf('tendril-operator');
    const url = new URL(
      `${api.server.url}/api/v1/namespaces/kube-system/pods/${op!.metadata.name}/exec?command=true&stdout=true`,
    );
    const answer = await new Promise<{ code: number; body: string }>((resolve, reject) => {
      const req = request(url, {
        headers: {
          Connection: 'Upgrade',
          Upgrade: 'websocket',
          'Sec-WebSocket-Version': '13',
          'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
          'Sec-WebSocket-Protocol': 'v5.channel.k8s.io',
        },
      });
      req.on('upgrade', () => reject(new Error('upgraded: exec was not refused')));
      req.on('response', (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ code: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(answer.code, 400);
    assert.match(answer.body, /reflects the lab daemon \\"tendril-operator\\"/);
  });

  it('removes the objects of daemons that are gone', async () => {
    source.list = source.list.filter((d) => d.name !== 'tendril-dns');
    await reflector.sync();
    await api.server.settle();
    assert.equal(
      await kube().getOrUndefined('apps/v1', 'Deployment', 'tendril-dns', {
        namespace: 'kube-system',
      }),
      undefined,
    );
    assert.equal((await podOf('tendril-dns')).length, 0);
    source.list = source.list.filter((d) => !daemonRole(d.spec));
    await reflector.sync();
    await api.server.settle();
    assert.equal(
      (await pods()).filter((p) => p.metadata.annotations?.[LAB_REFLECTION_ANNOTATION]).length,
      0,
    );
  });
});

/**
 * Real kubectl (Debian's kubectl 1.32) against a lab cluster's streaming
 * endpoints, as root: `logs` (whole, --tail, -f of a pod printing over time,
 * deploy/NAME), `exec` with stdin and an exit code (WebSocket remote-command
 * protocol v5), `get events` after a Deployment rollout, and `create
 * deployment`. One lab cluster with one node, made by `tendril lab create`,
 * which writes the lab-NAME context into $KUBECONFIG.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { privilegedTest } from '../helpers/privileged.js';
import { cliOk, teardownLab, until, useUniqueLab } from './lab-fixture.js';

const lab = useUniqueLab('ks');
const CLUSTER = 'ks1';
const CTX = `lab-${CLUSTER}`;

function kubectl(
  args: string[],
  input?: string,
): Promise<{ status: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      'kubectl',
      ['--context', CTX, ...args],
      { env: process.env, timeout: 60_000, maxBuffer: 16 << 20 },
      (error, out, err) => {
        const code = (error as { code?: unknown } | null)?.code;
        resolve({ status: error ? (typeof code === 'number' ? code : 1) : 0, out, err });
      },
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

async function kubectlOk(args: string[], input?: string): Promise<string> {
  const r = await kubectl(args, input);
  assert.equal(r.status, 0, `kubectl ${args.join(' ')} failed: ${r.err}`);
  return r.out;
}

const TICKER = `apiVersion: v1
kind: Pod
metadata: {name: ticker, namespace: default}
spec:
  hostNetwork: true
  containers:
  - name: main
    image: busybox
    command: [sh, -c, 'i=0; while [ $i -lt 400 ]; do echo tick $i; i=$((i+1)); sleep 0.3; done']
`;

const WEB = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      hostNetwork: true
      containers:
      - name: web
        image: busybox
        command: [sh, -c, 'echo web up; sleep 3600']
`;

privilegedTest(
  'privileged: kubectl logs, logs -f, exec with stdin and exit codes against a lab cluster',
  async () => {
    try {
      await cliOk(['lab', 'create', CLUSTER, '--nodes', '1', '--wait'], { timeoutMs: 240_000 });
      await kubectlOk(['apply', '-f', '-'], TICKER);
      await until(
        'pod ticker to run',
        async () =>
          (await kubectl(['get', 'pod', 'ticker', '-o', 'jsonpath={.status.phase}'])).out ===
          'Running',
        120_000,
      );
      await until('ticker to print 3 lines', async () => {
        const r = await kubectl(['logs', 'ticker']);
        return r.status === 0 && r.out.split('\n').length > 3;
      });
      const all = await kubectlOk(['logs', 'ticker']);
      assert.match(all, /^tick 0\ntick 1\ntick 2\n/);
      const tail = await kubectlOk(['logs', 'ticker', '--tail=1']);
      assert.match(tail, /^tick \d+\n$/);

      // logs -f: lines keep arriving while the pod prints
      const f = spawn('kubectl', ['--context', CTX, 'logs', '-f', 'ticker', '--tail=1'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let followed = '';
      let ferr = '';
      f.stdout.on('data', (d: Buffer) => (followed += d.toString()));
      f.stderr.on('data', (d: Buffer) => (ferr += d.toString()));
      try {
        await until(
          'logs -f to show 5 new lines',
          async () => followed.split('\n').length > 6,
          20_000,
        );
      } finally {
        f.kill();
      }
      const nums = followed
        .trim()
        .split('\n')
        .map((l) => Number(/^tick (\d+)$/.exec(l)?.[1]));
      assert.ok(
        nums.every((n, i) => i === 0 || n === nums[i - 1]! + 1),
        `${followed} ${ferr}`,
      );

      // exec: stdout, stdin, exit codes
      assert.equal(await kubectlOk(['exec', 'ticker', '--', 'echo', 'hello']), 'hello\n');
      assert.equal(
        await kubectlOk(['exec', '-i', 'ticker', '--', 'cat'], 'from stdin\n'),
        'from stdin\n',
      );
      const bad = await kubectl(['exec', 'ticker', '--', 'sh', '-c', 'echo oops >&2; exit 3']);
      assert.equal(bad.status, 3, bad.err);
      assert.match(bad.err, /oops/);
      assert.match(bad.err, /command terminated with exit code 3/);

      // a Deployment rollout leaves Events from the controllers, the scheduler and the kubelet
      await kubectlOk(['apply', '-f', '-'], WEB);
      await kubectlOk(['rollout', 'status', 'deploy/web', '--timeout=120s']);
      const events = await kubectlOk(['get', 'events']);
      assert.match(events, /^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE\n/);
      for (const re of [
        /Normal\s+ScalingReplicaSet\s+deployment\/web\s+Scaled up replica set web-\w+ from 0 to 1/,
        /Normal\s+SuccessfulCreate\s+deployment\/web\s+Created pod: web-/,
        /Normal\s+Scheduled\s+pod\/web-\S+\s+Successfully assigned default\/web-\S+ to ks1-worker/,
        /Normal\s+Started\s+pod\/web-\S+\s+Started container web/,
        /Normal\s+Created\s+pod\/ticker\s+Created container: main/,
      ])
        assert.match(events, re);
      const v1 = JSON.parse(await kubectlOk(['get', 'events.events.k8s.io', '-o', 'json']));
      assert.ok(
        v1.items.some(
          (e: { reason: string; regarding: { name: string } }) =>
            e.reason === 'Scheduled' && e.regarding.name.startsWith('web-'),
        ),
      );
      const webPod = (await kubectlOk(['get', 'pods', '-l', 'app=web', '-o', 'name'])).trim();
      const described = await kubectlOk(['describe', webPod]);
      assert.match(described, /Events:\n\s+Type\s+Reason\s+Age\s+From\s+Message\n/);
      assert.match(described, /Normal\s+Started\s+\S+\s+kubelet\s+Started container web/);
      // logs of a Deployment: kubectl picks a pod by the Deployment's selector
      await until('web to print', async () =>
        (await kubectl(['logs', 'deploy/web'])).out.includes('web up'),
      );

      // create deployment: kubectl sends the object as protobuf
      const created = await kubectl([
        'create',
        'deployment',
        'made',
        '--image=busybox',
        '--replicas=2',
      ]);
      assert.equal(created.status, 0, created.err);
      assert.equal(created.out, 'deployment.apps/made created\n');
      const made = JSON.parse(await kubectlOk(['get', 'deploy', 'made', '-o', 'json']));
      assert.equal(made.spec.replicas, 2);
      assert.equal(made.spec.template.spec.containers[0].image, 'busybox');
      assert.deepEqual(made.spec.selector.matchLabels, { app: 'made' });
      assert.equal(
        await kubectlOk(['create', 'configmap', 'cm', '--from-literal=a=1']),
        'configmap/cm created\n',
      );
      assert.equal(await kubectlOk(['get', 'cm', 'cm', '-o', 'jsonpath={.data.a}']), '1');
      assert.equal(
        await kubectlOk(['create', 'secret', 'generic', 'sec', '--from-literal=k=v']),
        'secret/sec created\n',
      );
      assert.equal(await kubectlOk(['get', 'secret', 'sec', '-o', 'jsonpath={.data.k}']), 'dg==');
      assert.equal(
        await kubectlOk(['create', 'service', 'clusterip', 'svc1', '--tcp=80:8080']),
        'service/svc1 created\n',
      );
      assert.equal(
        await kubectlOk(['get', 'svc', 'svc1', '-o', 'jsonpath={.spec.ports[0].targetPort}']),
        '8080',
      );
      assert.equal(
        await kubectlOk(['run', 'runner', '--image=busybox', '--', 'sleep', '60']),
        'pod/runner created\n',
      );
      assert.equal(
        await kubectlOk(['get', 'pod', 'runner', '-o', 'jsonpath={.spec.containers[0].args}']),
        '["sleep","60"]',
      );
    } finally {
      await teardownLab(lab);
    }
  },
  { timeout: 600_000 },
);

/**
 * kubectl compatibility, end to end, as root: one lab cluster made by
 * `tendril lab create` alone (no write-kubeconfig step), then the same `get`
 * command run through `tendril --context lab-kc1` and through the real
 * `kubectl --context lab-kc1` (which reads the kubeconfig `lab create` merged
 * into $KUBECONFIG, a file of this lab), and their outputs compared byte for
 * byte: a List at exactly one pod (-o json), the object for one
 * name, -o jsonpath with range/end, filters and escaped dots, -o
 * custom-columns, -o name, --sort-by (byte order, quantities), tables, and the
 * namespace name label. Nothing is normalised but the AGE cells of tables
 * (they tick between the two runs); a pair that differs is run again (up to 3 times).
 * (-o yaml is not compared: go-yaml folds long strings at 80 columns and
 * single-quotes strings with apostrophes; Tendril's YAML does neither.)
 * `lab delete` then removes the context from the kubeconfig again.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { privilegedTest } from '../helpers/privileged.js';
import { cli, cliOk, sleep, teardownLab, until, useUniqueLab } from './lab-fixture.js';

const lab = useUniqueLab('kc');
const CLUSTER = 'kc1';
const CTX = `lab-${CLUSTER}`;
const KUBECONFIG = process.env.KUBECONFIG!;

function kubectl(args: string[]): Promise<{ status: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      'kubectl',
      args,
      { env: process.env, timeout: 60_000, maxBuffer: 16 << 20 },
      (error, out, err) => {
        const code = (error as { code?: unknown } | null)?.code;
        resolve({ status: error ? (typeof code === 'number' ? code : 1) : 0, out, err });
      },
    );
  });
}

/** An AGE cell of a table ("41s", "2m41s", "3h", "5d"), which ticks between two runs. */
const AGE = /(?<=\s)\d+[smhd](\d+[smh])?(?=\s|$)/gm;

/**
 * Runs `get ARGS` through both; asserts the same exit status and stdout;
 * returns stdout. With `ages`, the AGE cells of a table are compared as
 * "<age>": the two commands run at different seconds (Tendril's CLI starts
 * slower than kubectl), and nothing else is normalised.
 */
async function same(args: string[], opts: { ages?: boolean } = {}): Promise<string> {
  const norm = (s: string) => (opts.ages ? s.replace(AGE, '<age>') : s);
  let t = { status: -1 as number | null, out: '', err: '' };
  let k = { status: -2, out: '', err: '' };
  for (let attempt = 0; attempt < 3; attempt++) {
    t = await cli(['--context', CTX, ...args]);
    k = await kubectl(['--context', CTX, ...args]);
    if (t.status === k.status && norm(t.out) === norm(k.out)) return t.out;
    await sleep(500);
  }
  assert.equal(
    t.out,
    k.out,
    `tendril and kubectl differ on: ${args.join(' ')}\ntendril stderr: ${t.err}\nkubectl stderr: ${k.err}`,
  );
  assert.equal(t.status, k.status, `exit status of: ${args.join(' ')}`);
  return t.out;
}

const pod = (name: string, app: string, images: string[]) => `---
apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: compat
  labels: {app: ${app}, app.kubernetes.io/name: ${app}-name}
spec:
  nodeSelector: {compat: nowhere}
  containers:
${images.map((image, i) => `  - {name: c${i}, image: ${image}, args: [sleep, "3600"]}`).join('\n')}
`;
const svc = (name: string, port: number) => `---
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: compat}
spec:
  ports: [{port: ${port}}]
`;

privilegedTest(
  'privileged: kubectl after lab create alone; get prints what kubectl prints',
  async () => {
    try {
      await cliOk(['lab', 'create', CLUSTER, '--nodes', '0'], { timeoutMs: 180_000 });
      // lab create merged the context into $KUBECONFIG and made it current
      const kc = parse(readFileSync(KUBECONFIG, 'utf8'));
      assert.equal(kc['current-context'], CTX);
      assert.ok(kc.contexts.some((c: { name: string }) => c.name === CTX));
      // as a real cluster is reached: https, the lab CA, the admin token (no plain-HTTP port)
      const cl = kc.clusters.find((c: { name: string }) => c.name === CTX).cluster;
      assert.match(cl.server, /^https:\/\/127\.0\.0\.1:\d+$/);
      assert.ok(cl['certificate-authority-data'], 'the lab CA is in the kubeconfig');
      assert.ok(kc.users.find((u: { name: string }) => u.name === CTX).user.token, 'admin token');
      const anon = await kubectl(['get', 'ns', 'default', '--token', 'wrong']);
      assert.notEqual(anon.status, 0, 'a wrong token is refused');
      assert.match(anon.err, /provide credentials|Unauthorized/);
      const ns = await kubectl(['get', 'ns', 'default', '-o', 'name']);
      assert.equal(ns.out, 'namespace/default\n', `plain kubectl failed: ${ns.err}`);

      // Pods stay Pending (no node matches), so their objects do not change.
      await cliOk(['--context', CTX, 'apply', '-f', '-'], {
        input:
          'apiVersion: v1\nkind: Namespace\nmetadata: {name: compat}\n' +
          pod('solo', 'solo', ['busybox']),
      });
      await until('the scheduler to give up on pod solo', async () => {
        const r = await cli([
          '--context',
          CTX,
          'get',
          'pod',
          'solo',
          '-n',
          'compat',
          '-o',
          'jsonpath={.status.conditions[?(@.type=="PodScheduled")].reason}',
        ]);
        return r.out === 'Unschedulable';
      });

      // one pod: a List, in JSON and YAML, exactly as kubectl
      const list = JSON.parse(await same(['get', 'pods', '-n', 'compat', '-o', 'json']));
      assert.equal(list.kind, 'List');
      assert.equal(list.items.length, 1);
      // by name: the object
      assert.equal(
        JSON.parse(await same(['get', 'pod', 'solo', '-n', 'compat', '-o', 'json'])).kind,
        'Pod',
      );
      // the namespace name label, and selecting by it
      assert.match(
        await same(['get', 'ns', 'compat', '-o', 'jsonpath={.metadata.labels}']),
        /"kubernetes.io\/metadata.name":"compat"/,
      );
      assert.equal(
        await same(['get', 'ns', '-l', 'kubernetes.io/metadata.name=compat', '-o', 'name']),
        'namespace/compat\n',
      );

      await cliOk(['--context', CTX, 'apply', '-f', '-'], {
        input:
          pod('web-10', 'web', ['nginx', 'busybox']) +
          pod('web-9', 'web', ['nginx']) +
          svc('svc-b', 8080) +
          svc('svc-a', 443) +
          svc('svc-c', 80),
      });
      await until('the scheduler to give up on the web pods', async () => {
        const r = await cli([
          '--context',
          CTX,
          'get',
          'pods',
          '-n',
          'compat',
          '-o',
          'jsonpath={range .items[*]}{.status.conditions[0].reason}{"\\n"}{end}',
        ]);
        return r.out === 'Unschedulable\n'.repeat(3);
      });

      const names = await same([
        'get',
        'pods',
        '-n',
        'compat',
        '-o',
        'jsonpath={range .items[*]}{.metadata.name}{"\\t"}{.spec.containers[*].image}{"\\n"}{end}',
      ]);
      assert.equal(names, 'solo\tbusybox\nweb-10\tnginx busybox\nweb-9\tnginx\n');
      await same([
        'get',
        'pods',
        '-n',
        'compat',
        '-o',
        'jsonpath={.items[?(@.metadata.labels.app=="web")].metadata.labels.app\\.kubernetes\\.io/name}',
      ]);
      await same([
        'get',
        'pods',
        '-n',
        'compat',
        '-o',
        'jsonpath={.items[-1:].metadata.name} {..image}',
      ]);
      await same(['get', 'pods', '-n', 'compat', '-o', 'jsonpath={.items[0].metadata.labels}']);
      await same([
        'get',
        'pods',
        '-n',
        'compat',
        '-o',
        'custom-columns=NAME:.metadata.name,APP:.metadata.labels.app,IMAGES:.spec.containers[*].image,NODE:.spec.nodeName,SEL:.spec.nodeSelector',
      ]);
      await same([
        'get',
        'pods',
        '-n',
        'compat',
        '--no-headers',
        '-o',
        'custom-columns=N:{.metadata.name}',
      ]);
      assert.equal(
        await same(['get', 'pods,svc', '-n', 'compat', '-o', 'name']),
        'pod/solo\npod/web-10\npod/web-9\nservice/svc-a\nservice/svc-b\nservice/svc-c\n',
      );
      assert.equal(
        await same(['get', 'pods', '-n', 'compat', '--sort-by=.metadata.name', '-o', 'name']),
        'pod/solo\npod/web-10\npod/web-9\n', // byte order, as kubectl 1.32
      );
      assert.match(
        await same([
          'get',
          'svc',
          '-n',
          'compat',
          '--sort-by=.spec.ports[0].port',
          '-o',
          'custom-columns=NAME:.metadata.name,PORT:.spec.ports[0].port,IP:.spec.clusterIP',
        ]),
        /^NAME\s+PORT\s+IP\nsvc-c\s+80\s.*\nsvc-a\s+443\s.*\nsvc-b\s+8080\s/,
      );
      await same(['get', 'svc', '-n', 'compat', '--sort-by', '{.metadata.name}', '-o', 'json']);
      const table = await same(['get', 'svc', '-n', 'compat', '--sort-by=.metadata.name'], {
        ages: true,
      });
      assert.match(table, /^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE\nsvc-a\s/);
      await same(['get', 'pods', '-n', 'compat'], { ages: true });
      await same(['get', 'pods', '-n', 'compat', '-o', 'wide'], { ages: true });

      // lab delete takes the context out of the kubeconfig again
      await cliOk(['lab', 'delete', CLUSTER], { timeoutMs: 180_000 });
      assert.ok(existsSync(KUBECONFIG));
      const after = parse(readFileSync(KUBECONFIG, 'utf8'));
      assert.deepEqual(after.contexts, []);
      assert.deepEqual(after.clusters, []);
      assert.equal(after['current-context'], '');
    } finally {
      await teardownLab(lab);
    }
  },
  { timeout: 600_000 },
);

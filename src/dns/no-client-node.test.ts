/**
 * A lab DNS daemon (--server / --cluster) must not load @kubernetes/client-node
 * (~1,700 modules, ~80 MiB RSS under tsx); only --kubeconfig loads it, lazily.
 * Same check as src/agent/k8s/no-client-node.test.ts: run the entry with an
 * ESM resolve hook that prints every module resolved.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const RESOLVE_HOOK = `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(\`export async function resolve(s, c, next) {
  const r = await next(s, c);
  process.stderr.write('RESOLVED ' + r.url + '\\\\n');
  return r;
}\`));
`;

test('a lab DNS daemon loads no module of @kubernetes/client-node', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-dns-loads-'));
  try {
    const hook = join(dir, 'hook.mjs');
    writeFileSync(hook, RESOLVE_HOOK);
    // a lab cluster that does not exist: the whole static module graph loads,
    // then parsing the command line (which imports the lab state) fails and it exits
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '--import',
        hook,
        join(ROOT, 'src/dns/main.ts'),
        '--cluster',
        'tendril-none',
        '--listen',
        '127.0.0.1:0',
      ],
      {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 60_000,
        env: {
          ...process.env,
          TENDRIL_HOME: dir,
          TENDRIL_LAB_PREFIX: `tendril-t${process.pid}dnsnocn`,
        },
      },
    );
    const resolved = r.stderr.split('\n').filter((l) => l.startsWith('RESOLVED '));
    assert.ok(
      resolved.some((l) => l.includes('/src/k8s/informer.ts')) &&
        resolved.some((l) => l.includes('/src/lab/state.ts')),
      `the DNS daemon's informer or lab path was not loaded; stderr:\n${r.stderr.slice(-2000)}`,
    );
    assert.notEqual(r.status, 0, 'a cluster that does not exist must be refused');
    const clientNode = resolved.filter((l) => l.includes('@kubernetes/client-node'));
    assert.deepEqual(clientNode.slice(0, 5), [], 'a value import of client-node in the DNS daemon');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

// An ESM resolve hook that prints every module the agent's entry resolves.
const HOOK = `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(\`export async function resolve(s, c, next) {
  const r = await next(s, c);
  process.stderr.write('RESOLVED ' + r.url + '\\\\n');
  return r;
}\`));
`;

test('the agent loads no module of @kubernetes/client-node (its memory budget)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-agent-loads-'));
  try {
    const hook = join(dir, 'hook.mjs');
    writeFileSync(hook, HOOK);
    // a cluster that does not exist: the whole static module graph loads, then it exits
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '--import',
        hook,
        join(ROOT, 'src/agent/main.ts'),
        '--cluster',
        'tendril-none',
        '--node',
        'x',
      ],
      {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 60_000,
        env: {
          ...process.env,
          TENDRIL_HOME: dir,
          TENDRIL_LAB_PREFIX: `tendril-t${process.pid}nocnx`,
        },
      },
    );
    const resolved = r.stderr.split('\n').filter((l) => l.startsWith('RESOLVED '));
    assert.ok(
      resolved.some((l) => l.includes('/src/agent/k8s/sources.ts')),
      `the agent's watchers were not loaded; stderr:\n${r.stderr.slice(-2000)}`,
    );
    const clientNode = resolved.filter((l) => l.includes('@kubernetes/client-node'));
    assert.deepEqual(clientNode.slice(0, 5), [], 'a value import of client-node in the agent');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

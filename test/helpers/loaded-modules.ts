/**
 * The modules an entry point resolves when it starts: runs it under tsx with
 * an ESM resolve hook that prints every resolved URL, and returns them. Tests
 * use it to keep heavy dependencies out of a daemon's module graph (e.g. no
 * `@kubernetes/client-node` in the agent or the DNS daemon).
 *
 *   const { resolved, status } = resolvedModules('src/agent/main.ts', ['--cluster', 'none']);
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const RESOLVE_HOOK = `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(\`export async function resolve(s, c, next) {
  const r = await next(s, c);
  process.stderr.write('RESOLVED ' + r.url + '\\\\n');
  return r;
}\`));
`;

export interface ResolvedModules {
  /** Every module URL resolved, in order. */
  resolved: string[];
  /** The entry's exit status. */
  status: number | null;
  /** Its stderr (for failure messages). */
  stderr: string;
}

/**
 * Runs `entry` (a path from the repository root) with `args`, in a fresh
 * TENDRIL_HOME and a unique TENDRIL_LAB_PREFIX (`tendril-t<pid><tag>x`), and
 * returns the modules it resolved. Give it arguments that make it load its
 * whole static graph and then exit (e.g. a lab cluster that does not exist).
 */
export function resolvedModules(entry: string, args: string[], tag: string): ResolvedModules {
  const dir = mkdtempSync(join(tmpdir(), `tendril-loads-${tag}-`));
  try {
    const hook = join(dir, 'hook.mjs');
    writeFileSync(hook, RESOLVE_HOOK);
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--import', hook, join(ROOT, entry), ...args],
      {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 60_000,
        env: {
          ...process.env,
          TENDRIL_HOME: dir,
          TENDRIL_LAB_PREFIX: `tendril-t${process.pid}${tag}x`,
        },
      },
    );
    return {
      resolved: r.stderr
        .split('\n')
        .filter((l) => l.startsWith('RESOLVED '))
        .map((l) => l.slice('RESOLVED '.length)),
      status: r.status,
      stderr: r.stderr,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Every external program that Tendril's code, tests, benchmarks or examples
 * run must be installed by `scripts/setup.sh` (its `need` table: command ->
 * Debian package). A new machine has only what set-up installs: a program
 * installed by hand on a developer's machine made CI fail on a fresh one
 * (`spawnSync bpftool ENOENT`). This test reads the sources, finds the
 * programs they run, and names any that set-up does not provide.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Programs that are not Debian packages: Node.js itself runs everything. */
const NOT_PACKAGES = new Set(['node', 'npm', 'npx']);
/** Tendril CLI verbs that are also programs on a Debian machine (`['install', '--context', ...]`). */
const CLI_VERBS = new Set(['install', 'service', 'wait', 'patch', 'exec']);

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.') || name === 'results') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sourceFiles(p, out);
    else if (/\.(ts|mjs|js|sh|pl)$/.test(name)) out.push(p);
  }
  return out;
}

/** The commands `scripts/setup.sh` installs (keys of its `need` table). */
export function providedBySetup(setupSh: string): Set<string> {
  const table = /declare -A need=\(([\s\S]*?)\n\)/.exec(setupSh);
  assert.ok(table, 'scripts/setup.sh has no `declare -A need=( ... )` table');
  return new Set([...table[1]!.matchAll(/\[([\w.+-]+)\]=/g)].map((m) => m[1]!));
}

const SPAWN = /\b(?:execFile|execFileSync|spawn|spawnSync|pexec|execa)\(\s*['"`]([^'"`\s]+)['"`]/g;
const ABSOLUTE = /['"`]\/(?:usr\/)?s?bin\/([\w.+-]+)['"`]/g;
const ARGV_ARRAY = /\[\s*['"]([a-z][\w.+-]*)['"]\s*,/g;
const NAMED_BINARY = /\b(?:binary|program)\s*(?:\?\?|=|:)\s*['"]([a-z][\w.+-]*)['"]/g;

function onThisMachine(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v "$1" || test -x "/usr/sbin/$1"`, 'sh', cmd], {
      stdio: 'ignore',
    });
    return true;
  } catch {
    return false;
  }
}

/** The programs one source text runs. */
export function scanText(text: string): Set<string> {
  const cmds = new Set<string>();
  const add = (cmd: string): void => {
    const base = cmd.split('/').pop()!;
    if (!NOT_PACKAGES.has(base) && !CLI_VERBS.has(base) && !base.includes('$')) cmds.add(base);
  };
  for (const m of text.matchAll(SPAWN)) add(m[1]!);
  for (const m of text.matchAll(ABSOLUTE)) add(m[1]!);
  // argv arrays (`['taskset', '-c', ...]`, `['nsenter', ...]`): only in files that
  // start processes, and only words that name a program on this machine, so
  // ordinary string arrays (`['get', 'pods']`) are not mistaken for commands.
  if (/child_process|spawn|execFile/.test(text)) {
    for (const m of text.matchAll(ARGV_ARRAY)) if (onThisMachine(m[1]!)) add(m[1]!);
    for (const m of text.matchAll(NAMED_BINARY)) if (onThisMachine(m[1]!)) add(m[1]!);
  }
  return cmds;
}

/** Programs the sources run: `command -> files`. */
export function programsRun(files: string[]): Map<string, Set<string>> {
  const found = new Map<string, Set<string>>();
  for (const f of files) {
    for (const cmd of scanText(readFileSync(f, 'utf8'))) {
      let s = found.get(cmd);
      if (!s) found.set(cmd, (s = new Set()));
      s.add(relative(root, f));
    }
  }
  return found;
}

test('setup.sh installs every program the code, tests, benchmarks and examples run', () => {
  const provided = providedBySetup(readFileSync(join(root, 'scripts/setup.sh'), 'utf8'));
  const files = ['src', 'test', 'bench', 'scripts', 'examples', 'bin']
    .flatMap((d) => sourceFiles(join(root, d)))
    .filter((f) => !f.endsWith('setup-provides-programs.test.ts'));
  const used = programsRun(files);
  // the detector must see the programs we know are used, or it has gone blind
  for (const known of ['ip', 'bpftool', 'etcd', 'busybox', 'curl', 'wrk']) {
    assert.ok(used.has(known), `the scan no longer finds '${known}'; fix the detector`);
  }
  const missing = [...used]
    .filter(([cmd]) => !provided.has(cmd))
    .map(([cmd, where]) => `${cmd} (run by ${[...where].slice(0, 3).join(', ')})`);
  assert.deepEqual(
    missing,
    [],
    `programs run but not installed by scripts/setup.sh; add each to its need table (command -> Debian package): ${missing.join('; ')}`,
  );
});

test('the scan finds spawn calls, absolute paths and argv arrays', () => {
  const src = [
    "import { spawn } from 'node:child_process';",
    "spawn('frobnicate', ['-x']);",
    "const p = '/usr/sbin/widgetd';",
    "const argv = ['sh', '-c', 'true'];",
    "const words = ['get', 'pods'];",
    "const o = { binary: 'ls' }; const p2 = opts.binary ?? 'cat';",
    "execFileSync(process.execPath, ['x']); spawn('node', []);",
  ].join('\n');
  assert.deepEqual([...scanText(src)].sort(), ['cat', 'frobnicate', 'ls', 'sh', 'widgetd']);
});

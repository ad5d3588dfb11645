#!/usr/bin/env node
// Runs every test: unit tests (*.test.ts) in parallel, then privileged tests
// (*.privileged.test.ts) one file at a time, since they share the kernel.
//   --unit          only unit tests
//   --privileged    only privileged tests
//   FILE...         only these files
// Privileged tests skip outside root, except under CI=true, where they fail.
// KUBECONFIG points at a file in a temporary directory for the run, so a test
// that runs `tendril lab create` (which merges its context into $KUBECONFIG)
// never writes the user's ~/.kube/config.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const only = args.find((a) => a === '--unit' || a === '--privileged');
const explicit = args.filter((a) => !a.startsWith('--'));

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out;
}

const files =
  explicit.length > 0
    ? explicit
    : [
        ...walk(join(root, 'src'), []),
        ...walk(join(root, 'test'), []),
        ...walk(join(root, 'bench'), []),
      ];
const privileged = files.filter((f) => f.endsWith('.privileged.test.ts')).sort();
const unit = files.filter((f) => !f.endsWith('.privileged.test.ts')).sort();

const kubeDir = mkdtempSync(join(tmpdir(), 'tendril-tests-kube-'));
const env = { ...process.env, KUBECONFIG: join(kubeDir, 'config') };

let failed = false;
function run(label, list, concurrency) {
  if (list.length === 0) return;
  console.log(`\n== ${label}: ${list.length} file(s) ==`);
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--test',
      `--test-concurrency=${concurrency}`,
      '--test-reporter=spec',
      ...list,
    ],
    { cwd: root, stdio: 'inherit', env },
  );
  if (r.status !== 0) failed = true;
}

if (only !== '--privileged') run('unit tests', unit, 2);
if (only !== '--unit') run('privileged tests', privileged, 1);
rmSync(kubeDir, { recursive: true, force: true });
process.exit(failed ? 1 : 0);

#!/usr/bin/env node
// `npm run bench -- NAME` runs bench/NAME/index.ts (or bench/NAME.ts). The
// benchmark prints a table and writes bench/results/NAME.json itself, through
// bench/lib/report.ts.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const [name, ...rest] = process.argv.slice(2);
const candidates = name
  ? [join(root, 'bench', name, 'index.ts'), join(root, 'bench', `${name}.ts`)]
  : [];
const entry = candidates.find((p) => existsSync(p));
if (!entry) {
  const known = readdirSync(join(root, 'bench')).filter((n) => !['lib', 'results'].includes(n));
  console.error(
    `usage: npm run bench -- NAME   (known: ${known.map((n) => n.replace(/\.ts$/, '')).join(', ')})`,
  );
  process.exit(2);
}
const r = spawnSync(process.execPath, ['--import', 'tsx', entry, ...rest], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);

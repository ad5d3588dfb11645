/**
 * The house rules of docs/architecture.md ("Layers"), checked on every
 * relative import (static `from '...'`, `export ... from`, and dynamic
 * `import('...')`) of src/ and bench/:
 *
 * - a folder of src/ imports only from its own layer or the layers below;
 * - no import circle between folders;
 * - only cli/, install/ and bench/ import lab/ (lab/ itself imports only util/,
 *   k8s/ and kvstore/);
 * - daemons (agent, operator, dns, clustermesh) never import install/ or lab/.
 *
 * Test files (`*.test.ts`) are harnesses and may import any part (the lab's
 * API server as a fixture goes through test/helpers/apiserver.ts). KNOWN lists what is
 * still to fix, each with its owner; the test fails when a listed import is
 * gone (shrink the list) or a new one appears.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Bottom up; a folder may import from its own layer and those below. */
export const LAYERS: readonly (readonly string[])[] = [
  ['util'],
  ['k8s', 'kvstore', 'datapath'],
  ['identity', 'services', 'policy', 'dns'],
  ['clustermesh', 'observe'],
  ['agent', 'operator'],
  ['install'],
  ['cli'],
];
/** lab/ stands beside the layers: it may use these, and only LAB_USERS may use it. */
// dns: the lab's busybox image answers `nslookup` with the DNS client (src/dns/client.ts)
const LAB_MAY_IMPORT = new Set(['util', 'k8s', 'kvstore', 'dns']);
// the lab's kubelet dials into a pod's network namespace for pods/portforward with the one setns(2) wrapper
const LAB_MAY_IMPORT_FILES = new Set(['src/datapath/bpf/netns.ts']);
const LAB_USERS = new Set(['cli', 'install', 'bench']);

/** Imports still to fix ("from -> to" as file paths), with who fixes them. */
const KNOWN: Record<string, string> = {};

function walk(dir: string, out: string[]): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (/\.(ts|mts)$/.test(name)) out.push(relative(root, p));
  }
  return out;
}

const IMPORT_RE =
  /(?:^|[\s;])(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^import\s+['"]([^'"]+)['"]/gm;

/** Every relative import of a file, resolved to a repo path (".js" read as ".ts"). */
export function importsOf(file: string, text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT_RE)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (!spec || !spec.startsWith('.')) continue;
    out.push(normalize(join(dirname(file), spec)).replace(/\.js$/, '.ts'));
  }
  return out;
}

/** The part a file belongs to: a folder of src/, or "bench", "test", "scripts". */
function partOf(path: string): string {
  const seg = path.split('/');
  return seg[0] === 'src' ? (seg.length > 2 ? seg[1]! : 'src') : seg[0]!;
}

function layerOf(part: string): number | undefined {
  const i = LAYERS.findIndex((l) => l.includes(part));
  return i < 0 ? undefined : i;
}

interface Violation {
  edge: string;
  why: string;
}

function check(): { violations: Violation[]; folderEdges: Map<string, Set<string>> } {
  const files = [...walk(join(root, 'src'), []), ...walk(join(root, 'bench'), [])];
  const violations: Violation[] = [];
  const folderEdges = new Map<string, Set<string>>();
  for (const file of files) {
    const from = partOf(file);
    const isTest = file.endsWith('.test.ts');
    for (const target of importsOf(file, readFileSync(join(root, file), 'utf8'))) {
      const to = partOf(target);
      if (to === from) continue;
      const edge = `${file} -> ${target}`;
      if (!isTest && from !== 'bench' && to !== 'test') {
        const set = folderEdges.get(from) ?? new Set<string>();
        set.add(to);
        folderEdges.set(from, set);
      }
      if (from === 'bench' || isTest || to === 'util') continue;
      if (to === 'lab') {
        if (!LAB_USERS.has(from))
          violations.push({ edge, why: `${from}/ imports lab/ (only cli, install, bench may)` });
        continue;
      }
      if (from === 'lab') {
        if (!LAB_MAY_IMPORT.has(to) && !LAB_MAY_IMPORT_FILES.has(target))
          violations.push({ edge, why: `lab/ imports ${to}/ (lab may use util, k8s, kvstore, dns and datapath/bpf/netns.ts)` });
        continue;
      }
      const lf = layerOf(from);
      const lt = layerOf(to);
      if (lf === undefined || lt === undefined) {
        violations.push({ edge, why: `${lf === undefined ? from : to}/ is in no layer` });
        continue;
      }
      if (lt > lf)
        violations.push({ edge, why: `${from}/ (layer ${lf}) imports ${to}/ (layer ${lt})` });
    }
  }
  return { violations, folderEdges };
}

/** A circle in the folder graph, or undefined. */
function findCircle(edges: Map<string, Set<string>>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): string[] | undefined => {
    state.set(n, 'open');
    stack.push(n);
    for (const m of edges.get(n) ?? []) {
      if (state.get(m) === 'open') return [...stack.slice(stack.indexOf(m)), m];
      if (!state.has(m)) {
        const c = visit(m);
        if (c) return c;
      }
    }
    stack.pop();
    state.set(n, 'done');
    return undefined;
  };
  for (const n of edges.keys()) {
    if (state.has(n)) continue;
    const c = visit(n);
    if (c) return c;
  }
  return undefined;
}

test('importsOf reads static, re-export and dynamic imports', () => {
  const text = [
    "import { a } from '../lab/state.js';",
    "export { b } from './b.js';",
    "import type { C } from '../k8s/client.js';",
    "const { d } = await import('../../src/install/install.js');",
    "import x from 'node:fs';",
  ].join('\n');
  assert.deepEqual(importsOf('src/agent/x.ts', text), [
    'src/lab/state.ts',
    'src/agent/b.ts',
    'src/k8s/client.ts',
    'src/install/install.ts',
  ]);
});

test('every folder of src/ is in a layer (or is lab/)', () => {
  const folders = readdirSync(join(root, 'src')).filter((n) =>
    statSync(join(root, 'src', n)).isDirectory(),
  );
  const missing = folders.filter((f) => f !== 'lab' && layerOf(f) === undefined);
  assert.deepEqual(missing, [], 'add the folder to LAYERS here and in docs/architecture.md');
});

test('imports follow the layers; only cli, install and bench import lab/', () => {
  const { violations } = check();
  const found = new Set(violations.map((v) => v.edge));
  const fresh = violations.filter((v) => !(v.edge in KNOWN)).map((v) => `${v.edge}  (${v.why})`);
  assert.deepEqual(fresh, [], 'imports that break the layers of docs/architecture.md');
  const fixed = Object.keys(KNOWN).filter((e) => !found.has(e));
  assert.deepEqual(fixed, [], 'fixed: remove these from KNOWN in test/architecture-layers.test.ts');
});

test('no import circle between folders of src/', () => {
  const edges = check().folderEdges;
  // the known agent/operator -> install edges (KNOWN) make a circle until step 3 lands
  for (const e of Object.keys(KNOWN)) {
    const [f, t] = e.split(' -> ').map(partOf);
    edges.get(f!)?.delete(t!);
  }
  assert.equal(findCircle(edges)?.join(' -> '), undefined);
});

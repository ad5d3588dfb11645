/**
 * Writes deploy/kubernetes/*.yaml from src/install/kubernetes/ (default
 * options). Run: npm run render-manifests
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { deployFiles } from '../src/install/kubernetes/deploy-files.js';

const root = fileURLToPath(new URL('..', import.meta.url));
for (const f of deployFiles()) {
  writeFileSync(root + f.path, f.content);
  process.stdout.write(`wrote ${f.path}\n`);
}

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolvedModules } from '../../../test/helpers/loaded-modules.js';

test('the clustermesh-apiserver loads no module of @kubernetes/client-node (its memory)', () => {
  // a cluster without a mesh: the whole static module graph loads, then it exits
  const r = resolvedModules(
    'src/clustermesh/apiserver/main.ts',
    ['--cluster', 'tendril-none'],
    'cmnocn',
  );
  assert.ok(
    r.resolved.some((u) => u.includes('/src/clustermesh/k8s-source.ts')),
    `the syncer's sources were not loaded; stderr:\n${r.stderr.slice(-2000)}`,
  );
  assert.match(r.stderr, /cluster mesh is not enabled/);
  const clientNode = r.resolved.filter((u) => u.includes('@kubernetes/client-node'));
  assert.deepEqual(
    clientNode.slice(0, 5),
    [],
    'a value import of client-node in the clustermesh-apiserver',
  );
});

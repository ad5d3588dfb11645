import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolvedModules } from '../../../test/helpers/loaded-modules.js';

test('the agent loads no module of @kubernetes/client-node (its memory budget)', () => {
  // a cluster that does not exist: the whole static module graph loads, then it exits
  const r = resolvedModules(
    'src/agent/main.ts',
    ['--cluster', 'tendril-none', '--node', 'x'],
    'nocn',
  );
  assert.ok(
    r.resolved.some((u) => u.includes('/src/agent/k8s/sources.ts')),
    `the agent's watchers were not loaded; stderr:\n${r.stderr.slice(-2000)}`,
  );
  const clientNode = r.resolved.filter((u) => u.includes('@kubernetes/client-node'));
  assert.deepEqual(clientNode.slice(0, 5), [], 'a value import of client-node in the agent');
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildProgram } from './main.js';

test('the CLI knows the version command and the global --context option', () => {
  const p = buildProgram();
  assert.ok(p.commands.some((c) => c.name() === 'version'));
  assert.ok(p.options.some((o) => o.long === '--context'));
});

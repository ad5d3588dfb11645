/**
 * A lab DNS daemon (--server / --cluster) must not load @kubernetes/client-node
 * (~1,700 modules, ~80 MiB RSS under tsx); only --kubeconfig loads it, lazily.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolvedModules } from '../../test/helpers/loaded-modules.js';

test('a lab DNS daemon loads no module of @kubernetes/client-node', () => {
  // a lab cluster that does not exist: the whole static module graph loads,
  // then parsing the command line (which imports the lab state) fails and it exits
  const r = resolvedModules(
    'src/dns/main.ts',
    ['--cluster', 'tendril-none', '--listen', '127.0.0.1:0'],
    'dnsnocn',
  );
  assert.ok(
    r.resolved.some((u) => u.includes('/src/k8s/informer.ts')) &&
      r.resolved.some((u) => u.includes('/src/lab/state.ts')),
    `the DNS daemon's informer or lab path was not loaded; stderr:\n${r.stderr.slice(-2000)}`,
  );
  assert.notEqual(r.status, 0, 'a cluster that does not exist must be refused');
  const clientNode = r.resolved.filter((u) => u.includes('@kubernetes/client-node'));
  assert.deepEqual(clientNode.slice(0, 5), [], 'a value import of client-node in the DNS daemon');
});

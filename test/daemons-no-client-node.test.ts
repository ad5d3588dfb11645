/**
 * Tendril's long-running daemons must not load @kubernetes/client-node at run
 * time (~1,700 modules under tsx, 80-130 MiB RSS each): they watch through
 * Tendril's own informer (src/k8s/informer.ts). Each entry is started with a
 * config that does not exist, so its whole static module graph loads and then
 * it exits; the resolve hook lists every module it loaded.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolvedModules } from './helpers/loaded-modules.js';

const DAEMONS: Array<{
  name: string;
  entry: string;
  args: string[];
  /** A module that proves the daemon's watchers were loaded. */
  watchers: string;
}> = [
  {
    name: 'agent',
    entry: 'src/agent/main.ts',
    args: ['--config-dir', '/nonexistent/tendril-none', '--kubeconfig', '/nonexistent/kc'],
    watchers: '/src/agent/k8s/sources.ts',
  },
  {
    name: 'DNS daemon',
    entry: 'src/dns/main.ts',
    args: ['--kubeconfig', '/nonexistent/kc', '--listen', '127.0.0.1:0'],
    watchers: '/src/k8s/informer.ts',
  },
  {
    name: 'clustermesh-apiserver',
    entry: 'src/clustermesh/apiserver/main.ts',
    args: ['--mesh-dir', '/nonexistent/tendril-none'],
    watchers: '/src/clustermesh/k8s-source.ts',
  },
  {
    name: 'operator',
    entry: 'src/operator/main.ts',
    args: ['--config-dir', '/nonexistent/tendril-none', '--kubeconfig', '/nonexistent/kc'],
    watchers: '/src/k8s/kind-watcher.ts',
  },
];

for (const [i, d] of DAEMONS.entries()) {
  test(`the ${d.name} loads no module of @kubernetes/client-node`, () => {
    const r = resolvedModules(d.entry, d.args, `nocn${i}`);
    assert.ok(
      r.resolved.some((u) => u.includes(d.watchers)),
      `the ${d.name}'s watchers (${d.watchers}) were not loaded; stderr:\n${r.stderr.slice(-2000)}`,
    );
    assert.notEqual(r.status, 0, 'a config that does not exist must be refused');
    const clientNode = r.resolved.filter((u) => u.includes('@kubernetes/client-node'));
    assert.deepEqual(clientNode.slice(0, 5), [], `a value import of client-node in the ${d.name}`);
  });
}

/**
 * The contract between the manifests and the daemons: each rendered daemon
 * container's command line, run as the image runs it (node + tsx from the
 * checkout), must be parsed by that daemon, which then fails only because
 * the files it names (config dir, kubeconfig) are not on this machine.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { resolveManifestOptions } from './options.js';
import { renderManifests } from './render.js';
import { PATHS } from './names.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));

describe('daemon command lines in the manifests', () => {
  const objs = renderManifests(
    resolveManifestOptions({ clusterName: 'c1', clustermesh: { serviceType: 'NodePort' } }),
  );
  const containers = objs
    .filter((o) => o.kind === 'DaemonSet' || o.kind === 'Deployment')
    .flatMap((o) =>
      (o.spec.template.spec.containers as Array<{ name: string; command: string[] }>)
        .filter((c) => c.command[0] === 'node')
        .map((c) => ({ id: `${o.metadata.name}/${c.name}`, command: c.command })),
    );

  it('renders the four daemons', () => {
    assert.deepEqual(containers.map((c) => c.id).sort(), [
      'clustermesh-apiserver/apiserver',
      'tendril-agent/agent',
      'tendril-dns/dns',
      'tendril-operator/operator',
    ]);
    assert.ok(!existsSync(PATHS.configDir) && !existsSync(PATHS.kubeconfigDir));
  });

  for (const c of containers) {
    it(`${c.id}: the daemon parses its flags and goes for the files they name`, () => {
      const r = spawnSync(process.execPath, c.command.slice(1), {
        cwd: repo,
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', K8S_NODE_NAME: 'node1' },
        timeout: 60_000,
      });
      const out = r.stderr + r.stdout;
      assert.notEqual(r.status, 0, out);
      assert.doesNotMatch(out, /Unknown option|unexpected argument/i, out);
      assert.match(out, /\/etc\/tendril\/(config|kubeconfig)/, out);
    });
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKubeconfig } from './kubeconfig-file.js';

test('loadKubeconfig: server of the current (or named) context, token or tokenFile, clear errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-kcfile-'));
  try {
    const f = join(dir, 'kubeconfig');
    writeFileSync(join(dir, 'token'), 'from-file\n');
    writeFileSync(
      f,
      [
        'apiVersion: v1',
        'kind: Config',
        'current-context: a',
        'clusters:',
        '- {name: ca, cluster: {server: "http://10.0.0.1:6443"}}',
        '- {name: cb, cluster: {server: "http://10.0.0.2:6443"}}',
        'users:',
        '- {name: ua, user: {token: sekret}}',
        `- {name: ub, user: {tokenFile: "${join(dir, 'token')}"}}`,
        'contexts:',
        '- {name: a, context: {cluster: ca, user: ua}}',
        '- {name: b, context: {cluster: cb, user: ub}}',
        '- {name: broken, context: {cluster: none, user: ua}}',
      ].join('\n'),
    );
    assert.deepEqual(loadKubeconfig(f), {
      context: 'a',
      server: 'http://10.0.0.1:6443',
      headers: { Authorization: 'Bearer sekret' },
    });
    assert.equal(loadKubeconfig(f, 'b').headers.Authorization, 'Bearer from-file');
    assert.throws(() => loadKubeconfig(f, 'zz'), /no context "zz"/);
    assert.throws(() => loadKubeconfig(f, 'broken'), /which has no server/);
    assert.throws(
      () => loadKubeconfig(join(dir, 'absent')),
      (e: Error & { code?: string }) => e.code === 'KUBECONFIG_INVALID',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  parseRemoteEtcdConfig,
  readClusterMeshConfig,
  sharedEtcdOptions,
  writeClusterMeshConfig,
} from './clustermesh-config.js';

test("clustermesh config: Cilium's shape (one etcd config per remote), round trip, bad files named", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-cmcfg-'));
  try {
    assert.deepEqual(readClusterMeshConfig(join(dir, 'absent')), [], 'no directory: no remotes');
    for (const f of ['ca.crt', 'agent.crt', 'agent.key']) writeFileSync(join(dir, f), `pem ${f}`);
    const remote = (name: string, ep = 'https://172.30.1.10:2379') => ({
      name,
      endpoints: [ep],
      trustedCAFile: join(dir, 'ca.crt'),
      certFile: join(dir, 'agent.crt'),
      keyFile: join(dir, 'agent.key'),
    });
    const cfgDir = join(dir, 'cm');
    writeClusterMeshConfig(cfgDir, [remote('cluster2'), remote('cluster3')]);
    // the exact text Cilium's clustermesh-config files hold
    const c2 = parseRemoteEtcdConfig(
      'cluster2',
      'endpoints:\n- https://172.30.1.10:2379\ntrusted-ca-file: /a/ca.crt\ncert-file: /a/c.crt\nkey-file: /a/c.key\n',
    );
    assert.deepEqual(c2.endpoints, ['https://172.30.1.10:2379']);
    assert.equal(c2.trustedCAFile, '/a/ca.crt');
    assert.deepEqual(
      readClusterMeshConfig(cfgDir).map((r) => r.name),
      ['cluster2', 'cluster3'],
    );
    const a = await sharedEtcdOptions(readClusterMeshConfig(cfgDir));
    assert.equal(a.options.tls?.ca, 'pem ca.crt');
    // a reissued certificate changes the fingerprint (the agent reconnects)
    writeFileSync(join(dir, 'agent.crt'), 'pem new');
    const b = await sharedEtcdOptions(readClusterMeshConfig(cfgDir));
    assert.notEqual(a.fingerprint, b.fingerprint);
    // remotes on different etcds: refused with the reason
    writeClusterMeshConfig(cfgDir, [
      remote('cluster2'),
      remote('cluster3', 'https://10.0.0.9:2379'),
    ]);
    await assert.rejects(sharedEtcdOptions(readClusterMeshConfig(cfgDir)), /different etcds/);
    writeClusterMeshConfig(cfgDir, [remote('cluster2')]);
    assert.deepEqual(
      readClusterMeshConfig(cfgDir).map((r) => r.name),
      ['cluster2'],
      'files of other clusters removed',
    );
    writeFileSync(join(cfgDir, 'cluster9'), 'endpoints: nope\n');
    assert.throws(
      () => readClusterMeshConfig(cfgDir),
      (e: Error & { code?: string }) =>
        e.code === 'CLUSTERMESH_BAD_CONFIG' && /cluster9: "endpoints"/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('readClusterMeshConfig sees a file rewritten in place (same size) between two reads', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-cmcfg-reread-'));
  try {
    const file = (port: number) =>
      `endpoints:\n- https://10.0.0.1:${port}\ntrusted-ca-file: ca.crt\ncert-file: a.crt\nkey-file: a.key\n`;
    writeFileSync(join(dir, 'cluster2'), file(2379));
    assert.deepEqual(readClusterMeshConfig(dir)[0]!.endpoints, ['https://10.0.0.1:2379']);
    // the cached parse is not handed out to be changed
    readClusterMeshConfig(dir)[0]!.endpoints.push('https://x:1');
    assert.deepEqual(readClusterMeshConfig(dir)[0]!.endpoints, ['https://10.0.0.1:2379']);
    writeFileSync(join(dir, 'cluster2'), file(2380));
    assert.deepEqual(readClusterMeshConfig(dir)[0]!.endpoints, ['https://10.0.0.1:2380']);
    rmSync(join(dir, 'cluster2'));
    assert.deepEqual(readClusterMeshConfig(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

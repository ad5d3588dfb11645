/**
 * The per-cluster lock of install and the clustermesh commands: concurrent
 * connects end with one consistent grant, concurrent enables with one CA,
 * another process's lock is waited for, a dead owner's lock is taken over,
 * and a lock that stays held is refused with the owner and the file named.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { installLockPath, withClusterLocks } from './install-lock.js';
import { connectDirection, prepareMesh } from './clustermesh/setup.js';
import { loopbackMeshOptions } from './clustermesh/testing.js';
import { useTempTendrilHome } from '../../test/helpers/temp-home.js';
import { certificateInfo, loadCA, verifyCertificate } from '../clustermesh/certs.js';
import { meshCAPaths, meshPaths, readReader, remotePaths } from '../clustermesh/mesh-files.js';

const home = useTempTendrilHome('lock');

test('two enables at once make one CA, whose key matches its certificate', async () => {
  const [a, b] = await Promise.all([
    prepareMesh(loopbackMeshOptions('e1', 'cluster1', 1)),
    prepareMesh(loopbackMeshOptions('e1', 'cluster1', 1)),
  ]);
  assert.equal(a.ca.fingerprint, b.ca.fingerprint, 'one CA');
  assert.equal([a.caCreated, b.caCreated].filter(Boolean).length, 1);
  const cp = meshCAPaths('e1');
  const ca = await loadCA(readFileSync(cp.caCert, 'utf8'), readFileSync(cp.caKey, 'utf8'));
  const p = meshPaths('e1');
  for (const f of [p.serverCert, p.rootCert, p.agentCert])
    verifyCertificate(readFileSync(f, 'utf8'), ca.certPEM);
});

test('two connects at once end with one grant: the reader user is the CN of the certificate the remote holds', async () => {
  await prepareMesh(loopbackMeshOptions('l1', 'cluster1', 1));
  await prepareMesh(loopbackMeshOptions('l2', 'cluster2', 2));
  for (let round = 0; round < 3; round++) {
    await Promise.all([connectDirection('l1', 'l2'), connectDirection('l1', 'l2')]);
    const cert = readFileSync(remotePaths('l1', 'cluster2').clientCert, 'utf8');
    const key = readFileSync(remotePaths('l1', 'cluster2').clientKey, 'utf8');
    const reader = await readReader('l2', 'cluster1');
    assert.equal(certificateInfo(cert).commonName, reader?.commonName, `round ${round}`);
    verifyCertificate(cert, readFileSync(meshCAPaths('l2').caCert, 'utf8'));
    // the key is the certificate's
    const { X509Certificate, createPrivateKey, createPublicKey } = await import('node:crypto');
    assert.equal(
      new X509Certificate(cert).publicKey.export({ type: 'spki', format: 'pem' }),
      createPublicKey(createPrivateKey(key)).export({ type: 'spki', format: 'pem' }),
    );
  }
});

function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

test("a dead owner's lock is taken over", async () => {
  const path = installLockPath('s1');
  await withClusterLocks(['s1'], 'clustermesh connect', async () => {}); // makes the dir
  const pid = deadPid();
  writeFileSync(path, JSON.stringify({ pid, what: 'clustermesh connect', at: 'then' }));
  let ran = false;
  await withClusterLocks(
    ['s1'],
    'clustermesh enable',
    async () => {
      ran = true;
      assert.equal(JSON.parse(readFileSync(path, 'utf8')).pid, process.pid);
    },
    { timeoutMs: 2000 },
  );
  assert.ok(ran);
  assert.throws(() => readFileSync(path), /ENOENT/, 'released');
});

test("another process's lock is waited for; one that stays held is refused, naming its pid, command and file", async () => {
  // a real second process holding the lock for a second
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      `import('./src/install/install-lock.ts').then(({ withClusterLocks }) =>
         withClusterLocks(['w1'], 'clustermesh connect', async () => {
           process.stdout.write('held\\n');
           await new Promise((r) => setTimeout(r, 1500));
         }))`,
    ],
    { env: { ...process.env, TENDRIL_HOME: home() }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    await new Promise<void>((res, rej) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('held') && res());
      child.on('exit', (c) => rej(new Error(`child exited ${c}`)));
    });
    const waited: string[] = [];
    const t = Date.now();
    await withClusterLocks(['w1'], 'clustermesh enable', async () => {}, {
      onWait: (c, owner) => waited.push(`${c}:${owner.pid}:${owner.what}`),
    });
    assert.deepEqual(waited, [`w1:${child.pid}:clustermesh connect`]);
    assert.ok(Date.now() - t > 500, 'waited for the other process');

    // held by a live process that does not let go: refused after the timeout
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      writeFileSync(
        installLockPath('w1'),
        JSON.stringify({ pid: sleeper.pid, what: 'clustermesh connect', at: 'now' }),
      );
      await assert.rejects(
        withClusterLocks(['w1'], 'clustermesh disconnect', async () => {}, { timeoutMs: 300 }),
        (e: Error & { code?: string; hint?: string }) =>
          e.code === 'INSTALL_LOCKED' &&
          e.message.includes(
            `another \`tendril clustermesh connect\` (pid ${sleeper.pid}, since now) holds the lock on cluster w1`,
          ) &&
          (e.hint ?? '').includes(installLockPath('w1')),
      );
    } finally {
      sleeper.kill('SIGKILL');
      rmSync(installLockPath('w1'), { force: true });
    }
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

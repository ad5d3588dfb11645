// The API server daemon (main.ts) as the lab runs it: flags, apiserver.json,
// the Unix socket, and a SIGKILL that loses no acknowledged write.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { KubeClient } from '../../k8s/client.js';
import type { KubeObject } from '../../k8s/objects.js';
import { parseApiServerArgs } from './main.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const main = join(root, 'src/lab/apiserver/main.ts');

/** Daemons started, killed in `after` even when a test fails while one starts. */
const children: ChildProcess[] = [];

async function startDaemon(
  dir: string,
  extra: string[] = [],
): Promise<{ child: ChildProcess; url: string }> {
  const info = join(dir, 'apiserver.json');
  if (existsSync(info)) unlinkSync(info);
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      main,
      '--cluster',
      'd',
      '--data-dir',
      dir,
      '--listen',
      '127.0.0.1:0',
      ...extra,
    ],
    {
      cwd: root,
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  children.push(child);
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  for (let i = 0; i < 300 && !existsSync(info); i++) {
    if (child.exitCode !== null) throw new Error(`daemon exited: ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, url: (JSON.parse(readFileSync(info, 'utf8')) as { url: string }).url };
}

describe('API server daemon', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-apiserver-daemon-'));
  after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('parses and checks its flags', () => {
    const a = parseApiServerArgs([
      '--cluster',
      'c1',
      '--data-dir',
      '/x',
      '--listen',
      '127.0.0.1:6443',
      '--store',
      'memory',
      '--advertise-address',
      '172.30.1.10:6443',
    ]);
    assert.deepEqual(
      [a.host, a.port, a.store, a.serviceCIDR, a.advertise],
      ['127.0.0.1', 6443, 'disk', '10.96.0.0/16', { ip: '172.30.1.10', port: 6443 }],
    );
    assert.throws(
      () => parseApiServerArgs(['--cluster', 'c', '--data-dir', '/x', '--listen', '0.0.0.0:6443']),
      /only listens on loopback/,
    );
    assert.throws(
      () => parseApiServerArgs(['--cluster', 'c', '--data-dir', '/x', '--store', 'etcd']),
      /--store etcd needs --etcd-endpoints/,
    );
    assert.throws(() => parseApiServerArgs(['--data-dir', '/x']), /--cluster is required/);
    // the https TCP listeners: root namespace, and another namespace (the control plane's)
    const tls = ['--tls-cert-file', '/c', '--tls-private-key-file', '/k'];
    const base = ['--cluster', 'c', '--data-dir', '/x'];
    const s = parseApiServerArgs([
      ...base,
      ...tls,
      '--secure-listen',
      '127.0.0.1:7443',
      '--node-listen',
      '172.30.1.10:6443',
      '--node-netns',
      'tendril-c-control-plane',
    ]);
    assert.deepEqual(s.secureListen, { host: '127.0.0.1', port: 7443 });
    assert.deepEqual(s.nodeListen, {
      netns: 'tendril-c-control-plane',
      host: '172.30.1.10',
      port: 6443,
    });
    assert.throws(
      () => parseApiServerArgs([...base, ...tls, '--node-listen', '172.30.1.10:6443']),
      /--node-listen needs --node-netns/,
    );
    assert.throws(
      () => parseApiServerArgs([...base, ...tls, '--node-netns', 'n']),
      /--node-listen \(missing\): expected IPv4:PORT/,
    );
    assert.throws(
      () => parseApiServerArgs([...base, '--node-listen', '172.30.1.10:6443', '--node-netns', 'n']),
      /--node-listen needs --tls-cert-file/,
    );
    assert.throws(
      () => parseApiServerArgs([...base, ...tls, '--secure-listen', 'localhost:1']),
      /--secure-listen localhost:1: expected IPv4:PORT/,
    );
    const bad = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        main,
        '--cluster',
        'c',
        '--data-dir',
        dir,
        '--service-cidr',
        '10.96.0.0/33',
      ],
      { cwd: root, encoding: 'utf8', timeout: 30_000 },
    );
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /invalid service CIDR "10.96.0.0\/33"/);
  });

  it('serves on TCP and its Unix socket, and loses no acknowledged write to SIGKILL', async () => {
    const sock = join(dir, 'api.sock');
    const d1 = await startDaemon(dir, ['--socket', sock]);
    const tcp = new KubeClient({ server: d1.url });
    const unix = new KubeClient({ server: `unix:${sock}` });
    try {
      const names: string[] = [];
      for (let i = 0; i < 25; i++) {
        const o = await (i % 2 ? tcp : unix).create<KubeObject>({
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: `k${i}` },
          spec: { ports: [{ port: 80 }] },
        });
        names.push(o.metadata.name!);
      }
      const before = await unix.list('v1', 'Service');
      const exited = new Promise((r) => d1.child.once('exit', r));
      d1.child.kill('SIGKILL');
      await exited;
      tcp.close();
      unix.close();
      const d2 = await startDaemon(dir);
      const again = new KubeClient({ server: d2.url });
      try {
        const afterList = await again.list('v1', 'Service');
        assert.deepEqual(afterList.items, before.items);
        assert.equal(afterList.metadata.resourceVersion, before.metadata.resourceVersion);
      } finally {
        again.close();
        const gone = new Promise((r) => d2.child.once('exit', r));
        d2.child.kill('SIGTERM');
        assert.equal(await gone, 0);
      }
    } finally {
      tcp.close();
      unix.close();
    }
  });
});

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { etcdArgs, freePort, startEtcd } from './etcd-server.js';

test('etcdArgs: plain, TLS with client certificates, netns, extra args', () => {
  assert.deepEqual(
    etcdArgs({ name: 'm1', dataDir: '/d', clientUrls: ['http://127.0.0.1:2379'], peerPort: 2390 }),
    [
      'etcd',
      '--name=m1',
      '--data-dir=/d',
      '--listen-client-urls=http://127.0.0.1:2379',
      '--advertise-client-urls=http://127.0.0.1:2379',
      '--listen-peer-urls=http://127.0.0.1:2390',
      '--initial-advertise-peer-urls=http://127.0.0.1:2390',
      '--initial-cluster=m1=http://127.0.0.1:2390',
      '--initial-cluster-state=new',
      '--logger=zap',
      '--log-outputs=stderr',
      // every etcd Tendril starts compacts and has a quota
      '--auto-compaction-mode=revision',
      '--auto-compaction-retention=10000',
      // a read buffer that stays small (etcd 3.4 copies it for every read transaction)
      '--backend-batch-limit=1000',
      '--quota-backend-bytes=2147483648',
    ],
  );
  const tls = etcdArgs({
    name: 'mesh',
    dataDir: '/d',
    clientUrls: ['https://172.30.1.10:2379', 'https://127.0.0.1:2379'],
    tls: { caFile: '/ca', certFile: '/crt', keyFile: '/key', clientCertAuth: true },
    netns: 'tendril-cluster1-control-plane',
    extraArgs: ['--auto-compaction-retention=1000'],
  });
  assert.deepEqual(tls.slice(0, 3), [
    'nsenter',
    '--net=/run/netns/tendril-cluster1-control-plane',
    '--',
  ]);
  for (const a of [
    '--listen-client-urls=https://172.30.1.10:2379,https://127.0.0.1:2379',
    '--cert-file=/crt',
    '--key-file=/key',
    '--trusted-ca-file=/ca',
    '--client-cert-auth=true',
    '--auto-compaction-retention=1000',
    '--listen-peer-urls=http://127.0.0.1:2380',
    '--quota-backend-bytes=2147483648',
  ]) {
    assert.ok(tls.includes(a), a);
  }
  assert.equal(
    tls.filter((a) => a.startsWith('--auto-compaction-retention')).length,
    1,
    'a given retention is not doubled',
  );
  assert.ok(
    etcdArgs({
      name: 'q',
      dataDir: '/d',
      clientUrls: ['http://127.0.0.1:2379'],
      quotaBackendBytes: 1 << 20,
    }).includes('--quota-backend-bytes=1048576'),
  );
});

test('etcdArgs: bad options are refused with the reason', () => {
  const base = { name: 'm', dataDir: '/d', clientUrls: ['http://127.0.0.1:2379'] };
  const cases: [Partial<Parameters<typeof etcdArgs>[0]>, RegExp][] = [
    [{ name: 'bad name' }, /name "bad name"/],
    [{ clientUrls: [] }, /no client URL/],
    [{ clientUrls: ['127.0.0.1:2379'] }, /is not a URL/],
    [{ clientUrls: ['https://127.0.0.1:2379'] }, /must use http since no TLS/],
    [
      { tls: { caFile: 'a', certFile: 'b', keyFile: 'c', clientCertAuth: true } },
      /must use https since TLS/,
    ],
    [{ clientUrls: ['http://127.0.0.1'] }, /has no port/],
    [{ peerPort: 70000 }, /peerPort 70000/],
    [{ netns: '../x' }, /not a namespace name/],
  ];
  for (const [o, re] of cases)
    assert.throws(
      () => etcdArgs({ ...base, ...o }),
      (e: Error & { code?: string }) => e.code === 'ETCD_INVALID_OPTIONS' && re.test(e.message),
      re.source,
    );
});

test("startEtcd: a client port in use fails fast with etcd's log and a hint", async () => {
  const port = await freePort();
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', () => r()));
  const dir = mkdtempSync(join(tmpdir(), 'tendril-etcd-busy-'));
  try {
    await assert.rejects(
      startEtcd(
        { name: 'busy', dataDir: join(dir, 'data'), clientUrls: [`http://127.0.0.1:${port}`] },
        { timeoutMs: 15_000 },
      ),
      (e: Error & { code?: string; hint?: string }) => {
        assert.equal(e.code, 'ETCD_START_FAILED');
        assert.match(e.message, /exited/);
        assert.match(e.message, /address already in use/);
        assert.match(e.hint ?? '', /another process listens on that port/);
        return true;
      },
    );
  } finally {
    blocker.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createCA, issueClientCert, issueServerCert } from '../util/certs.js';
import { FlowRing } from '../observe/ring.js';
import { ObserverServer } from '../observe/server.js';
import { testFlow } from '../observe/testing.js';
import { parseObserveArgs } from './hubble-flags.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

function tendril(args: string[]): Promise<{ status: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, 'bin/tendril.mjs'), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, out, err });
    });
  });
}

test('hubble observe/status --server with the TLS flags reach a node observer over mutual TLS', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hubble-cli-tls-'));
  const ca = await createCA();
  const srv = await issueServerCert(ca, { commonName: 'node' });
  const cli = await issueClientCert(ca, 'hubble-cli');
  const file = (n: string, t: string) => {
    writeFileSync(join(dir, n), t);
    return join(dir, n);
  };
  const caFile = file('ca.crt', ca.certPEM);
  const certFile = file('client.crt', cli.certPEM);
  const keyFile = file('client.key', cli.keyPEM);
  const otherKey = file('other.key', srv.keyPEM);
  const ring = new FlowRing(8);
  for (let i = 1; i <= 3; i++) ring.push(testFlow(i, { nodeName: 'n1' }));
  const server = new ObserverServer({ source: ring, nodeName: 'n1' });
  await server.listen({
    tcpAddress: '127.0.0.1:0',
    tls: { ca: ca.certPEM, cert: srv.certPEM, key: srv.keyPEM },
  });
  const address = server.addresses[0]!;
  const tls = [
    '--tls-ca-cert-files',
    caFile,
    '--tls-client-cert-file',
    certFile,
    '--tls-client-key-file',
    keyFile,
  ];
  try {
    const st = await tendril(['hubble', 'status', '--server', address, ...tls]);
    assert.equal(st.status, 0, st.err);
    assert.match(st.out, /Healthcheck \(via 127\.0\.0\.1:\d+\): Ok/);
    assert.match(st.out, /Current\/Max Flows: 3\/8/);
    const obs = await tendril(['hubble', 'observe', '--server', address, ...tls, '-o', 'json']);
    assert.equal(obs.status, 0, obs.err);
    assert.equal(obs.out.trim().split('\n').length, 3);
    // no client certificate: the server refuses the handshake
    const plain = await tendril(['hubble', 'status', '--server', address]);
    assert.equal(plain.status, 1);
    // a key of another certificate: named before any connection
    const bad = await tendril([
      'hubble',
      'status',
      '--server',
      address,
      ...tls.slice(0, 5),
      otherKey,
    ]);
    assert.equal(bad.status, 1);
    assert.ok(bad.err.includes(otherKey), bad.err);
    assert.match(bad.err, /does not belong to the certificate/);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the TLS flags go together and need --server', () => {
  assert.throws(
    () => parseObserveArgs(['--server', '127.0.0.1:4244', '--tls-ca-cert-files', 'ca.crt']),
    /--tls-client-cert-file: missing: the TLS flags go together/,
  );
  assert.throws(
    () =>
      parseObserveArgs([
        '--tls-ca-cert-files',
        'a',
        '--tls-client-cert-file',
        'b',
        '--tls-client-key-file',
        'c',
      ]),
    /TLS needs --server/,
  );
  assert.deepEqual(
    parseObserveArgs([
      '--server',
      '10.0.0.1:4244',
      '--tls-ca-cert-files',
      'a',
      '--tls-client-cert-file',
      'b',
      '--tls-client-key-file',
      'c',
    ]).tls,
    { caFile: 'a', certFile: 'b', keyFile: 'c' },
  );
});

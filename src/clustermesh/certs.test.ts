import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import {
  CertificateError,
  certificateInfo,
  classifyTLSError,
  createCA,
  issueClientCert,
  issueServerCert,
  loadCA,
  loadOrCreateMeshCA,
  remoteClientCN,
  verifyCertificate,
} from './certs.js';

test('mesh CA is made once, stored with a private key file, and reused', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tendril-certs-'));
  try {
    const a = await loadOrCreateMeshCA(dir);
    assert.equal(a.created, true);
    assert.equal((await stat(join(dir, 'ca.key'))).mode & 0o777, 0o600);
    const b = await loadOrCreateMeshCA(dir);
    assert.equal(b.created, false);
    assert.equal(b.ca.fingerprint, a.ca.fingerprint);
    // A key that does not belong to the certificate is refused, never silently replaced.
    const other = await createCA();
    await writeFile(join(dir, 'ca.key'), other.keyPEM);
    await assert.rejects(
      loadOrCreateMeshCA(dir),
      (e: unknown) => e instanceof CertificateError && e.code === 'CERT_KEY_MISMATCH',
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('server and client certificates carry the right names and verify against their CA only', async () => {
  const ca = await createCA();
  const server = await issueServerCert(ca, { ips: ['172.30.1.10'] });
  const info = certificateInfo(server.certPEM);
  assert.deepEqual(info.ipAddresses.sort(), ['127.0.0.1', '172.30.1.10']);
  assert.ok(info.dnsNames.includes('localhost'));
  assert.ok(info.dnsNames.includes('clustermesh-apiserver.kube-system.svc'));
  assert.equal(info.isCA, false);
  verifyCertificate(server.certPEM, ca.certPEM, {
    purpose: 'server',
    host: '172.30.1.10',
    owner: 'cluster1',
  });
  assert.throws(
    () =>
      verifyCertificate(server.certPEM, ca.certPEM, {
        purpose: 'server',
        host: '172.30.2.10',
        owner: 'cluster1',
      }),
    (e: unknown) =>
      e instanceof CertificateError &&
      e.code === 'CERT_NAME_MISMATCH' &&
      /does not cover 172\.30\.2\.10/.test(e.message),
  );
  const client = await issueClientCert(ca, remoteClientCN('cluster2'));
  assert.equal(certificateInfo(client.certPEM).commonName, 'remote-cluster2');
  verifyCertificate(client.certPEM, ca.certPEM, {
    purpose: 'client',
    commonName: 'remote-cluster2',
  });
  assert.throws(
    () => verifyCertificate(client.certPEM, ca.certPEM, { purpose: 'client', commonName: 'root' }),
    /expected "root"/,
  );

  const other = await createCA();
  assert.throws(
    () => verifyCertificate(client.certPEM, other.certPEM, { owner: 'cluster2' }),
    (e: unknown) =>
      e instanceof CertificateError &&
      e.code === 'CERT_CA_MISMATCH' &&
      e.message.startsWith('certificate for cluster2 was signed by a different CA') &&
      e.message.includes(other.fingerprint) &&
      /tendril clustermesh connect/.test(e.hint ?? ''),
  );
  await assert.rejects(loadCA(ca.certPEM, other.keyPEM), /does not belong/);
  assert.throws(
    () => certificateInfo('garbage'),
    (e: unknown) => e instanceof CertificateError && e.code === 'CERT_INVALID',
  );
});

test('expired and not-yet-valid certificates are reported as such', async () => {
  const ca = await createCA();
  const old = await issueClientCert(ca, 'root', {
    notBefore: new Date(Date.now() - 10 * 86_400_000),
    validDays: 1,
  });
  assert.throws(
    () => verifyCertificate(old.certPEM, ca.certPEM, { owner: 'cluster1' }),
    (e: unknown) => e instanceof CertificateError && e.code === 'CERT_EXPIRED',
  );
  const future = await issueClientCert(ca, 'root', {
    notBefore: new Date(Date.now() + 86_400_000),
  });
  assert.throws(
    () => verifyCertificate(future.certPEM, ca.certPEM),
    (e: unknown) => e instanceof CertificateError && e.code === 'CERT_NOT_YET_VALID',
  );
});

test('the certificates work for mutual TLS, and a foreign client certificate is rejected', async () => {
  const ca = await createCA();
  const server = await issueServerCert(ca);
  const client = await issueClientCert(ca, 'remote-cluster2');
  const foreign = await issueClientCert(await createCA(), 'remote-cluster2');
  const srv = tls.createServer(
    {
      cert: server.certPEM,
      key: server.keyPEM,
      ca: ca.certPEM,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (s) => {
      s.end(`hello ${(s.getPeerCertificate() as { subject?: { CN?: string } }).subject?.CN}`);
    },
  );
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  const talk = (cert: string, key: string) =>
    new Promise<string>((resolve, reject) => {
      const s = tls.connect(
        { host: '127.0.0.1', port, cert, key, ca: ca.certPEM, servername: 'localhost' },
        () => {},
      );
      let out = '';
      s.on('data', (d) => (out += d));
      s.on('end', () => resolve(out));
      s.on('error', reject);
    });
  try {
    assert.equal(await talk(client.certPEM, client.keyPEM), 'hello remote-cluster2');
    // A Node server drops the connection after the handshake without an alert; etcd's alert is classified in the etcd tests.
    const out = await talk(foreign.certPEM, foreign.keyPEM).catch(
      (e: unknown) => `error: ${(e as Error).message}`,
    );
    assert.ok(!out.startsWith('hello'), `foreign certificate accepted: ${out}`);
    assert.equal(
      classifyTLSError(new Error('14 UNAVAILABLE: ... alert bad certificate')),
      'certificate-rejected',
    );
    assert.equal(
      classifyTLSError(
        new Error('unable to verify the first certificate; UNABLE_TO_VERIFY_LEAF_SIGNATURE'),
      ),
      'unknown-ca',
    );
    assert.equal(classifyTLSError(new Error('connect ECONNREFUSED 127.0.0.1:2379')), undefined);
  } finally {
    await new Promise((r) => srv.close(r));
  }
});

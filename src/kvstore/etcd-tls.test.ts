/**
 * Mutual TLS to a real etcd at IP endpoints: no IP address is sent as SNI
 * (Node's DEP0123 warning), and the server certificate is still checked
 * against the CA and the IP address dialled. etcd listens on 127.0.0.1 and
 * 127.0.0.2 with a certificate naming only 127.0.0.1; no root needed.
 *
 * Node emits DEP0123 once per process, so the test that proves the warning
 * listener sees it (a raw tls.connect with an IP servername) runs last.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import {
  createCA,
  issueClientCert,
  issueServerCert,
  type CertificateAuthority,
  type KeyPairPEM,
} from '../clustermesh/certs.js';
import { EtcdKVStore, type EtcdTLSOptions } from './etcd.js';
import { freePort, startEtcd, type EtcdServer } from './etcd-server.js';
import { endpointIdentityIP, IP_ENDPOINT_SNI } from './etcd-tls.js';
import { isKVStoreError } from './errors.js';

test('endpointIdentityIP: IP hosts (v4, v6) and IP server names; DNS names are no IP identity', () => {
  assert.equal(endpointIdentityIP('https://172.30.1.10:32379'), '172.30.1.10');
  assert.equal(endpointIdentityIP('https://[fd00::1]:2379'), 'fd00::1');
  assert.equal(endpointIdentityIP('127.0.0.1:2379'), '127.0.0.1');
  assert.equal(endpointIdentityIP('https://localhost:2379'), undefined);
  assert.equal(endpointIdentityIP('https://localhost:2379', '10.0.0.1'), '10.0.0.1');
  assert.equal(endpointIdentityIP('https://10.0.0.1:2379', 'etcd.example'), undefined);
});

describe('etcd over mutual TLS at an IP address', { timeout: 60_000 }, () => {
  let dir: string;
  let srv: EtcdServer;
  let ca: CertificateAuthority;
  let server: KeyPairPEM;
  let client: KeyPairPEM;
  let good: string; // https://127.0.0.1:P, named by the certificate
  let wrongIP: string; // https://127.0.0.2:Q, not named by it
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  const dep0123 = () => warnings.filter((w) => (w as { code?: string }).code === 'DEP0123');
  const stores: EtcdKVStore[] = [];
  const store = (endpoint: string, tlsOpts: Partial<EtcdTLSOptions> = {}) => {
    const s = new EtcdKVStore({
      endpoints: [endpoint],
      tls: { ca: ca.certPEM, cert: client.certPEM, key: client.keyPEM, ...tlsOpts },
      dialTimeoutMs: 1500,
      requestTimeoutMs: 4000,
    });
    stores.push(s);
    return s;
  };
  const rejectsServerCert = async (s: EtcdKVStore, why: RegExp) => {
    await assert.rejects(s.get('tls/x'), (e) => {
      assert.ok(isKVStoreError(e, 'KVSTORE_TLS'), String(e));
      assert.match((e as Error).message, /server's certificate is not trusted/);
      assert.match((e as Error).message, why);
      return true;
    });
  };

  before(async () => {
    process.on('warning', onWarning);
    dir = mkdtempSync(join(tmpdir(), 'tendril-etcd-tls-'));
    ca = await createCA();
    // SANs: 127.0.0.1 and DNS names (localhost, *.mesh.cilium.io, ...), not 127.0.0.2.
    server = await issueServerCert(ca);
    client = await issueClientCert(ca, 'root');
    writeFileSync(join(dir, 'ca.crt'), ca.certPEM);
    writeFileSync(join(dir, 'server.crt'), server.certPEM);
    writeFileSync(join(dir, 'server.key'), server.keyPEM, { mode: 0o600 });
    good = `https://127.0.0.1:${await freePort('127.0.0.1')}`;
    wrongIP = `https://127.0.0.2:${await freePort('127.0.0.2')}`;
    srv = await startEtcd({
      name: 'tls',
      dataDir: join(dir, 'data'),
      clientUrls: [good, wrongIP],
      tls: {
        caFile: join(dir, 'ca.crt'),
        certFile: join(dir, 'server.crt'),
        keyFile: join(dir, 'server.key'),
        clientCertAuth: true,
      },
    });
  });
  after(async () => {
    process.off('warning', onWarning);
    for (const s of stores) await s.close();
    await srv?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a client at the IP the certificate names works and no DEP0123 warning is emitted', async () => {
    const s = store(good);
    await s.put('tls/a', '1');
    assert.equal((await s.get('tls/a'))?.value, '1');
    const w = await s.watchPrefix('tls/', () => {});
    await w.close();
    await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    assert.deepEqual(dep0123(), []);
  });

  test('a certificate that does not name the IP dialled is rejected (its DNS names do not count)', async () => {
    await rejectsServerCert(store(wrongIP), /127\.0\.0\.2/);
    // Pinned to another IP by serverName: the same certificate is rejected at the good address.
    await rejectsServerCert(store(good, { serverName: '127.0.0.3' }), /127\.0\.0\.3/);
    // serverName naming the certificate's IP is accepted at the other address.
    assert.equal((await store(wrongIP, { serverName: '127.0.0.1' }).get('tls/a'))?.value, '1');
    assert.deepEqual(dep0123(), []);
  });

  test('a server certificate from another CA is rejected', async () => {
    const other = await createCA({ commonName: 'other-ca' });
    await rejectsServerCert(store(good, { ca: other.certPEM }), /certificate/i);
    assert.deepEqual(dep0123(), []);
  });

  test('the SNI an IP endpoint sends is a DNS name, not the IP', async () => {
    const seen: (string | false)[] = [];
    const fake = tls.createServer(
      { cert: server.certPEM, key: server.keyPEM, ALPNProtocols: ['h2'] },
      (sock) => {
        seen.push((sock as tls.TLSSocket & { servername: string | false }).servername);
        sock.destroy();
      },
    );
    fake.listen(0, '127.0.0.1');
    await once(fake, 'listening');
    const { port } = fake.address() as { port: number };
    try {
      const s = store(`https://127.0.0.1:${port}`);
      await assert.rejects(s.get('tls/x'));
      assert.ok(seen.length > 0, 'the client never completed a handshake');
      assert.deepEqual([...new Set(seen)], [IP_ENDPOINT_SNI]);
    } finally {
      fake.close();
    }
  });

  // Last: Node warns about an IP servername once per process.
  test('control: an IP servername does emit DEP0123, so the listener above would see it', async () => {
    const port = Number(new URL(good).port);
    const sock = tls.connect({
      host: '127.0.0.1',
      port,
      servername: '127.0.0.1',
      ca: ca.certPEM,
      cert: client.certPEM,
      key: client.keyPEM,
    });
    try {
      await once(sock, 'secureConnect');
    } finally {
      sock.destroy();
    }
    await new Promise((r) => setImmediate(r));
    assert.equal(dep0123().length, 1);
  });
});

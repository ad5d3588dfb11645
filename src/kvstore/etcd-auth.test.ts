/**
 * etcd roles enforce the mesh's access rules: a real etcd with mutual TLS
 * and auth on; users come from client certificates' CNs.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  createCA,
  issueClientCert,
  issueServerCert,
  type CertificateAuthority,
} from '../clustermesh/certs.js';
import { waitFor } from './conformance.js';
import { EtcdKVStore } from './etcd.js';
import {
  remoteClusterUser,
  remoteReadOnlyRole,
  removeEtcdUser,
  setupEtcdAuth,
} from './etcd-auth.js';
import { freePort, startEtcd, type EtcdServer } from './etcd-server.js';
import { isKVStoreError } from './errors.js';

describe('etcd auth: mutual TLS, certificate CN as user, read-only remote role', () => {
  let dir: string;
  let srv: EtcdServer;
  let ca: CertificateAuthority;
  let root: EtcdKVStore;
  const stores: EtcdKVStore[] = [];
  const client = async (cn: string | undefined, signer: CertificateAuthority = ca) => {
    const tls: { ca: string; cert?: string; key?: string } = { ca: ca.certPEM };
    if (cn) {
      const kp = await issueClientCert(signer, cn);
      tls.cert = kp.certPEM;
      tls.key = kp.keyPEM;
    }
    const s = new EtcdKVStore({
      endpoints: srv.endpoints,
      tls,
      dialTimeoutMs: 1500,
      requestTimeoutMs: 4000,
    });
    stores.push(s);
    return s;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tendril-etcd-auth-'));
    ca = await createCA();
    const server = await issueServerCert(ca);
    writeFileSync(join(dir, 'ca.crt'), ca.certPEM);
    writeFileSync(join(dir, 'server.crt'), server.certPEM);
    writeFileSync(join(dir, 'server.key'), server.keyPEM, { mode: 0o600 });
    const port = await freePort();
    srv = await startEtcd({
      name: 'auth',
      dataDir: join(dir, 'data'),
      clientUrls: [`https://127.0.0.1:${port}`],
      tls: {
        caFile: join(dir, 'ca.crt'),
        certFile: join(dir, 'server.crt'),
        keyFile: join(dir, 'server.key'),
        clientCertAuth: true,
      },
    });
    root = await client('root');
    await root.put('cilium/state/services/v1/cluster1/default/echo', '{"x":1}');
    await root.put('cilium/cache/services/v1/cluster3/default/other', '{}');
    await root.put('cilium/.heartbeat', new Date().toISOString());
    await root.put('cilium/cluster-config/cluster1', '{"id":1}');
    await setupEtcdAuth(root, {
      roles: [remoteReadOnlyRole()],
      users: [remoteClusterUser('remote-cluster2')],
    });
  });
  after(async () => {
    for (const s of stores) await s.close();
    await srv?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the remote user reads the exported state, config and heartbeat', async () => {
    const remote = await client('remote-cluster2');
    assert.equal(
      (await remote.get('cilium/state/services/v1/cluster1/default/echo'))?.value,
      '{"x":1}',
    );
    assert.equal((await remote.list('cilium/state/')).kvs.length, 1);
    assert.equal((await remote.get('cilium/cluster-config/cluster1'))?.value, '{"id":1}');
    assert.ok(await remote.get('cilium/.heartbeat'));
    const seen: string[] = [];
    const w = await remote.watchPrefix(
      'cilium/state/',
      (ev) => ev.type === 'put' && seen.push(ev.kv.key),
    );
    await root.put('cilium/state/nodes/v1/cluster1/n1', '{}');
    await waitFor(() => seen.length === 1);
    await w.close();
  });

  test('the remote user can write nothing and read nothing else', async () => {
    const remote = await client('remote-cluster2');
    for (const key of [
      'cilium/state/services/v1/cluster1/default/echo',
      'cilium/state/x',
      'cilium/cache/x',
      'other',
    ]) {
      await assert.rejects(
        remote.put(key, 'evil'),
        (e) => isKVStoreError(e, 'KVSTORE_PERMISSION_DENIED'),
        key,
      );
    }
    await assert.rejects(remote.delete('cilium/state/services/v1/cluster1/default/echo'), (e) =>
      isKVStoreError(e, 'KVSTORE_PERMISSION_DENIED'),
    );
    await assert.rejects(remote.deletePrefix('cilium/'), (e) =>
      isKVStoreError(e, 'KVSTORE_PERMISSION_DENIED'),
    );
    await assert.rejects(remote.get('cilium/cache/services/v1/cluster3/default/other'), (e) =>
      isKVStoreError(e, 'KVSTORE_PERMISSION_DENIED'),
    );
    await assert.rejects(remote.list('cilium/'), (e) =>
      isKVStoreError(e, 'KVSTORE_PERMISSION_DENIED'),
    );
    assert.equal(
      (await root.get('cilium/state/services/v1/cluster1/default/echo'))?.value,
      '{"x":1}',
    );
    await assert.rejects(
      remote.watchPrefix('cilium/cache/', () => {}),
      (e) => isKVStoreError(e, 'KVSTORE_PERMISSION_DENIED'),
    );
  });

  test('a certificate for an unknown user is refused', async () => {
    const stranger = await client('remote-cluster9');
    await assert.rejects(
      stranger.get('cilium/state/x'),
      (e) => isKVStoreError(e) && /PERMISSION_DENIED|AUTH_FAILED/.test(e.code),
    );
  });

  test('a client without a certificate, or with one from another CA, fails TLS; so does a client not trusting the server', async () => {
    const none = await client(undefined);
    await assert.rejects(
      none.get('cilium/state/x'),
      (e) =>
        isKVStoreError(e, 'KVSTORE_TLS') &&
        e.message.includes(srv.endpoints[0]!) &&
        /rejected this client/.test(e.message),
    );
    const otherCA = await createCA({ commonName: 'other-mesh' });
    const foreign = await client('root', otherCA);
    await assert.rejects(
      foreign.get('cilium/state/x'),
      (e) => isKVStoreError(e, 'KVSTORE_TLS') && /rejected this client/.test(e.message),
    );
    const kp = await issueClientCert(ca, 'root');
    const distrustful = new EtcdKVStore({
      endpoints: srv.endpoints,
      tls: { ca: otherCA.certPEM, cert: kp.certPEM, key: kp.keyPEM },
      dialTimeoutMs: 1500,
    });
    stores.push(distrustful);
    await assert.rejects(
      distrustful.get('cilium/state/x'),
      (e) =>
        isKVStoreError(e, 'KVSTORE_TLS') && /server's certificate is not trusted/.test(e.message),
    );
  });

  test('setup is idempotent, and removing the user locks it out', async () => {
    await setupEtcdAuth(root, {
      roles: [remoteReadOnlyRole()],
      users: [remoteClusterUser('remote-cluster2'), remoteClusterUser('remote-cluster3')],
    });
    const r3 = await client('remote-cluster3');
    assert.ok(await r3.get('cilium/.heartbeat'));
    await removeEtcdUser(root, 'remote-cluster3');
    await removeEtcdUser(root, 'remote-cluster3');
    await assert.rejects(
      r3.get('cilium/.heartbeat'),
      (e) => isKVStoreError(e) && /PERMISSION_DENIED|AUTH_FAILED/.test(e.code),
    );
  });
});

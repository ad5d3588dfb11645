import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createCA,
  issueClientCert,
  issueServerCert,
  type CertificateAuthority,
} from '../../clustermesh/certs.js';
import { KubeClient } from '../../k8s/client.js';
import { startApiServer, type RunningApiServer } from './apiserver.js';
import { GROUPS, authorize, parseTokenFile } from './auth.js';

describe('lab API server over https: 401 without a credential, 403 where the identity may not', () => {
  let ca: CertificateAuthority;
  let server: RunningApiServer;
  let dir: string;
  const clients: KubeClient[] = [];
  const as = (o: { token?: string; cert?: { certPEM: string; keyPEM: string } }) => {
    const c = new KubeClient({
      server: server.secureUrl!,
      tls: { ca: ca.certPEM, ...(o.cert ? { cert: o.cert.certPEM, key: o.cert.keyPEM } : {}) },
      ...(o.token ? { token: o.token } : {}),
      timeoutMs: 5000,
    });
    clients.push(c);
    return c;
  };
  const secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 's1', namespace: 'default' },
    data: {},
  };

  before(async () => {
    ca = await createCA({ commonName: 'lab CA' });
    const serving = await issueServerCert(ca, { commonName: 'kube-apiserver' });
    dir = mkdtempSync(join(tmpdir(), 'tendril-apiserver-auth-'));
    server = await startApiServer({
      cluster: 't',
      dataDir: dir,
      port: 0,
      controllers: false,
      secureTcp: { host: '127.0.0.1', port: 0 },
      tls: {
        cert: serving.certPEM,
        key: serving.keyPEM,
        clientCA: ca.certPEM,
        tokens: parseTokenFile(
          `admin-token,tendril-admin,admin,"${GROUPS.masters}"\nagent-token,system:serviceaccount:kube-system:tendril-agent:n1,agent-n1,"${GROUPS.agents}"\n`,
        ),
      },
    });
  });
  after(async () => {
    for (const c of clients) c.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 401 to a request without a valid credential, but serves /readyz', async () => {
    await assert.rejects(
      as({}).list('v1', 'Namespace'),
      (e: Error & { httpCode?: number }) => e.httpCode === 401,
    );
    await assert.rejects(as({ token: 'forged' }).list('v1', 'Namespace'), /401 Unauthorized/);
    assert.equal(await as({}).ready(), true);
  });

  it('an agent cannot write a Secret or a Deployment (403) but writes its CiliumEndpoints', async () => {
    const agent = as({ token: 'agent-token' });
    await assert.rejects(
      agent.create(secret),
      (e: Error & { httpCode?: number; code?: string }) => {
        assert.equal(e.httpCode, 403);
        assert.equal(e.code, 'K8S_FORBIDDEN');
        assert.match(
          e.message,
          /secrets is forbidden: User "system:serviceaccount:kube-system:tendril-agent:n1" cannot create resource "secrets"/,
        );
        return true;
      },
    );
    await assert.rejects(
      agent.create({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'd', namespace: 'default' },
        spec: {
          selector: { matchLabels: { a: 'b' } },
          template: {
            metadata: { labels: { a: 'b' } },
            spec: { containers: [{ name: 'c', image: 'x' }] },
          },
        },
      }),
      (e: Error & { httpCode?: number }) => e.httpCode === 403,
    );
    await assert.rejects(
      agent.list('v1', 'Secret'),
      (e: Error & { httpCode?: number }) => e.httpCode === 403,
    );
    const cep = await agent.create({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumEndpoint',
      metadata: { name: 'p1', namespace: 'default' },
    });
    assert.equal(cep.metadata.name, 'p1');
    assert.ok((await agent.list('v1', 'Node')).items);
  });

  it('the admin token and a client certificate (CN user, O group) are accepted', async () => {
    const created = await as({ token: 'admin-token' }).create(secret);
    assert.equal(created.metadata.name, 's1');
    const adminCert = await issueClientCert(ca, 'someone');
    // a certificate without the masters group authenticates but may not read Secrets
    await assert.rejects(
      as({ cert: adminCert }).get('v1', 'Secret', 's1'),
      (e: Error & { httpCode?: number }) => e.httpCode === 403,
    );
  });

  it('the table: agents read but do not write control-plane kinds; masters do anything', () => {
    const agent = { user: 'a', groups: [GROUPS.agents] };
    assert.ok(authorize(agent, { verb: 'watch', resource: 'pods', group: '' }));
    assert.ok(
      authorize(agent, { verb: 'update', resource: 'ciliumnodes/status', group: 'cilium.io' }),
    );
    assert.ok(!authorize(agent, { verb: 'patch', resource: 'deployments/scale', group: 'apps' }));
    assert.ok(!authorize(agent, { verb: 'delete', resource: 'secrets', group: '' }));
    assert.ok(
      !authorize(
        { user: 'd', groups: [GROUPS.dns] },
        { verb: 'create', resource: 'pods', group: '' },
      ),
    );
    assert.ok(
      authorize(
        { user: 'x', groups: [GROUPS.masters] },
        { verb: 'create', resource: 'secrets', group: '' },
      ),
    );
    assert.ok(
      !authorize({ user: 'nobody', groups: [] }, { verb: 'get', resource: 'pods', group: '' }),
    );
  });
});

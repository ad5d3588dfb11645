import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import {
  createCA,
  issueClientCert,
  issueServerCert,
  type CertificateAuthority,
  type KeyPairPEM,
} from '../clustermesh/certs.js';
import { KubeClient, TOKEN_FILE_CHECK_MS } from './client.js';
import { inClusterClientOptions, kubeconfigClientOptions } from './client-config.js';
import { Informer } from './informer.js';

/** A small https API server: accepts the tokens in `tokens` or a client certificate from `clientCA`. */
interface AuthServer {
  url: string;
  port: number;
  tokens: Set<string>;
  /** Who each request was (token, CN, or "anonymous"), and its status. */
  seen: Array<{ who: string; status: number }>;
  close(): Promise<void>;
}

async function startAuthServer(
  serving: KeyPairPEM,
  clientCA: CertificateAuthority,
): Promise<AuthServer> {
  const tokens = new Set<string>();
  const seen: AuthServer['seen'] = [];
  const server: Server = createServer(
    {
      key: serving.keyPEM,
      cert: serving.certPEM,
      ca: clientCA.certPEM,
      requestCert: true,
      rejectUnauthorized: false,
    },
    (req, res) => {
      const sock = req.socket as TLSSocket;
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      let who: string | undefined;
      if (bearer !== undefined) who = tokens.has(bearer) ? `token:${bearer}` : undefined;
      else if (sock.authorized) who = `cn:${sock.getPeerCertificate().subject.CN}`;
      if (!who) {
        seen.push({ who: bearer ? `bad:${bearer}` : 'anonymous', status: 401 });
        res.writeHead(401, { 'Content-Type': 'application/json' });
        res.end(
          JSON.stringify({
            kind: 'Status',
            apiVersion: 'v1',
            metadata: {},
            status: 'Failure',
            message: 'Unauthorized',
            reason: 'Unauthorized',
            code: 401,
          }),
        );
        return;
      }
      seen.push({ who, status: 200 });
      res.writeHead(200, { 'Content-Type': 'application/json' });
      if (req.url?.includes('watch=true')) {
        // a watch that ends at once (the informer resumes it)
        res.end();
        return;
      }
      res.end(
        JSON.stringify({
          kind: 'NamespaceList',
          apiVersion: 'v1',
          metadata: { resourceVersion: '7' },
          items: [
            {
              apiVersion: 'v1',
              kind: 'Namespace',
              metadata: { name: who.replace(/[^a-z0-9-]/g, '-') },
            },
          ],
        }),
      );
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    tokens,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('KubeClient against an https API server', () => {
  let ca: CertificateAuthority;
  let otherCA: CertificateAuthority;
  let clientCert: KeyPairPEM;
  let strangerCert: KeyPairPEM;
  let srv: AuthServer;
  let dir: string;
  const clients: KubeClient[] = [];
  const client = (o: ConstructorParameters<typeof KubeClient>[0]) => {
    const c = new KubeClient({ timeoutMs: 5000, ...o });
    clients.push(c);
    return c;
  };

  before(async () => {
    ca = await createCA({ commonName: 'test apiserver CA' });
    otherCA = await createCA({ commonName: 'some other CA' });
    clientCert = await issueClientCert(ca, 'tendril-agent-n1');
    strangerCert = await issueClientCert(otherCA, 'stranger');
    srv = await startAuthServer(await issueServerCert(ca, { commonName: 'kube-apiserver' }), ca);
    srv.tokens.add('good-token');
    dir = mkdtempSync(join(tmpdir(), 'tendril-client-auth-'));
  });
  after(async () => {
    for (const c of clients) c.close();
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('verifies the server with the CA and sends the bearer token', async () => {
    const c = client({ server: srv.url, tls: { ca: ca.certPEM }, token: 'good-token' });
    const list = await c.list('v1', 'Namespace');
    assert.equal(list.items[0]!.metadata.name, 'token-good-token');
  });

  it('refuses a server its CA does not verify, naming the CA', async () => {
    const c = client({
      server: srv.url,
      tls: { ca: otherCA.certPEM },
      token: 'good-token',
      caSource: 'certificate-authority-data of cluster "c1" in /x/kubeconfig',
    });
    await assert.rejects(
      c.list('v1', 'Namespace'),
      (e: Error & { code?: string; hint?: string }) => {
        assert.equal(e.code, 'K8S_TLS_VERIFY');
        assert.match(
          e.message,
          /certificate-authority-data of cluster "c1" in \/x\/kubeconfig does not verify/,
        );
        assert.match(e.message, new RegExp(srv.url.replace(/\./g, '\\.')));
        assert.match(e.hint ?? '', /certificate-authority/);
        return true;
      },
    );
    // insecure-skip-tls-verify gets through
    const insecure = client({
      server: srv.url,
      tls: { insecureSkipVerify: true },
      token: 'good-token',
    });
    assert.equal((await insecure.list('v1', 'Namespace')).items.length, 1);
  });

  it('authenticates with a client certificate (PEM text or files)', async () => {
    const c = client({
      server: srv.url,
      tls: { ca: ca.certPEM, cert: clientCert.certPEM, key: clientCert.keyPEM },
    });
    assert.equal((await c.list('v1', 'Namespace')).items[0]!.metadata.name, 'cn-tendril-agent-n1');
    writeFileSync(join(dir, 'c.crt'), clientCert.certPEM);
    writeFileSync(join(dir, 'c.key'), clientCert.keyPEM);
    writeFileSync(join(dir, 'ca.crt'), ca.certPEM);
    const f = client({
      server: srv.url,
      tls: {
        caFile: join(dir, 'ca.crt'),
        certFile: join(dir, 'c.crt'),
        keyFile: join(dir, 'c.key'),
      },
    });
    assert.equal((await f.list('v1', 'Namespace')).items[0]!.metadata.name, 'cn-tendril-agent-n1');
    // a certificate from a CA the server does not trust is no credential: 401 naming it
    const s = client({
      server: srv.url,
      tls: { ca: ca.certPEM, cert: strangerCert.certPEM, key: strangerCert.keyPEM },
      credential: 'user "stranger"',
    });
    await assert.rejects(s.list('v1', 'Namespace'), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'K8S_UNAUTHORIZED');
      assert.match(e.message, /refused user "stranger" \(401 Unauthorized/);
      return true;
    });
  });

  it('a wrong or expired token is a 401 naming the credential; no credential says so', async () => {
    const c = client({ server: srv.url, tls: { ca: ca.certPEM }, token: 'expired-token' });
    await assert.rejects(
      c.get('v1', 'Namespace', 'x'),
      (e: Error & { code?: string; httpCode?: number; hint?: string }) => {
        assert.equal(e.code, 'K8S_UNAUTHORIZED');
        assert.equal(e.httpCode, 401);
        assert.match(e.message, /refused the bearer token \(401 Unauthorized: Unauthorized\)/);
        assert.match(e.hint ?? '', /token is expired or wrong/);
        return true;
      },
    );
    const anon = client({ server: srv.url, tls: { ca: ca.certPEM } });
    await assert.rejects(anon.list('v1', 'Namespace'), /refused no credential \(anonymous\)/);
  });

  it('re-reads a rotated token file: on change, and at once after a 401', async () => {
    const tf = join(dir, 'token');
    writeFileSync(tf, 'rot-1\n');
    srv.tokens.add('rot-1');
    const c = client({ server: srv.url, tls: { ca: ca.certPEM }, tokenFile: tf });
    assert.equal((await c.list('v1', 'Namespace')).items[0]!.metadata.name, 'token-rot-1');
    // rotated by the kubelet: the old one still works for a while, the file changes
    srv.tokens.add('rot-2');
    writeFileSync(tf, 'rot-2-longer\n');
    srv.tokens.add('rot-2-longer');
    await new Promise((r) => setTimeout(r, TOKEN_FILE_CHECK_MS + 100));
    const before401 = srv.seen.filter((s) => s.status === 401).length;
    assert.equal((await c.list('v1', 'Namespace')).items[0]!.metadata.name, 'token-rot-2-longer');
    assert.equal(srv.seen.filter((s) => s.status === 401).length, before401, 'no 401 needed');
    // the old token is revoked and the file rewritten just before a request: one 401, then the new token
    srv.tokens.delete('rot-2-longer');
    srv.tokens.add('rot-3-even-longer');
    writeFileSync(tf, 'rot-3-even-longer\n');
    assert.equal(
      (await c.list('v1', 'Namespace')).items[0]!.metadata.name,
      'token-rot-3-even-longer',
    );
    // a revoked token with no new file: 401 naming the file
    srv.tokens.delete('rot-3-even-longer');
    await assert.rejects(c.list('v1', 'Namespace'), (e: Error & { hint?: string }) => {
      assert.match(e.message, new RegExp(`refused the token in ${tf.replace(/\//g, '\\/')}`));
      assert.match(e.hint ?? '', /re-read when it changes/);
      return true;
    });
  });

  it('names an unreachable server', async () => {
    const closed = await startAuthServer(await issueServerCert(ca), ca);
    await closed.close();
    const c = client({ server: closed.url, tls: { ca: ca.certPEM }, token: 'good-token' });
    await assert.rejects(c.list('v1', 'Namespace'), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'K8S_UNREACHABLE');
      assert.match(
        e.message,
        new RegExp(`cannot reach the API server at ${closed.url.replace(/\./g, '\\.')}`),
      );
      return true;
    });
  });

  it('loads every auth form kubectl reads from a kubeconfig, and refuses exec/auth-provider', async () => {
    const tf = join(dir, 'kc-token');
    writeFileSync(tf, 'good-token');
    const kc = join(dir, 'kubeconfig');
    writeFileSync(
      kc,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        'current-context': 'data',
        clusters: [
          {
            name: 'inline',
            cluster: { server: srv.url, 'certificate-authority-data': b64(ca.certPEM) },
          },
          { name: 'files', cluster: { server: srv.url, 'certificate-authority': 'ca.crt' } },
          {
            name: 'wrong',
            cluster: { server: srv.url, 'certificate-authority-data': b64(otherCA.certPEM) },
          },
        ],
        users: [
          {
            name: 'cert-data',
            user: {
              'client-certificate-data': b64(clientCert.certPEM),
              'client-key-data': b64(clientCert.keyPEM),
            },
          },
          {
            name: 'cert-files',
            user: { 'client-certificate': 'c.crt', 'client-key': join(dir, 'c.key') },
          },
          { name: 'token', user: { token: 'good-token' } },
          { name: 'bad-token', user: { token: 'nope' } },
          { name: 'token-file', user: { tokenFile: 'kc-token' } },
          {
            name: 'exec',
            user: { exec: { command: 'aws', apiVersion: 'client.authentication.k8s.io/v1' } },
          },
          { name: 'gcp', user: { 'auth-provider': { name: 'gcp' } } },
        ],
        contexts: [
          {
            name: 'data',
            context: { cluster: 'inline', user: 'cert-data', namespace: 'kube-system' },
          },
          { name: 'files', context: { cluster: 'files', user: 'cert-files' } },
          { name: 'token', context: { cluster: 'inline', user: 'token' } },
          { name: 'bad-token', context: { cluster: 'inline', user: 'bad-token' } },
          { name: 'token-file', context: { cluster: 'files', user: 'token-file' } },
          { name: 'wrong-ca', context: { cluster: 'wrong', user: 'token' } },
          { name: 'exec', context: { cluster: 'inline', user: 'exec' } },
          { name: 'gcp', context: { cluster: 'inline', user: 'gcp' } },
        ],
      }),
    );
    const first = async (context?: string) =>
      (await client(kubeconfigClientOptions({ path: kc, context })).list('v1', 'Namespace'))
        .items[0]!.metadata.name;
    assert.equal(kubeconfigClientOptions({ path: kc }).namespace, 'kube-system');
    assert.equal(await first(), 'cn-tendril-agent-n1');
    assert.equal(await first('files'), 'cn-tendril-agent-n1');
    assert.equal(await first('token'), 'token-good-token');
    assert.equal(await first('token-file'), 'token-good-token');
    await assert.rejects(
      first('bad-token'),
      /refused user "bad-token" of context "bad-token" in .*kubeconfig \(401/,
    );
    await assert.rejects(
      first('wrong-ca'),
      /certificate-authority-data of cluster "wrong" in .*kubeconfig does not verify/,
    );
    for (const ctx of ['exec', 'gcp'])
      assert.throws(
        () => kubeconfigClientOptions({ path: kc, context: ctx }),
        (e: Error & { code?: string }) =>
          e.code === 'K8S_AUTH_UNSUPPORTED' &&
          /which Tendril's client does not support/.test(e.message),
      );
    assert.throws(
      () => kubeconfigClientOptions({ path: kc, context: 'nope' }),
      /no context "nope".*|known contexts/,
    );
    assert.throws(() => kubeconfigClientOptions({ path: join(dir, 'missing') }), /does not exist/);
  });

  it('in-cluster config: KUBERNETES_SERVICE_HOST/PORT and the service account directory', async () => {
    const sa = join(dir, 'serviceaccount');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(sa);
    writeFileSync(join(sa, 'token'), 'good-token');
    writeFileSync(join(sa, 'ca.crt'), ca.certPEM);
    writeFileSync(join(sa, 'namespace'), 'kube-system');
    const o = inClusterClientOptions({
      dir: sa,
      env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(srv.port) },
    });
    assert.equal(o.namespace, 'kube-system');
    assert.equal(o.server, srv.url);
    assert.equal(
      (await client(o).list('v1', 'Namespace')).items[0]!.metadata.name,
      'token-good-token',
    );
    assert.throws(() => inClusterClientOptions({ dir: sa, env: {} }), /KUBERNETES_SERVICE_HOST/);
  });

  it('an informer retries a refused credential with backoff, says which, and recovers', async () => {
    const tf = join(dir, 'inf-token');
    writeFileSync(tf, 'not-yet-valid');
    const c = client({
      server: srv.url,
      tls: { ca: ca.certPEM },
      tokenFile: tf,
      credential: 'user "agent-n1"',
    });
    const problems: Array<string | undefined> = [];
    const inf = new Informer({
      client: c,
      apiVersion: 'v1',
      kind: 'Namespace',
      minBackoffMs: 50,
      maxBackoffMs: 200,
      onProblem: (p) => problems.push(p),
    });
    inf.start();
    try {
      const deadline = Date.now() + 5000;
      while (problems.length < 3 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      assert.ok(problems.length >= 3, 'kept retrying');
      assert.match(problems[0]!, /list Namespace: .*refused user "agent-n1" \(401 Unauthorized/);
      srv.tokens.add('now-valid');
      writeFileSync(tf, 'now-valid');
      await inf.synced;
      assert.equal(inf.list()[0]!.metadata!.name, 'token-now-valid');
      while (problems.at(-1) !== undefined && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      assert.equal(problems.at(-1), undefined, 'problem cleared');
    } finally {
      await inf.stop();
    }
  });
});

/**
 * privileged: a lab cluster's API server speaks https with authentication to
 * its nodes: lab create makes the CA (key 0600), the serving certificate and
 * a token and kubeconfig per daemon; the kubelets run with --kubeconfig and
 * their nodes become Ready over https; a request without a credential gets
 * 401, an agent's attempt to write a Secret 403; the admin may. After
 * `install`, the operator, DNS and every agent run with their own kubeconfig
 * (https, the lab CA, their identity's token) and `status --wait` passes.
 * No process relays the nodes' connections: the API server itself listens
 * at <control plane>:6443 in the control plane's namespace (and on
 * 127.0.0.1:<apiSecurePort> for the CLI), and makes that listener again when
 * the supervisor restarts it.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { request } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { after } from 'node:test';
import { parse } from 'yaml';
import { privilegedTest } from '../../test/helpers/privileged.js';
import { cliOk, teardownLab, useUniqueLab } from '../../test/e2e/lab-fixture.js';

const lab = useUniqueLab('https');
after(() => teardownLab(lab));

const { createCluster } = await import('./create.js');
const { daemonStatus, listDaemonSpecs, waitDaemonRunning } = await import('./daemons.js');
const { DAEMON_APISERVER } = await import('./create.js');
const { connectInNetns } = await import('./apiserver/portforward.js');
const { daemonKubeconfigPath, pkiPaths } = await import('./pki.js');
const { agentDaemonName } = await import('../install/install.js');
const { daemonKubeconfigPath: installKubeconfigPath } =
  await import('../install/lab-daemon-config.js');

/**
 * GET path over https to ip:port from inside the network namespace `netns`
 * (as a node's daemon connects): the status code, or the connect error.
 */
async function httpsFromNetns(
  netns: string,
  ip: string,
  port: number,
  ca: string,
  path: string,
  token: string,
): Promise<number> {
  const raw = await connectInNetns(netns, ip, port);
  return new Promise((resolve, reject) => {
    const tls = tlsConnect({ socket: raw, ca, host: ip }, () => {
      tls.write(
        `GET ${path} HTTP/1.1\r\nHost: ${ip}:${port}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
      );
    });
    let text = '';
    tls.setEncoding('utf8').on('data', (d: string) => (text += d));
    tls.on('end', () => resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0)));
    tls.on('error', reject);
  });
}

/** One request over the cluster's https Unix socket. */
function httpsOverSocket(
  socketPath: string,
  ca: string,
  method: string,
  path: string,
  token?: string,
  body?: unknown,
): Promise<{ status: number; json: { message?: string; reason?: string } }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        socketPath,
        host: '127.0.0.1', // verified against the certificate's IP SAN
        path,
        method,
        ca,
        headers: {
          ...(token ? { Authorization: `Bearer ${token}` } : {}),
          ...(data ? { 'Content-Type': 'application/json' } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : {} }),
        );
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

privilegedTest(
  'privileged: lab daemons reach the API server over https with their own credential; 401 and 403',
  async () => {
    const c = await createCluster({ name: 'h1', nodes: 1, wait: true, timeoutMs: 120_000 });
    // the PKI under the cluster's state dir, keys 0600
    const p = pkiPaths('h1');
    for (const f of Object.values(p)) assert.ok(existsSync(f), f);
    assert.equal(statSync(p.caKey).mode & 0o777, 0o600);
    assert.equal(statSync(p.serverKey).mode & 0o777, 0o600);
    assert.ok(c.apiSecureSocket && existsSync(c.apiSecureSocket));
    // the kubelets run with their kubeconfig (https, the CA, their token) and their nodes are Ready
    const kubelets = listDaemonSpecs('h1').filter((d) => d.name.startsWith('kubelet-'));
    assert.equal(kubelets.length, 2);
    for (const k of kubelets) {
      const i = k.command.indexOf('--kubeconfig');
      assert.ok(i > 0, `${k.name} runs with --kubeconfig`);
      const kc = parse(readFileSync(k.command[i + 1]!, 'utf8'));
      assert.match(kc.clusters[0].cluster.server, /^https:\/\/172\.30\.\d+\.\d+:6443$/);
      assert.ok(kc.clusters[0].cluster['certificate-authority-data']);
      assert.ok(kc.users[0].user.token);
    }
    const ca = readFileSync(p.caCert, 'utf8');
    const tokenOf = (id: string) =>
      parse(readFileSync(daemonKubeconfigPath('h1', id), 'utf8')).users[0].user.token as string;
    const admin = tokenOf('admin');
    const nodes = await httpsOverSocket(c.apiSecureSocket!, ca, 'GET', '/api/v1/nodes', admin);
    assert.equal(nodes.status, 200);
    // no credential, or a wrong one: 401
    assert.equal(
      (await httpsOverSocket(c.apiSecureSocket!, ca, 'GET', '/api/v1/nodes')).status,
      401,
    );
    assert.equal(
      (await httpsOverSocket(c.apiSecureSocket!, ca, 'GET', '/api/v1/nodes', 'forged')).status,
      401,
    );
    // an agent may not write a Secret: 403 naming it
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's1' }, data: {} };
    const agentNode = c.nodes[1]!.name;
    const denied = await httpsOverSocket(
      c.apiSecureSocket!,
      ca,
      'POST',
      '/api/v1/namespaces/default/secrets',
      tokenOf(`agent-${agentNode}`),
      secret,
    );
    assert.equal(denied.status, 403);
    assert.equal(denied.json.reason, 'Forbidden');
    assert.match(denied.json.message ?? '', /tendril-agent:.* cannot create resource "secrets"/);
    // the admin may
    const created = await httpsOverSocket(
      c.apiSecureSocket!,
      ca,
      'POST',
      '/api/v1/namespaces/default/secrets',
      admin,
      secret,
    );
    assert.equal(created.status, 201);

    // the nodes' way in is the API server's own listener in the control plane's namespace:
    // no relay daemon, and a worker reaches it over the underlay
    assert.deepEqual(
      listDaemonSpecs('h1')
        .map((d) => d.name)
        .sort(),
      ['apiserver', ...c.nodes.map((n) => `kubelet-${n.name}`)].sort(),
    );
    const cp = c.nodes[0]!;
    const worker = c.nodes[1]!;
    assert.equal(await httpsFromNetns(worker.netns, cp.ip, 6443, ca, '/api/v1/nodes', admin), 200);
    // a restarted API server makes its listener in the namespace again
    const before = daemonStatus('h1').find((d) => d.name === DAEMON_APISERVER)!;
    assert.ok(before.pid);
    process.kill(before.pid, 'SIGKILL');
    let after: { pid: number | undefined } = before;
    const deadline = Date.now() + 60_000;
    while (after.pid === before.pid || after.pid === undefined) {
      assert.ok(Date.now() < deadline, 'the supervisor restarts the API server');
      await new Promise((r) => setTimeout(r, 100));
      after = await waitDaemonRunning('h1', DAEMON_APISERVER, 60_000);
    }
    let status = 0;
    while (status !== 200) {
      assert.ok(Date.now() < deadline, `the restarted API server answers at ${cp.ip}:6443`);
      status = await httpsFromNetns(worker.netns, cp.ip, 6443, ca, '/version', admin).catch(
        () => 0,
      );
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }

    // Tendril's daemons, as `install` starts them: each with its own kubeconfig (https, the lab
    // CA, the token of its identity), and the agents become ready over it
    await cliOk(['install', '--context', 'lab-h1', '--cluster-name', 'h1', '--cluster-id', '7']);
    const specs = listDaemonSpecs('h1');
    const expected = new Map([
      ['tendril-operator', 'operator'],
      ['tendril-dns', 'dns'],
      ...c.nodes.map((n): [string, string] => [agentDaemonName(n.name), `agent-${n.name}`]),
    ]);
    const seen = new Set<string>();
    for (const [daemon, id] of expected) {
      const spec = specs.find((d) => d.name === daemon);
      assert.ok(spec, `${daemon} is installed`);
      const i = spec.command.indexOf('--kubeconfig');
      assert.ok(i > 0, `${daemon} runs with --kubeconfig`);
      assert.equal(spec.command[i + 1], installKubeconfigPath('h1', id));
      const kc = parse(readFileSync(spec.command[i + 1]!, 'utf8'));
      assert.match(kc.clusters[0].cluster.server, /^https:\/\/172\.30\.\d+\.\d+:6443$/);
      assert.equal(
        Buffer.from(kc.clusters[0].cluster['certificate-authority-data'], 'base64').toString(),
        ca,
      );
      assert.equal(kc.users[0].user.token, tokenOf(id), `${daemon} has ${id}'s own token`);
      seen.add(kc.users[0].user.token as string);
    }
    assert.equal(seen.size, expected.size, 'no two daemons share a credential');
    assert.ok(existsSync(installKubeconfigPath('h1', 'clustermesh-apiserver')));
    await cliOk(['status', '--context', 'lab-h1', '--wait', '--wait-duration', '120s'], {
      timeoutMs: 180_000,
    });
  },
  { timeout: 300_000 },
);

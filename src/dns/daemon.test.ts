/**
 * The DNS daemon against the lab API server (real HTTP list/watch through
 * Tendril's informer on KubeClient), and src/dns/main.ts as a process.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestApiServer, type TestApiServer } from '../lab/apiserver/testing.js';
import { KubeClient } from '../k8s/client.js';
import { freePort } from '../kvstore/etcd-server.js';
import { checkClusterDNS, queryDNS, type DNSResponse } from './client.js';
import { startDNSDaemon, type DNSDaemon } from './daemon.js';
import { parseDNSArgs } from './main.js';

const dataOf = (a: unknown): unknown => (a as { data?: unknown }).data;

async function eventually(fn: () => Promise<boolean>, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`not true within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('DNS daemon on the lab API server', () => {
  let api: TestApiServer;
  let dns: DNSDaemon;
  const ask = (name: string, type: 'A' | 'SRV' = 'A'): Promise<DNSResponse> =>
    queryDNS({ server: '127.0.0.1', port: dns.server.port, name, type });
  before(async () => {
    api = await startTestApiServer({ controllers: true });
    dns = await startDNSDaemon({
      host: '127.0.0.1',
      port: 0,
      client: new KubeClient({ server: api.server.url }),
    });
    await dns.synced;
  });
  after(async () => {
    await dns?.stop();
    await api?.cleanup();
  });

  test('serves the built-in kubernetes Service, and Services as they come and go', async () => {
    const k = await ask('kubernetes.default.svc.cluster.local');
    assert.equal(k.rcode, 'NOERROR');
    assert.equal(k.answers?.length, 1);
    const created = await api.client.create({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'echo-service-c1', namespace: 'default' },
      spec: {
        selector: { app: 'echo-service-c1' },
        ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 }],
      },
    });
    const ip = (created.spec as unknown as { clusterIP: string }).clusterIP;
    assert.match(ip, /^10\.96\./);
    await eventually(
      async () =>
        dataOf((await ask('echo-service-c1.default.svc.cluster.local')).answers?.[0]) === ip,
    );
    const srv = await ask('_http._tcp.echo-service-c1.default.svc.cluster.local', 'SRV');
    assert.equal((dataOf(srv.answers?.[0]) as { port: number }).port, 80);
    await api.client.delete('v1', 'Service', 'echo-service-c1', { namespace: 'default' });
    await eventually(
      async () => (await ask('echo-service-c1.default.svc.cluster.local')).rcode === 'NXDOMAIN',
    );
  });

  test('checkClusterDNS: OK against the daemon, a clear cause elsewhere', async () => {
    const ok = await checkClusterDNS({ server: '127.0.0.1', port: dns.server.port });
    assert.equal(ok.ok, true);
    const refused = await checkClusterDNS({
      server: '127.0.0.1',
      port: dns.server.port,
      domain: 'other.local',
    });
    assert.ok(
      !refused.ok && /REFUSED/.test(refused.cause) && /not authoritative/.test(refused.hint),
    );
    const down = await checkClusterDNS({
      server: '127.0.0.1',
      port: await freePort(),
      timeoutMs: 300,
    });
    assert.ok(!down.ok && /no answer within 300 ms/.test(down.cause));
  });

  test('clusterset.local from ServiceImports', async () => {
    await api.client.create({
      apiVersion: 'multicluster.x-k8s.io/v1alpha1',
      kind: 'ServiceImport',
      metadata: { name: 'echo', namespace: 'default' },
      spec: {
        type: 'ClusterSetIP',
        ips: ['10.96.77.77'],
        ports: [{ name: 'http', protocol: 'TCP', port: 80 }],
      },
    });
    await eventually(
      async () =>
        dataOf((await ask('echo.default.svc.clusterset.local')).answers?.[0]) === '10.96.77.77',
    );
    assert.equal((await ask('echo.default.svc.cluster.local')).rcode, 'NXDOMAIN');
    assert.deepEqual(dns.problems(), []);
  });
});

test('DNS daemon: keeps answering from the last known state while the API server is down', async () => {
  const api = await startTestApiServer({ controllers: true });
  let dns: DNSDaemon | undefined;
  try {
    dns = await startDNSDaemon({
      host: '127.0.0.1',
      port: 0,
      client: new KubeClient({ server: api.server.url }),
    });
    await dns.synced;
    assert.deepEqual(dns.problems(), []);
    await api.stop();
    const d = dns;
    await eventually(async () => d.problems().length > 0);
    assert.ok(
      d.problems().some((p) => /Service/.test(p)),
      `problems name the kind: ${d.problems().join('; ')}`,
    );
    const k = await queryDNS({
      server: '127.0.0.1',
      port: d.server.port,
      name: 'kubernetes.default.svc.cluster.local',
    });
    assert.equal(k.answers?.length, 1);
  } finally {
    await dns?.stop();
    await api.cleanup();
  }
});

test('dns main: bad command lines are refused with the reason', async () => {
  const cases: [string[], RegExp][] = [
    [['--listen', '127.0.0.1:53'], /say where the API server is/],
    [
      ['--listen', '127.0.0.1:53', '--server', 'http://x', '--kubeconfig', '/k'],
      /--server and --kubeconfig exclude each other/,
    ],
    [['--listen', 'nope', '--server', 'http://127.0.0.1:1'], /--listen nope is not IP:PORT/],
    [['--server', 'http://127.0.0.1:1'], /--listen IP:PORT is required/],
    [['--listen', '127.0.0.1:53', '--server', 'ftp://x'], /not an http\(s\):\/\/ URL or unix:/],
    [
      ['--listen', '127.0.0.1:53', '--kubeconfig', '/nonexistent/kubeconfig'],
      /cannot use kubeconfig/,
    ],
    [['--listen', '127.0.0.1:53', '--server', 'http://x', '--bogus'], /Unknown option '--bogus'/],
  ];
  for (const [argv, re] of cases)
    await assert.rejects(
      parseDNSArgs(argv),
      (e: Error & { code?: string }) => e.code === 'DNS_USAGE' && re.test(e.message),
      argv.join(' '),
    );
  // https is accepted (KubeClient speaks TLS): from --server and from a kubeconfig
  assert.equal(
    (await parseDNSArgs(['--listen', '127.0.0.1:53', '--server', 'https://10.0.0.1:6443']))
      .apiServer,
    'https://10.0.0.1:6443',
  );
  const dir = mkdtempSync(join(tmpdir(), 'tendril-dns-kubeconfig-'));
  try {
    const kubeconfig = (server: string) => {
      const file = join(dir, 'config');
      writeFileSync(
        file,
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [
            { name: 'tls', cluster: { server: 'https://10.0.0.1:6443' } },
            { name: 'plain', cluster: { server } },
          ],
          users: [{ name: 'u', user: { token: 'sekret' } }],
          contexts: [
            { name: 'tls', context: { cluster: 'tls', user: 'u' } },
            { name: 'plain', context: { cluster: 'plain', user: 'u' } },
          ],
          'current-context': 'tls',
        }),
      );
      return file;
    };
    const file = kubeconfig('http://127.0.0.1:8001');
    const tls = await parseDNSArgs(['--listen', '127.0.0.1:53', '--kubeconfig', file]);
    assert.equal(tls.apiServer, 'https://10.0.0.1:6443');
    assert.equal(tls.auth?.token, 'sekret');
    await assert.rejects(
      parseDNSArgs(['--listen', '127.0.0.1:53', '--kubeconfig', file, '--context', 'nope']),
      /no context "nope"/,
    );
    const plain = await parseDNSArgs([
      '--listen',
      '127.0.0.1:53',
      '--kubeconfig',
      file,
      '--context',
      'plain',
    ]);
    assert.equal(plain.apiServer, 'http://127.0.0.1:8001');
    assert.equal(plain.auth?.token, 'sekret');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const ok = await parseDNSArgs([
    '--listen',
    '127.0.0.1:5353',
    '--server',
    'http://127.0.0.1:6443',
    '--ttl',
    '10',
  ]);
  assert.deepEqual(
    [ok.host, ok.port, ok.ttl, ok.clusterDomain, ok.apiServer],
    ['127.0.0.1', 5353, 10, 'cluster.local', 'http://127.0.0.1:6443'],
  );
});

test('dns main: runs as a process, answers, and exits on SIGTERM', async () => {
  const api = await startTestApiServer({ controllers: true });
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/dns/main.ts',
      '--listen',
      `127.0.0.1:${port}`,
      '--server',
      api.server.url,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr.on('data', (b: Buffer) => (log += b.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    await eventually(async () => {
      try {
        const r = await queryDNS({
          server: '127.0.0.1',
          port,
          name: 'kubernetes.default.svc.cluster.local',
          timeoutMs: 300,
        });
        return r.rcode === 'NOERROR' && (r.answers?.length ?? 0) === 1;
      } catch {
        return false;
      }
    }, 20_000);
    const tcp = await queryDNS({
      server: '127.0.0.1',
      port,
      name: 'kubernetes.default.svc.cluster.local',
      tcp: true,
    });
    assert.equal(tcp.answers?.length, 1);
  } finally {
    child.kill('SIGTERM');
    const code = await exited;
    await api.cleanup();
    assert.equal(code, 0, log);
  }
  assert.match(log, /cluster DNS started/);
});

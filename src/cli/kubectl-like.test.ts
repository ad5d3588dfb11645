// tendril apply/get/describe/delete/config against a lab API server on 127.0.0.1.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setContext } from '../k8s/kubeconfig.js';
import { startTestApiServer, type TestApiServer } from '../lab/apiserver/testing.js';
import { main } from './main.js';

async function tendril(
  ...args: string[]
): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const ow = process.stdout.write.bind(process.stdout);
  const ew = process.stderr.write.bind(process.stderr);
  // The CLI writes strings; the test runner's own reports (binary) pass through.
  process.stdout.write = ((s: string | Uint8Array, ...rest: never[]) =>
    typeof s === 'string' ? ((stdout += s), true) : ow(s, ...rest)) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array, ...rest: never[]) =>
    typeof s === 'string' ? ((stderr += s), true) : ew(s, ...rest)) as typeof process.stderr.write;
  try {
    process.exitCode = undefined;
    const status = await main(['node', 'tendril', ...args]);
    return { status, stdout, stderr };
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
    process.exitCode = undefined;
  }
}

describe('tendril apply/get/describe/delete/config', () => {
  let t: TestApiServer;
  let home: string;
  const saved = { home: process.env.TENDRIL_HOME, config: process.env.TENDRIL_CONFIG };
  const seed = readFileSync(
    new URL('../../examples/seed-walkthrough/echo-c1.yaml', import.meta.url),
    'utf8',
  );
  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'tendril-cli-test-'));
    process.env.TENDRIL_HOME = home;
    delete process.env.TENDRIL_CONFIG;
    t = await startTestApiServer();
    setContext({ name: 'lab-test', cluster: 'test', server: t.server.url });
    setContext({
      name: 'lab-other',
      cluster: 'other',
      server: 'http://127.0.0.1:1',
      makeCurrent: false,
    });
  });
  after(async () => {
    await t.cleanup();
    rmSync(home, { recursive: true, force: true });
    if (saved.home === undefined) delete process.env.TENDRIL_HOME;
    else process.env.TENDRIL_HOME = saved.home;
    if (saved.config !== undefined) process.env.TENDRIL_CONFIG = saved.config;
  });

  it('config get-contexts / use-context / current-context, and a clear error for an unknown context', async () => {
    const r = await tendril('config', 'get-contexts');
    assert.equal(
      r.stdout,
      'CURRENT   NAME        CLUSTER   AUTHINFO    NAMESPACE\n*         lab-test    test      lab-test\n          lab-other   other     lab-other\n',
    );
    assert.equal((await tendril('config', 'current-context')).stdout, 'lab-test\n');
    const bad = await tendril('--context', 'kind-cluster1', 'get', 'pods');
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /context "kind-cluster1" does not exist/);
    assert.match(bad.stderr, /known contexts: lab-test, lab-other/);
  });

  it("applies the seed's manifest (created, then unchanged, then configured) and prints kubectl tables", async () => {
    const file = join(home, 'echo.yaml');
    writeFileSync(file, seed);
    const r1 = await tendril('apply', '-f', file);
    assert.equal(r1.status, 0, r1.stderr);
    assert.equal(
      r1.stdout,
      'deployment.apps/echo-service-c1 created\nservice/echo-service-c1 created\nendpointslice.discovery.k8s.io/echo-service-c1-mesh created\n',
    );
    const r2 = await tendril('--context', 'lab-test', 'apply', '-f', file);
    assert.equal(
      r2.stdout,
      'deployment.apps/echo-service-c1 unchanged\nservice/echo-service-c1 unchanged\nendpointslice.discovery.k8s.io/echo-service-c1-mesh unchanged\n',
    );
    writeFileSync(file, seed.replace('replicas: 1', 'replicas: 2'));
    const r3 = await tendril('apply', '-f', file);
    assert.match(
      r3.stdout,
      /deployment.apps\/echo-service-c1 configured\nservice\/echo-service-c1 unchanged/,
    );
    await t.server.settle();
    const g = await tendril('get', 'deploy,svc,endpointslices');
    assert.equal(g.status, 0, g.stderr);
    const sections = g.stdout.split('\n\n');
    assert.equal(sections.length, 3);
    assert.match(
      sections[0]!,
      /^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\ndeployment.apps\/echo-service-c1\s+0\/2\s+2\s+0\s+\d+s\n?$/,
    );
    assert.match(
      sections[1]!,
      /^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE\nservice\/echo-service-c1\s+ClusterIP\s+10\.96\.\d+\.\d+\s+<none>\s+80\/TCP/,
    );
    assert.match(sections[2]!, /^NAME\s+ADDRESSTYPE\s+PORTS\s+ENDPOINTS\s+AGE\n/);
    assert.match(
      sections[2]!,
      /endpointslice.discovery.k8s.io\/echo-service-c1-mesh\s+IPv4\s+80\s+<unset>/,
    );
    assert.match(
      sections[2]!,
      /endpointslice.discovery.k8s.io\/echo-service-c1-[a-z0-9]{5}\s+IPv4\s+8080\s+<unset>/,
    );
    const all = await tendril('get', 'all');
    assert.match(all.stdout, /\npod\/echo-service-c1-/);
    assert.match(all.stdout, /\nservice\/kubernetes /);
    assert.match(all.stdout, /\ndeployment.apps\/echo-service-c1 /);
    const dirApply = await tendril('apply', '-f', home);
    assert.match(dirApply.stdout, /^deployment.apps\/echo-service-c1 unchanged\n/);
    const d = await tendril('describe', 'svc', 'echo-service-c1');
    assert.match(d.stdout, /^Name:\s+echo-service-c1\nNamespace:\s+default\n/);
    assert.match(d.stdout, /TargetPort:\s+8080\/TCP/);
    const pods = await tendril('get', 'pods', '-l', 'app=echo-service-c1', '-o', 'name');
    assert.equal(pods.stdout.trim().split('\n').length, 2);
    const dp = await tendril('describe', 'pod', pods.stdout.trim().split('\n')[0]!.slice(4));
    assert.match(dp.stdout, /Controlled By:\s+Deployment\/echo-service-c1/);
    assert.match(dp.stdout, /Status:\s+Pending/);
  });

  it('applies nothing from a file with one bad document', async () => {
    const before = (await t.client.list('v1', 'Service')).items.length;
    const file = join(home, 'bad.yaml');
    writeFileSync(
      file,
      `apiVersion: v1\nkind: Service\nmetadata:\n  name: fine\nspec:\n  ports:\n  - port: 80\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: broken\nspec:\n  ports:\n  - port: 0\n`,
    );
    const r = await tendril('apply', '-f', file);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /error validating ".*bad.yaml": nothing was applied/);
    assert.match(
      r.stderr,
      /Service "broken" is invalid: spec.ports\[0\].port: Invalid value: 0: must be between 1 and 65535, inclusive/,
    );
    assert.equal((await t.client.list('v1', 'Service')).items.length, before);
    // A server-side refusal (a taken ClusterIP) also stops the whole apply.
    writeFileSync(
      file,
      `apiVersion: v1\nkind: Service\nmetadata:\n  name: fine\nspec:\n  ports:\n  - port: 80\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: taken\nspec:\n  clusterIP: 10.96.0.1\n  ports:\n  - port: 80\n`,
    );
    const r2 = await tendril('apply', '-f', file);
    assert.equal(r2.status, 1);
    assert.match(r2.stderr, /provided IP is already allocated/);
    assert.equal((await t.client.list('v1', 'Service')).items.length, before);
  });

  it('applies a namespace and objects inside it from one file', async () => {
    const file = join(home, 'ns.yaml');
    writeFileSync(
      file,
      `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: tendril-cli-ns\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: inside\n  namespace: tendril-cli-ns\nspec:\n  ports:\n  - port: 53\n    protocol: UDP\n`,
    );
    const r = await tendril('apply', '-f', file);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'namespace/tendril-cli-ns created\nservice/inside created\n');
    const g = await tendril('get', 'svc', '-n', 'tendril-cli-ns');
    assert.match(g.stdout, /inside\s+ClusterIP\s+10\.96\.\d+\.\d+\s+<none>\s+53\/UDP/);
    const del = await tendril('config', 'delete-context', 'lab-other');
    assert.match(del.stdout, /deleted context lab-other/);
    assert.equal((await tendril('config', 'delete-context', 'lab-other')).status, 1);
  });

  it('deletes by name and from a file', async () => {
    const r = await tendril('delete', 'svc', 'echo-service-c1');
    assert.equal(r.stdout, 'service "echo-service-c1" deleted\n');
    const missing = await tendril('delete', 'svc', 'echo-service-c1');
    assert.equal(missing.status, 1);
    assert.match(
      missing.stderr,
      /Error from server \(NotFound\): services "echo-service-c1" not found/,
    );
    const file = join(home, 'echo.yaml');
    const r2 = await tendril('delete', '-f', file, '--ignore-not-found', '--wait', 'false');
    assert.equal(r2.status, 0, r2.stderr);
    assert.match(
      r2.stdout,
      /deployment.apps "echo-service-c1" deleted\nendpointslice.discovery.k8s.io "echo-service-c1-mesh" deleted/,
    );
  });
});

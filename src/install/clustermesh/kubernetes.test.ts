import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeClient } from '../../k8s/client.js';
import type { KubeObject } from '../../k8s/objects.js';
import {
  fakeNode,
  startTestApiServer,
  type TestApiServer,
} from '../../../test/helpers/apiserver.js';
import { K8S_NAMESPACE, KubernetesTarget } from '../target.js';
import { NAMES, SECRET_NAMES } from '../kubernetes/names.js';
import { meshEtcdClientConfig } from '../kubernetes/workloads.js';
import { certificateInfo, verifyCertificate } from '../../clustermesh/certs.js';
import { configDirSource } from '../../clustermesh/apiserver/sources.js';
import { readClusterMeshConfig } from '../../clustermesh/clustermesh-config.js';
import { ConnectRefusedError } from './connect.js';
import { main } from '../../cli/main.js';
import { setContext } from '../../k8s/kubeconfig.js';
import {
  connectKubernetesClusters,
  disconnectKubernetesClusters,
  enableKubernetesMesh,
  remoteSecretKeys,
} from './kubernetes.js';

/**
 * A lab API server (real: Secrets, Services, Nodes, resourceVersions, 409s)
 * behind a front that serves what it does not: ConfigMaps, in memory, with
 * resourceVersion checks as kube-apiserver's (409 on a stale PUT or an
 * existing POST).
 */
async function frontedApi(): Promise<{
  api: TestApiServer;
  url: string;
  close: () => Promise<void>;
}> {
  const api = await startTestApiServer();
  const backend = new URL(api.server.url);
  const configMaps = new Map<string, { metadata: Record<string, unknown>; data?: object }>();
  let rv = 1;
  const status = (code: number, reason: string) =>
    JSON.stringify({
      kind: 'Status',
      apiVersion: 'v1',
      status: 'Failure',
      code,
      reason,
      message: reason,
    });
  const srv = createServer((req, res) => {
    const url = req.url ?? '';
    const cm = /^\/api\/v1\/namespaces\/kube-system\/configmaps(?:\/([^/?]+))?$/.exec(url);
    if (!cm) {
      const up = httpRequest(
        {
          host: backend.hostname,
          port: backend.port,
          path: url,
          method: req.method,
          headers: req.headers,
        },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', () => res.writeHead(502).end());
      req.pipe(up);
      return;
    }
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const json = (code: number, o: unknown) =>
        res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(o));
      const fail = (code: number, reason: string) =>
        res.writeHead(code, { 'content-type': 'application/json' }).end(status(code, reason));
      if (req.method === 'GET' && cm[1]) {
        const o = configMaps.get(cm[1]);
        if (o) json(200, o);
        else fail(404, 'NotFound');
      } else if (req.method === 'POST' && !cm[1]) {
        const o = JSON.parse(body);
        if (configMaps.has(o.metadata.name)) return fail(409, 'AlreadyExists');
        o.metadata.resourceVersion = String(rv++);
        configMaps.set(o.metadata.name, o);
        json(201, o);
      } else if (req.method === 'PUT' && cm[1]) {
        const o = JSON.parse(body);
        if (o.metadata.resourceVersion !== configMaps.get(cm[1])?.metadata.resourceVersion)
          return fail(409, 'Conflict');
        o.metadata.resourceVersion = String(rv++);
        configMaps.set(cm[1], o);
        json(200, o);
      } else fail(405, 'MethodNotAllowed');
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    api,
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    close: async () => {
      srv.closeAllConnections();
      await new Promise((r) => srv.close(r));
      await api.cleanup();
    },
  };
}

async function secretFiles(t: KubernetesTarget, name: string): Promise<Record<string, string>> {
  const s = (await t.read('v1', 'Secret', name, K8S_NAMESPACE)) as
    (KubeObject & { data?: Record<string, string>; type?: string }) | undefined;
  assert.ok(s, `Secret ${name} exists`);
  return Object.fromEntries(
    Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
  );
}

async function usersYaml(t: KubernetesTarget): Promise<string> {
  const cm = (await t.read('v1', 'ConfigMap', NAMES.meshRemoteUsers, K8S_NAMESPACE)) as
    (KubeObject & { data?: Record<string, string> }) | undefined;
  return cm?.data?.['users.yaml'] ?? '';
}

/** Writes a Secret's / ConfigMap's keys as files, as a kubelet mounts the volume. */
function materialise(dir: string, files: Record<string, string>): string {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const [k, v] of Object.entries(files)) writeFileSync(join(dir, k), v);
  return dir;
}

/** configDirSource over one cluster's objects, materialised under `dir`. */
async function sourceOf(t: KubernetesTarget, dir: string, server: string) {
  const cfg = await t.readDaemonConfig();
  const remotesFiles = await t
    .read('v1', 'Secret', SECRET_NAMES.kvstoremesh, K8S_NAMESPACE)
    .then((s) => (s ? secretFiles(t, SECRET_NAMES.kvstoremesh) : {}));
  const kubeconfig = join(dir, 'kubeconfig');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    kubeconfig,
    `apiVersion: v1\nkind: Config\ncurrent-context: k\nclusters: [{name: c, cluster: {server: "${server}"}}]\nusers: [{name: u, user: {}}]\ncontexts: [{name: k, context: {cluster: c, user: u}}]\n`,
  );
  return configDirSource({
    configDir: materialise(join(dir, 'config'), cfg),
    kubeconfig,
    etcdConfig: join(
      materialise(join(dir, 'etcd'), { 'etcd-config.yaml': meshEtcdClientConfig() }),
      'etcd-config.yaml',
    ),
    clustermeshConfig: materialise(join(dir, 'clustermesh'), remotesFiles),
    usersConfig: join(
      materialise(join(dir, 'users'), { 'users.yaml': await usersYaml(t) }),
      'users.yaml',
    ),
    statusSocket: join(dir, 'status.sock'),
  });
}

test('clustermesh enable/connect/disconnect on two KubernetesTargets: Secrets and ConfigMaps in Cilium shapes that configDirSource reads', async () => {
  const apis: Awaited<ReturnType<typeof frontedApi>>[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'tendril-k8smesh-'));
  const targets: KubernetesTarget[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const api = await frontedApi();
      apis.push(api);
      const t = new KubernetesTarget(new KubeClient({ server: api.url, timeoutMs: 10_000 }));
      targets.push(t);
      await t
        .apply([
          { apiVersion: 'v1', kind: 'Namespace', metadata: { name: K8S_NAMESPACE } } as KubeObject,
        ])
        .catch(() => undefined); // may exist already
      // what `install` leaves: the cluster's name and ID in tendril-config
      await t.writeDaemonConfig('operator', {
        'cluster-name': `k${i + 1}`,
        'cluster-id': String(i + 1),
      });
    }
    const [a, b] = targets as [KubernetesTarget, KubernetesTarget];

    // not enabled yet: connect refuses and says so
    await assert.rejects(connectKubernetesClusters(a, [b]), /not enabled/);

    // enable a with an explicit endpoint, b from its NodePort Service and Node addresses
    const ea = await enableKubernetesMesh(a, { accessEndpoints: ['https://10.1.0.5:32379'] });
    assert.equal(ea.caCreated, true);
    await b.apply([
      fakeNode('k2-node1', { ip: '10.2.0.7' }),
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: NAMES.meshApiserver, namespace: K8S_NAMESPACE },
        spec: {
          type: 'NodePort',
          selector: { 'k8s-app': NAMES.meshApiserver },
          ports: [{ name: 'etcd', port: 2379, targetPort: 2379, nodePort: 32379, protocol: 'TCP' }],
        },
      } as KubeObject,
    ]);
    const eb = await enableKubernetesMesh(b);
    assert.deepEqual(eb.accessEndpoints, ['https://10.2.0.7:32379']);

    for (const [t, e, ip] of [
      [a, ea, '10.1.0.5'],
      [b, eb, '10.2.0.7'],
    ] as const) {
      const ca = await secretFiles(t, SECRET_NAMES.ca);
      assert.deepEqual(Object.keys(ca).sort(), ['ca.crt', 'ca.key']);
      assert.equal(certificateInfo(ca['ca.crt']!).fingerprint, e.caFingerprint);
      for (const name of [SECRET_NAMES.server, SECRET_NAMES.admin]) {
        const s = (await t.read('v1', 'Secret', name, K8S_NAMESPACE)) as KubeObject & {
          type?: string;
        };
        assert.equal(s.type, 'kubernetes.io/tls');
        const f = await secretFiles(t, name);
        assert.deepEqual(Object.keys(f).sort(), ['ca.crt', 'tls.crt', 'tls.key']);
        assert.equal(f['ca.crt'], ca['ca.crt']);
        verifyCertificate(f['tls.crt']!, ca['ca.crt']!);
        assert.ok(f['tls.key']!.includes('PRIVATE KEY'));
      }
      const server = certificateInfo((await secretFiles(t, SECRET_NAMES.server))['tls.crt']!);
      assert.ok(server.ipAddresses.includes(ip), `server SANs ${server.ipAddresses} include ${ip}`);
      assert.equal(
        certificateInfo((await secretFiles(t, SECRET_NAMES.admin))['tls.crt']!).commonName,
        'root',
      );
      const cfg = await t.readDaemonConfig();
      assert.equal(cfg['clustermesh-access-endpoints'], e.accessEndpoints.join(','));
      assert.equal(cfg['cluster-name'], e.clusterName, 'install settings kept');
    }
    // enable again: the same CA
    const again = await enableKubernetesMesh(a, { accessEndpoints: ['https://10.1.0.5:32379'] });
    assert.equal(again.caCreated, false);
    assert.equal(again.caFingerprint, ea.caFingerprint);

    // connect both ways
    assert.deepEqual(await connectKubernetesClusters(a, [b]), [
      [a.name, b.name],
      [b.name, a.name],
    ]);
    const caA = (await secretFiles(a, SECRET_NAMES.ca))['ca.crt']!;
    const caB = (await secretFiles(b, SECRET_NAMES.ca))['ca.crt']!;
    const checkDirection = async (
      from: KubernetesTarget,
      to: KubernetesTarget,
      fromName: string,
      toName: string,
      toCA: string,
      toEndpoint: string,
    ) => {
      const files = await secretFiles(from, SECRET_NAMES.kvstoremesh);
      const k = remoteSecretKeys(toName);
      assert.deepEqual(Object.keys(files).sort(), [k.config, k.ca, k.cert, k.key].sort());
      assert.deepEqual(parse(files[k.config]!), {
        endpoints: [toEndpoint],
        'trusted-ca-file': `${toName}.etcd-client-ca.crt`,
        'cert-file': `${toName}.etcd-client.crt`,
        'key-file': `${toName}.etcd-client.key`,
      });
      assert.equal(files[k.ca], toCA);
      verifyCertificate(files[k.cert]!, toCA);
      const user = certificateInfo(files[k.cert]!).commonName;
      assert.match(user, new RegExp(`^remote-${fromName}\\.[0-9a-f]{8}$`));
      assert.deepEqual(parse(await usersYaml(to)), { users: [{ name: user, role: 'remote' }] });
      assert.equal(
        files[k.ca]!.includes('PRIVATE KEY'),
        false,
        'no CA key leaves the issuing cluster',
      );
      return user;
    };
    const userAB = await checkDirection(a, b, 'k1', 'k2', caB, 'https://10.2.0.7:32379');
    const userBA = await checkDirection(b, a, 'k2', 'k1', caA, 'https://10.1.0.5:32379');

    // what the clustermesh-apiserver pods would read, mounted from those objects
    const srcA = await sourceOf(a, join(dir, 'a'), apis[0]!.url);
    const srcB = await sourceOf(b, join(dir, 'b'), apis[1]!.url);
    const remotesA = await srcA.remotes();
    assert.deepEqual(remotesA.errors, []);
    assert.deepEqual(
      remotesA.remotes.map((r) => [r.name, r.endpoints]),
      [['k2', ['https://10.2.0.7:32379']]],
    );
    const [mounted] = readClusterMeshConfig(join(dir, 'a', 'clustermesh'));
    assert.equal(mounted!.trustedCAFile, join(dir, 'a', 'clustermesh', 'k2.etcd-client-ca.crt'));
    assert.equal(
      readFileSync(mounted!.certFile, 'utf8'),
      (await secretFiles(a, SECRET_NAMES.kvstoremesh))['k2.etcd-client.crt'],
    );
    assert.deepEqual(await srcB.readers(), [{ name: 'k1', user: userAB }]);
    assert.deepEqual(await srcA.readers(), [{ name: 'k2', user: userBA }]);
    const settings = srcA.settings()!;
    assert.equal(settings.clusterName, 'k1');
    assert.equal(settings.clusterId, 1);
    assert.deepEqual(settings.accessEndpoints, ['https://10.1.0.5:32379']);

    // connecting again keeps the grant (no second user)
    await connectKubernetesClusters(a, [b], { mode: 'unicast' });
    assert.equal(await checkDirection(a, b, 'k1', 'k2', caB, 'https://10.2.0.7:32379'), userAB);

    // a clash of IDs is refused before anything changes
    await b.writeDaemonConfig('operator', { ...(await b.readDaemonConfig()), 'cluster-id': '1' });
    await assert.rejects(connectKubernetesClusters(a, [b]), ConnectRefusedError);
    await b.writeDaemonConfig('operator', { ...(await b.readDaemonConfig()), 'cluster-id': '2' });

    // disconnect: both directions' keys and users are gone
    await disconnectKubernetesClusters(a, [b]);
    for (const t of [a, b]) {
      assert.deepEqual(await secretFiles(t, SECRET_NAMES.kvstoremesh), {});
      assert.deepEqual(parse(await usersYaml(t)), { users: [] });
    }
    const after = await sourceOf(a, join(dir, 'a2'), apis[0]!.url);
    assert.deepEqual(await after.remotes(), { remotes: [], errors: [] });
    assert.deepEqual(await after.readers(), []);
  } finally {
    for (const t of targets) t.close();
    for (const api of apis) await api.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tendril clustermesh enable/connect/disconnect: contexts that are no lab cluster here take the Kubernetes path', async () => {
  const home = mkdtempSync(join(tmpdir(), 'tendril-k8smesh-cli-'));
  const saved = process.env.TENDRIL_HOME;
  process.env.TENDRIL_HOME = home;
  const apis: Awaited<ReturnType<typeof frontedApi>>[] = [];
  const targets: KubernetesTarget[] = [];
  const run = (...args: string[]) => main(['node', 'tendril', ...args]);
  try {
    for (let i = 0; i < 2; i++) {
      const api = await frontedApi();
      apis.push(api);
      setContext({ name: `k8s-${i + 1}`, server: api.url, makeCurrent: false });
      const t = new KubernetesTarget(new KubeClient({ server: api.url, timeoutMs: 10_000 }));
      targets.push(t);
      await t
        .apply([
          { apiVersion: 'v1', kind: 'Namespace', metadata: { name: K8S_NAMESPACE } } as KubeObject,
        ])
        .catch(() => undefined);
      await t.writeDaemonConfig('operator', {
        'cluster-name': `k${i + 1}`,
        'cluster-id': String(i + 1),
      });
    }
    const [a, b] = targets as [KubernetesTarget, KubernetesTarget];
    for (const [ctx, ep] of [
      ['k8s-1', 'https://10.1.0.5:32379'],
      ['k8s-2', 'https://10.2.0.7:32379'],
    ] as const)
      assert.equal(
        await run('clustermesh', 'enable', '--context', ctx, '--access-endpoint', ep),
        0,
      );
    assert.equal(
      await run('clustermesh', 'connect', '--context', 'k8s-1', '--destination-context', 'k8s-2'),
      0,
    );
    assert.deepEqual(Object.keys(await secretFiles(a, SECRET_NAMES.kvstoremesh)).sort(), [
      'k2',
      'k2.etcd-client-ca.crt',
      'k2.etcd-client.crt',
      'k2.etcd-client.key',
    ]);
    assert.match(await usersYaml(a), /name: remote-k2\.[0-9a-f]{8}/);
    assert.equal(
      await run(
        'clustermesh',
        'disconnect',
        '--context',
        'k8s-1',
        '--destination-context',
        'k8s-2',
      ),
      0,
    );
    assert.deepEqual(await secretFiles(b, SECRET_NAMES.kvstoremesh), {});
    assert.deepEqual(parse(await usersYaml(b)), { users: [] });
  } finally {
    for (const t of targets) t.close();
    for (const api of apis) await api.close();
    if (saved === undefined) delete process.env.TENDRIL_HOME;
    else process.env.TENDRIL_HOME = saved;
    rmSync(home, { recursive: true, force: true });
  }
});

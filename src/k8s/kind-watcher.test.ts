import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startTestApiServer, type TestApiServer } from '../../test/helpers/apiserver.js';
import { nopLogger } from '../util/log.js';
import { KindWatcher, kindOfPath } from './kind-watcher.js';

test('kindOfPath maps collection paths to apiVersion + kind, and refuses others', () => {
  assert.deepEqual(kindOfPath('/api/v1/nodes'), { apiVersion: 'v1', kind: 'Node' });
  assert.deepEqual(kindOfPath('/apis/discovery.k8s.io/v1/endpointslices'), {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
  });
  assert.deepEqual(kindOfPath('/apis/multicluster.x-k8s.io/v1alpha1/serviceexports'), {
    apiVersion: 'multicluster.x-k8s.io/v1alpha1',
    kind: 'ServiceExport',
  });
  assert.throws(() => kindOfPath('/api/v1/replicationcontrollers'), /not a served collection/);
  assert.throws(() => kindOfPath('/api/v1/namespaces/default/pods'), /not a served collection/);
});

const servers: TestApiServer[] = [];
after(async () => {
  for (const s of servers) await s.cleanup();
});

test('KindWatcher on a shared client: sync, events, get', async () => {
  const api = await startTestApiServer();
  servers.push(api);
  await api.client.create({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'tendril-a', namespace: 'default' },
    spec: { ports: [{ port: 80 }] },
  });
  const viaClient = new KindWatcher({
    name: 'services',
    client: api.client,
    path: '/api/v1/services',
    logger: nopLogger,
  });
  const second = new KindWatcher({
    name: 'services',
    client: api.client,
    path: '/api/v1/services',
    logger: nopLogger,
  });
  try {
    const seen: string[] = [];
    second.on('add', (s) => seen.push(`add ${s.metadata?.name}`));
    second.on('delete', (s) => seen.push(`delete ${s.metadata?.name}`));
    await Promise.all([viaClient.start(), second.start()]);
    assert.ok(viaClient.get('tendril-a', 'default'));
    assert.ok(second.get('kubernetes', 'default'), 'the bootstrap service is listed too');
    assert.ok(seen.includes('add tendril-a'));
    await api.client.delete('v1', 'Service', 'tendril-a', { namespace: 'default' });
    const end = Date.now() + 5000;
    while (!seen.includes('delete tendril-a') && Date.now() < end)
      await new Promise((r) => setTimeout(r, 20));
    assert.ok(seen.includes('delete tendril-a'));
    assert.equal(second.get('tendril-a', 'default'), undefined);
  } finally {
    await viaClient.stop();
    await second.stop();
  }
  // the client is the caller's: stopping the watchers leaves it usable
  assert.ok(await api.client.get('v1', 'Namespace', 'default'));
});

test('KindWatcher reports a problem prefixed with its name while the server is unreachable', async () => {
  const { KubeClient } = await import('./client.js');
  const client = new KubeClient({ server: 'http://127.0.0.1:1', timeoutMs: 1000 });
  const problems: Array<string | undefined> = [];
  const w = new KindWatcher({
    name: 'nodes',
    client,
    path: '/api/v1/nodes',
    logger: nopLogger,
    onProblem: (c) => problems.push(c),
    minBackoffMs: 20,
    maxBackoffMs: 40,
  });
  try {
    void w.start();
    const end = Date.now() + 5000;
    while (problems.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    assert.match(problems[0] ?? '', /^watch nodes: list Node: .*cannot reach the API server/);
  } finally {
    await w.stop();
    client.close();
  }
});

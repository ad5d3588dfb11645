import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { KubeObject, WatchEventObject } from '../../k8s/objects.js';
import { ApiError } from '../../k8s/status.js';
import { fakeNode, startTestApiServer, type TestApiServer } from './testing.js';

const cm = (name: string, labels: Record<string, string> = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, labels },
  spec: { ports: [{ port: 80 }] },
});

async function rejectsWith(p: Promise<unknown>, code: number, reason?: string): Promise<ApiError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ApiError, `expected ApiError, got ${String(err)}`);
    assert.equal(err.httpCode, code, err.message);
    if (reason) assert.equal(err.reason, reason);
    return err;
  }
  assert.fail(`expected HTTP ${code}`);
}

describe('lab API server (HTTP, disk store)', () => {
  const servers: TestApiServer[] = [];
  after(async () => {
    for (const s of servers) await s.stop();
    for (const s of servers) await s.cleanup();
  });

  it('serves CRUD with resourceVersions, 404, 409 AlreadyExists and 409 Conflict', async () => {
    const t = await startTestApiServer();
    servers.push(t);
    const c = t.client;
    const created = await c.create(cm('web', { app: 'web' }));
    assert.equal(created.metadata.namespace, 'default');
    assert.match(created.metadata.uid!, /^[0-9a-f-]{36}$/);
    assert.match(created.metadata.creationTimestamp!, /Z$/);
    assert.match(created.spec.clusterIP, /^10\.96\./);
    assert.equal(created.spec.ports[0].targetPort, 80);
    const got = await c.get('v1', 'Service', 'web');
    assert.equal(got.metadata.resourceVersion, created.metadata.resourceVersion);
    await rejectsWith(c.create(cm('web')), 409, 'AlreadyExists');
    const upd = { ...got, metadata: { ...got.metadata, labels: { app: 'web', tier: 'front' } } };
    const updated = await c.update(upd);
    assert.ok(Number(updated.metadata.resourceVersion) > Number(got.metadata.resourceVersion));
    const err = await rejectsWith(c.update(upd), 409, 'Conflict');
    assert.match(
      err.message,
      /Operation cannot be fulfilled on services "web": the object has been modified/,
    );
    const patched = await c.patch('v1', 'Service', 'web', {
      metadata: { labels: { tier: null, extra: 'x' } },
    });
    assert.deepEqual(patched.metadata.labels, { app: 'web', extra: 'x' });
    // A no-op update does not bump the version.
    const same = await c.update(patched);
    assert.equal(same.metadata.resourceVersion, patched.metadata.resourceVersion);
    const list = await c.list('v1', 'Service', {
      namespace: 'default',
      labelSelector: 'app in (web),extra',
    });
    assert.deepEqual(
      list.items.map((i) => i.metadata.name),
      ['web'],
    );
    const byField = await c.list('v1', 'Service', { fieldSelector: 'metadata.name=kubernetes' });
    assert.deepEqual(
      byField.items.map((i) => i.spec.clusterIP),
      ['10.96.0.1'],
    );
    await c.delete('v1', 'Service', 'web');
    await rejectsWith(c.get('v1', 'Service', 'web'), 404, 'NotFound');
    await rejectsWith(
      c.create({ ...cm('x'), metadata: { name: 'x', namespace: 'nope' } }),
      404,
      'NotFound',
    );
  });

  it('rejects invalid objects with 422 naming the field', async () => {
    const t = await startTestApiServer();
    servers.push(t);
    const bad = { ...cm('x'), spec: { ports: [{ port: 0 }] } };
    const err = await rejectsWith(t.client.create(bad), 422, 'Invalid');
    assert.equal(
      err.message,
      'Service "x" is invalid: spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive',
    );
    const taken = await rejectsWith(
      t.client.create({ ...cm('y'), spec: { clusterIP: '10.96.0.1', ports: [{ port: 80 }] } }),
      422,
    );
    assert.match(taken.message, /provided IP is already allocated/);
    const outside = await rejectsWith(
      t.client.create({ ...cm('z'), spec: { clusterIP: '10.1.0.1', ports: [{ port: 80 }] } }),
      422,
    );
    assert.match(outside.message, /not in the valid range/);
  });

  it('streams watch events in order and answers 410 Expired for a compacted version', async () => {
    const t = await startTestApiServer({ historySize: 5 });
    servers.push(t);
    const c = t.client;
    const start = (await c.list('v1', 'Service')).metadata.resourceVersion;
    const events: WatchEventObject[] = [];
    const w = await c.watch(
      'v1',
      'Service',
      { namespace: 'default', resourceVersion: start },
      (ev) => events.push(ev),
    );
    const a = await c.create(cm('a'));
    const a2 = await c.patch('v1', 'Service', 'a', { metadata: { labels: { v: '2' } } });
    await c.delete('v1', 'Service', 'a');
    for (let i = 0; i < 50 && events.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
    w.close();
    assert.deepEqual(
      events.map((e) => e.type),
      ['ADDED', 'MODIFIED', 'DELETED'],
    );
    assert.equal(events[0]!.object.metadata.resourceVersion, a.metadata.resourceVersion);
    assert.equal(events[1]!.object.metadata.resourceVersion, a2.metadata.resourceVersion);
    assert.ok(
      Number(events[2]!.object.metadata.resourceVersion) > Number(a2.metadata.resourceVersion),
    );
    for (let i = 0; i < 30; i++) await c.create(cm(`s${i}`));
    const gone: WatchEventObject[] = [];
    const w2 = await c.watch('v1', 'Service', { resourceVersion: start }, (ev) => gone.push(ev));
    await w2.done;
    assert.equal(gone.length, 1);
    assert.equal(gone[0]!.type, 'ERROR');
    assert.equal((gone[0]!.object as unknown as { code: number }).code, 410);
    assert.equal((gone[0]!.object as unknown as { reason: string }).reason, 'Expired');
  });

  it('keeps every object and a growing resourceVersion across a restart', async () => {
    const t = await startTestApiServer({ snapshotEvery: 7 });
    servers.push(t);
    for (let i = 0; i < 10; i++) await t.client.create(cm(`keep${i}`, { i: String(i) }));
    await t.client.delete('v1', 'Service', 'keep3');
    const before = await t.client.list('v1', 'Service');
    await t.stop();
    const t2 = await startTestApiServer({ dataDir: t.dataDir });
    servers.push(t2);
    const afterList = await t2.client.list('v1', 'Service');
    assert.deepEqual(afterList.items, before.items);
    assert.equal(afterList.metadata.resourceVersion, before.metadata.resourceVersion);
    // A watcher resuming from the last version it saw before the restart misses nothing.
    const resumed: WatchEventObject[] = [];
    const w = await t2.client.watch(
      'v1',
      'Service',
      { resourceVersion: before.metadata.resourceVersion },
      (ev) => resumed.push(ev),
    );
    const next = await t2.client.create(cm('later'));
    for (let i = 0; i < 50 && resumed.length < 1; i++) await new Promise((r) => setTimeout(r, 20));
    w.close();
    assert.deepEqual(
      resumed.map((e) => [e.type, e.object.metadata.name]),
      [['ADDED', 'later']],
    );
    assert.ok(Number(next.metadata.resourceVersion) > Number(before.metadata.resourceVersion));
    assert.notEqual(
      next.spec.clusterIP,
      afterList.items.find((i) => i.metadata.name === 'keep0')!.spec.clusterIP,
    );
  });

  it('runs Deployment -> Pods -> scheduling -> EndpointSlices, scaling and cascading delete', async () => {
    const t = await startTestApiServer();
    servers.push(t);
    const c = t.client;
    await c.create(fakeNode('c1-control-plane', { controlPlane: true }));
    await c.create(fakeNode('c1-worker'));
    await c.create(fakeNode('c1-worker2'));
    await c.create({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'echo', labels: { app: 'echo' } },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'echo' } },
        template: {
          metadata: { labels: { app: 'echo' } },
          spec: {
            containers: [
              {
                name: 'echo',
                image: 'mendhak/http-https-echo:28',
                ports: [{ name: 'http', containerPort: 8080 }],
              },
            ],
          },
        },
      },
    });
    await c.create({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'echo' },
      spec: { selector: { app: 'echo' }, ports: [{ port: 80, targetPort: 'http' }] },
    });
    await t.server.settle();
    let pods = (await c.list('v1', 'Pod', { labelSelector: 'app=echo' })).items;
    assert.equal(pods.length, 2);
    assert.deepEqual(pods.map((p) => p.spec.nodeName).sort(), ['c1-worker', 'c1-worker2']);
    for (const p of pods) {
      assert.match(p.metadata.name!, /^echo-[a-z0-9]+-[a-z0-9]{5}$/);
      assert.ok(p.metadata.labels!['pod-template-hash']);
      assert.equal(p.metadata.ownerReferences![0]!.kind, 'Deployment');
    }
    // The "kubelet": pods get IPs and become Ready.
    for (const [i, p] of pods.entries()) {
      await c.updateStatus({
        ...p,
        status: {
          ...p.status,
          phase: 'Running',
          podIP: `10.244.1.${10 + i}`,
          conditions: [{ type: 'Ready', status: 'True' }],
        },
      });
    }
    await t.server.settle();
    const slices = (
      await c.list('discovery.k8s.io/v1', 'EndpointSlice', {
        labelSelector: 'kubernetes.io/service-name=echo',
      })
    ).items;
    assert.equal(slices.length, 1);
    const s = slices[0]!;
    assert.match(s.metadata.name!, /^echo-[a-z0-9]{5}$/);
    assert.equal(
      s.metadata.labels!['endpointslice.kubernetes.io/managed-by'],
      'endpointslice-controller.k8s.io',
    );
    assert.deepEqual(s.ports, [{ name: '', port: 8080, protocol: 'TCP' }]);
    assert.deepEqual(
      (s.endpoints as Array<{ addresses: string[] }>).map((e) => e.addresses[0]).sort(),
      ['10.244.1.10', '10.244.1.11'],
    );
    assert.ok(
      (s.endpoints as Array<{ conditions: { ready: boolean } }>).every((e) => e.conditions.ready),
    );
    const d = await c.get('apps/v1', 'Deployment', 'echo');
    assert.equal(d.status.readyReplicas, 2);
    assert.equal(d.status.availableReplicas, 2);
    // Scale down to 1.
    await c.patch('apps/v1', 'Deployment', 'echo', { spec: { replicas: 1 } });
    await t.server.settle();
    pods = (await c.list('v1', 'Pod', { labelSelector: 'app=echo' })).items.filter(
      (p) => !p.metadata.deletionTimestamp,
    );
    assert.equal(pods.length, 1);
    // Cascading delete (bound pods go through graceful deletion; gracePeriodSeconds=0 finishes it as a kubelet would).
    await c.delete('apps/v1', 'Deployment', 'echo');
    await t.server.settle();
    for (const p of (await c.list('v1', 'Pod', { labelSelector: 'app=echo' })).items) {
      assert.ok(p.metadata.deletionTimestamp, 'pods of a deleted deployment are being deleted');
      await c.delete('v1', 'Pod', p.metadata.name!, { gracePeriodSeconds: 0 });
    }
    await t.server.settle();
    assert.equal((await c.list('v1', 'Pod')).items.length, 0);
    const after = (
      await c.list('discovery.k8s.io/v1', 'EndpointSlice', {
        labelSelector: 'kubernetes.io/service-name=echo',
      })
    ).items;
    assert.deepEqual(after[0]!.endpoints, []);
  });

  it('orphans dependents with propagationPolicy=Orphan and empties a deleted namespace', async () => {
    const t = await startTestApiServer();
    servers.push(t);
    const c = t.client;
    await c.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'tendril-gc' } });
    await c.create({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'orph', namespace: 'tendril-gc' },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'orph' } },
        template: {
          metadata: { labels: { app: 'orph' } },
          spec: { containers: [{ name: 'c', image: 'busybox' }] },
        },
      },
    });
    await t.server.settle();
    await c.request(
      'DELETE',
      '/apis/apps/v1/namespaces/tendril-gc/deployments/orph?propagationPolicy=Orphan',
    );
    await t.server.settle();
    const pods = (await c.list('v1', 'Pod', { namespace: 'tendril-gc' })).items;
    assert.equal(pods.length, 2);
    assert.ok(pods.every((p) => !p.metadata.ownerReferences && !p.metadata.deletionTimestamp));
    await c.create(cm('in-ns'), { namespace: 'tendril-gc' });
    await c.delete('v1', 'Namespace', 'tendril-gc');
    await t.server.settle();
    assert.equal((await c.list('v1', 'Pod', { namespace: 'tendril-gc' })).items.length, 0);
    assert.equal((await c.list('v1', 'Service', { namespace: 'tendril-gc' })).items.length, 0);
    await rejectsWith(c.get('v1', 'Namespace', 'tendril-gc'), 404);
    await rejectsWith(c.delete('v1', 'Namespace', 'kube-system'), 403, 'Forbidden');
  });

  it('answers bad requests with Kubernetes Status objects and codes, and serves discovery', async () => {
    const t = await startTestApiServer();
    servers.push(t);
    const raw = async (method: string, path: string, body?: string, ct = 'application/json') => {
      const res = await fetch(t.server.url + path, {
        method,
        body,
        headers: { 'Content-Type': ct },
      });
      return { code: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    let r = await raw('GET', '/api/v1/replicationcontrollers');
    assert.equal(r.code, 404);
    assert.equal(r.body.kind, 'Status');
    assert.equal(r.body.reason, 'NotFound');
    r = await raw('POST', '/api/v1/namespaces/default/services', '{not json');
    assert.equal(r.code, 400);
    assert.equal(r.body.reason, 'BadRequest');
    r = await raw(
      'PATCH',
      '/api/v1/namespaces/default/services/kubernetes',
      '{}',
      'application/apply-patch+yaml',
    );
    assert.equal(r.code, 415);
    r = await raw('POST', '/api/v1/namespaces/default/services/kubernetes', '{}');
    assert.equal(r.code, 405);
    r = await raw('GET', '/api/v1/services?labelSelector=a%20in%20b');
    assert.equal(r.code, 400);
    r = await raw('GET', '/api/v1/services?fieldSelector=spec.nodeName%3Dx');
    assert.equal(r.code, 400);
    assert.match(String(r.body.message), /field label not supported: spec.nodeName/);
    r = await raw('GET', '/api/v1/pods?fieldSelector=spec.nodeName%3Dx');
    assert.equal(r.code, 200);
    r = await raw(
      'POST',
      '/api/v1/namespaces/default/services',
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'x', namespace: 'other' },
        spec: { ports: [{ port: 80 }] },
      }),
    );
    assert.equal(r.code, 400);
    assert.match(String(r.body.message), /does not match the namespace/);
    r = await raw('GET', '/apis/apps/v1');
    const deploy = (r.body.resources as Array<Record<string, unknown>>).find(
      (x) => x.name === 'deployments',
    )!;
    assert.deepEqual(
      [deploy.kind, deploy.namespaced, deploy.shortNames],
      ['Deployment', true, ['deploy']],
    );
    r = await raw('GET', '/apis');
    assert.ok(
      (r.body.groups as Array<{ name: string }>).some((g) => g.name === 'multicluster.x-k8s.io'),
    );
    r = await raw('GET', '/api/v1/services?resourceVersion=1&resourceVersionMatch=Exact');
    assert.deepEqual([r.code, r.body.reason], [410, 'Expired']);
    r = await raw('GET', '/api/v1/services?resourceVersion=999999');
    assert.equal(r.code, 504);
    r = await raw('GET', '/api/v1/namespaces/default/services?watch=true&resourceVersion=abc');
    assert.equal(r.code, 400);
    // generateName, and an immutable Deployment selector.
    const g = await t.client.create<KubeObject>({ ...cm(''), metadata: { generateName: 'gen-' } });
    assert.match(g.metadata.name!, /^gen-[a-z0-9]{5}$/);
    const d = await t.client.create<KubeObject>({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'imm' },
      spec: {
        selector: { matchLabels: { a: 'b' } },
        template: {
          metadata: { labels: { a: 'b', c: 'd' } },
          spec: { containers: [{ name: 'c', image: 'i' }] },
        },
      },
    });
    const e = await rejectsWith(
      t.client.patch('apps/v1', 'Deployment', 'imm', {
        spec: { selector: { matchLabels: { c: 'd' } } },
      }),
      422,
      'Invalid',
    );
    assert.match(e.message, /spec.selector: Invalid value: .*: field is immutable/);
    assert.equal(d.metadata.generation, 1);
    const scaled = await t.client.patch('apps/v1', 'Deployment', 'imm', { spec: { replicas: 3 } });
    assert.equal(scaled.metadata.generation, 2);
  });

  it('refuses a second API server on the same data directory', async () => {
    const t = await startTestApiServer();
    servers.push(t);
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/lab/apiserver/main.ts',
        '--cluster',
        'x',
        '--data-dir',
        t.dataDir,
        '--listen',
        '127.0.0.1:0',
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    assert.equal(r.status, 1);
    assert.match(r.stderr, /is in use by process \d+/);
  });

  it('points the kubernetes Service at the advertise address', async () => {
    const t = await startTestApiServer({ advertise: { ip: '172.30.1.10', port: 6443 } });
    servers.push(t);
    const s = await t.client.get('discovery.k8s.io/v1', 'EndpointSlice', 'kubernetes');
    assert.deepEqual((s.endpoints as Array<{ addresses: string[] }>)[0]!.addresses, [
      '172.30.1.10',
    ]);
    assert.deepEqual(s.ports, [{ name: 'https', port: 6443, protocol: 'TCP' }]);
    assert.equal(s.metadata.labels!['kubernetes.io/service-name'], 'kubernetes');
  });
});

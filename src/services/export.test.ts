import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeClusterService, encodeClusterService } from './cluster-service.js';
import {
  desiredGlobalSliceEndpoints,
  exportClusterService,
  sameEndpoints,
  servicesWithMarkerSlices,
} from './export.js';
import { cs, slice, svc } from './fixtures.js';
import { derivedServiceManifest, resolveServiceImports, serviceExportSpec } from './mcs.js';
import { importedServiceManifest } from './remote-only.js';

const G = { 'service.cilium.io/global': 'true' };
const opts = { cluster: 'cluster1', clusterID: 1 };

test('exportClusterService: global and shared only; mesh-created services never', () => {
  const eps = [slice('echo', ['10.244.1.10', { ip: '10.244.1.11', ready: false }])];
  const cases: [string, Parameters<typeof svc>[1], boolean, boolean][] = [
    ['plain', {}, false, false],
    ['global', { annotations: G }, false, true],
    [
      'global not shared',
      { annotations: { ...G, 'service.cilium.io/shared': 'false' } },
      false,
      false,
    ],
    ['MCS exported', {}, true, true],
    [
      'MCS exported, shared=false',
      { annotations: { 'service.cilium.io/shared': 'false' } },
      true,
      false,
    ],
  ];
  for (const [what, o, exported, want] of cases) {
    assert.equal(
      exportClusterService(svc('echo', o), eps, { ...opts, exported }) !== undefined,
      want,
      what,
    );
  }
  const marker = [...eps, slice('echo', [], { marker: true })];
  assert.ok(
    exportClusterService(svc('echo'), marker, opts),
    "the seed's marker slice exports the service",
  );
  const imported = importedServiceManifest(
    {
      namespace: 'default',
      name: 'echo',
      clusters: ['cluster2'],
      ports: [{ name: '', protocol: 'TCP', port: 80 }],
    },
    { clusterIP: '10.96.1.1' },
  );
  assert.equal(exportClusterService(imported, eps, opts), undefined);
  const { imports } = resolveServiceImports([
    serviceExportSpec(svc('echo'), { cluster: 'c2', exportCreated: '2026-01-01T00:00:00Z' }),
  ]);
  assert.equal(
    exportClusterService(derivedServiceManifest(imports[0]!), eps, { ...opts, exported: true }),
    undefined,
  );
});

test('exportClusterService: Cilium shape with ready backends at the target port, keyed by port name', () => {
  const s = svc('echo', {
    ip: '10.96.12.34',
    annotations: G,
    labels: { app: 'echo' },
    ports: [
      { name: 'http', port: 80, targetPort: 8080 },
      { name: 'dns', port: 53, protocol: 'UDP' },
    ],
  });
  const sl = slice('echo', ['10.244.1.10', { ip: '10.244.1.11', ready: false }], {
    ports: [
      { name: 'http', port: 8080 },
      { name: 'dns', port: 5353, protocol: 'UDP' },
    ],
  });
  const marker = slice('echo', ['10.245.9.9'], {
    marker: true,
    ports: [{ name: 'http', port: 80 }],
  });
  const got = exportClusterService(s, [sl, marker], opts)!;
  assert.deepEqual(got, {
    cluster: 'cluster1',
    namespace: 'default',
    name: 'echo',
    frontends: {
      '10.96.12.34': { http: { Protocol: 'TCP', Port: 80 }, dns: { Protocol: 'UDP', Port: 53 } },
    },
    backends: {
      '10.244.1.10': {
        http: { Protocol: 'TCP', Port: 8080 },
        dns: { Protocol: 'UDP', Port: 5353 },
      },
    },
    labels: { app: 'echo' },
    selector: { app: 'echo' },
    includeExternal: false,
    shared: true,
    clusterID: 1,
  });
  assert.deepEqual(decodeClusterService(encodeClusterService(got)), got);
});

test("desiredGlobalSliceEndpoints: the seed's echo-service-c1-mesh slice gets mesh-wide endpoints", () => {
  const services = [svc('echo-service-c1')];
  const ordinary = slice('echo-service-c1', [
    '10.244.1.10',
    { ip: '10.244.1.12', ready: false, serving: true, terminating: true, node: 'w1' },
  ]);
  const marker = slice('echo-service-c1', [], {
    marker: true,
    name: 'echo-service-c1-mesh',
    ports: [{ name: 'http', port: 80 }],
  });
  const remoteServices = [
    cs('cluster2', 2, 'echo-service-c1', ['10.245.1.9', '10.244.1.10']),
    cs('cluster3', 3, 'echo-service-c1', ['10.246.0.1'], { shared: false }),
    cs('cluster2', 2, 'other', ['10.245.7.7']),
    cs('cluster1', 1, 'echo-service-c1', ['10.244.99.99']),
  ];
  const eps = desiredGlobalSliceEndpoints(marker, {
    services,
    endpointSlices: [ordinary, marker],
    remoteServices,
    cluster: 'cluster1',
  })!;
  assert.deepEqual(
    eps.map((e) => [e.addresses[0], e.conditions?.ready, e.nodeName ?? '']),
    [
      ['10.244.1.10', true, ''],
      ['10.244.1.12', false, 'w1'],
      ['10.245.1.9', true, ''],
    ],
  );
  assert.equal(
    desiredGlobalSliceEndpoints(ordinary, {
      services,
      endpointSlices: [],
      remoteServices,
      cluster: 'cluster1',
    }),
    undefined,
    'only markers are filled',
  );
  // Without a local Service: remote endpoints only.
  const onlyRemote = desiredGlobalSliceEndpoints(marker, {
    services: [],
    endpointSlices: [],
    remoteServices,
    cluster: 'cluster1',
  })!;
  assert.deepEqual(
    onlyRemote.map((e) => e.addresses[0]),
    ['10.244.1.10', '10.245.1.9'],
  );
  assert.ok(sameEndpoints(eps, structuredClone(eps)));
  assert.ok(!sameEndpoints(eps, onlyRemote));
  assert.ok(sameEndpoints([], undefined));
  assert.deepEqual([...servicesWithMarkerSlices([ordinary, marker])], ['default/echo-service-c1']);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ServiceEntry } from '../datapath/types.js';
import { desiredServiceEntries, type CatalogInput } from './catalog.js';
import { cs, slice, svc } from './fixtures.js';
import { derivedServiceManifest, resolveServiceImports, serviceExportSpec } from './mcs.js';
import { importedServiceManifest, remoteOnlyServices } from './remote-only.js';

const G = { 'service.cilium.io/global': 'true' };
const base = { cluster: 'cluster1', clusterID: 1 };

/** "ip:port/c<cluster>[!]" per backend ("!" = not ready), per frontend. */
function summary(entries: ServiceEntry[]): Record<string, string[]> {
  return Object.fromEntries(
    entries.map((e) => [
      `${e.frontend.ip}:${e.frontend.port}/${e.frontend.protocol}`,
      e.backends.map((b) => `${b.ip}:${b.port}/c${b.clusterId}${b.ready ? '' : '!'}`),
    ]),
  );
}

test('catalog: global/shared/affinity table', () => {
  const local = (eps: Parameters<typeof slice>[1]) => slice('echo', eps);
  const remote = [cs('cluster2', 2, 'echo', ['10.245.1.10', '10.245.1.9'])];
  const cases: {
    what: string;
    ann?: Record<string, string>;
    eps: Parameters<typeof slice>[1];
    remote?: CatalogInput['remoteServices'];
    markers?: boolean;
    want: string[];
    issues?: string[];
  }[] = [
    {
      what: 'not global: remote backends ignored',
      eps: ['10.244.1.10'],
      remote,
      want: ['10.244.1.10:8080/c1'],
    },
    {
      what: 'global, affinity none: both sides',
      ann: G,
      eps: ['10.244.1.10'],
      remote,
      want: ['10.244.1.10:8080/c1', '10.245.1.9:8080/c2', '10.245.1.10:8080/c2'],
    },
    {
      what: 'legacy annotation',
      ann: { 'io.cilium/global-service': 'true' },
      eps: ['10.244.1.10'],
      remote,
      want: ['10.244.1.10:8080/c1', '10.245.1.9:8080/c2', '10.245.1.10:8080/c2'],
    },
    {
      what: 'seed marker slice makes it global',
      markers: true,
      eps: ['10.244.1.10'],
      remote,
      want: ['10.244.1.10:8080/c1', '10.245.1.9:8080/c2', '10.245.1.10:8080/c2'],
    },
    {
      what: 'affinity local with local ready: local only',
      ann: { ...G, 'service.cilium.io/affinity': 'local' },
      eps: ['10.244.1.10'],
      remote,
      want: ['10.244.1.10:8080/c1'],
    },
    {
      what: 'affinity local, no local backend: falls back to remote',
      ann: { ...G, 'service.cilium.io/affinity': 'local' },
      eps: [],
      remote,
      want: ['10.245.1.9:8080/c2', '10.245.1.10:8080/c2'],
    },
    {
      what: 'affinity local, local backends not ready: remote, plus the terminating local one kept not-ready',
      ann: { ...G, 'service.cilium.io/affinity': 'local' },
      eps: [
        { ip: '10.244.1.10', ready: false },
        { ip: '10.244.1.11', ready: false, serving: true, terminating: true },
      ],
      remote,
      want: ['10.245.1.9:8080/c2', '10.245.1.10:8080/c2', '10.244.1.11:8080/c1!'],
    },
    {
      what: 'affinity remote: remote only',
      ann: { ...G, 'service.cilium.io/affinity': 'remote' },
      eps: ['10.244.1.10'],
      remote,
      want: ['10.245.1.9:8080/c2', '10.245.1.10:8080/c2'],
    },
    {
      what: 'affinity remote, no remote: falls back to local',
      ann: { ...G, 'service.cilium.io/affinity': 'remote' },
      eps: ['10.244.1.10'],
      remote: [],
      want: ['10.244.1.10:8080/c1'],
    },
    {
      what: 'invalid affinity: reported, treated as none',
      ann: { ...G, 'service.cilium.io/affinity': 'closest' },
      eps: ['10.244.1.10'],
      remote,
      want: ['10.244.1.10:8080/c1', '10.245.1.9:8080/c2', '10.245.1.10:8080/c2'],
      issues: ['SERVICE_INVALID_AFFINITY'],
    },
    {
      what: 'shared=false still uses remote backends',
      ann: { ...G, 'service.cilium.io/shared': 'false' },
      eps: ['10.244.1.10'],
      remote,
      want: ['10.244.1.10:8080/c1', '10.245.1.9:8080/c2', '10.245.1.10:8080/c2'],
    },
    {
      what: 'remote with shared=false is not used',
      ann: G,
      eps: ['10.244.1.10'],
      remote: [cs('cluster2', 2, 'echo', ['10.245.1.10'], { shared: false })],
      want: ['10.244.1.10:8080/c1'],
    },
    {
      what: "own cluster's ClusterService ignored",
      ann: G,
      eps: ['10.244.1.10'],
      remote: [cs('cluster1', 1, 'echo', ['10.244.1.99'])],
      want: ['10.244.1.10:8080/c1'],
    },
    {
      what: 'remote of another namespace ignored',
      ann: G,
      eps: [],
      remote: [cs('cluster2', 2, 'echo', ['10.245.1.10'], { ns: 'prod' })],
      want: [],
    },
    {
      what: 'remote with another port name does not match',
      ann: G,
      eps: [],
      remote: [
        cs('cluster2', 2, 'echo', ['10.245.1.10'], {
          ports: { http: { Protocol: 'TCP', Port: 8080 } },
        }),
      ],
      want: [],
    },
    {
      what: 'remote with ANY protocol matches',
      ann: G,
      eps: [],
      remote: [
        cs('cluster2', 2, 'echo', ['10.245.1.10'], { ports: { '': { Protocol: 'ANY', Port: 7 } } }),
      ],
      want: ['10.245.1.10:7/c2'],
    },
    {
      what: 'three clusters, sorted by cluster then IP',
      ann: G,
      eps: ['10.244.1.10'],
      remote: [
        cs('cluster3', 3, 'echo', ['10.246.0.2']),
        cs('cluster2', 2, 'echo', ['10.245.0.2']),
      ],
      want: ['10.244.1.10:8080/c1', '10.245.0.2:8080/c2', '10.246.0.2:8080/c3'],
    },
  ];
  for (const c of cases) {
    const slices = [local(c.eps)];
    if (c.markers)
      slices.push(slice('echo', [], { marker: true, ports: [{ name: 'http', port: 80 }] }));
    const r = desiredServiceEntries({
      ...base,
      services: [svc('echo', { annotations: c.ann ?? {} })],
      endpointSlices: slices,
      remoteServices: c.remote ?? [],
    });
    assert.deepEqual(summary(r.entries), { '10.96.0.100:80/TCP': c.want }, c.what);
    assert.deepEqual(
      r.issues.map((i) => i.code),
      c.issues ?? [],
      c.what,
    );
  }
});

test('catalog: failover follows backend changes (affinity local -> remote -> local)', () => {
  const services = [svc('echo', { annotations: { ...G, 'service.cilium.io/affinity': 'local' } })];
  const remoteServices = [cs('cluster2', 2, 'echo', ['10.245.1.10'])];
  const run = (eps: string[]) =>
    summary(
      desiredServiceEntries({
        ...base,
        services,
        endpointSlices: [slice('echo', eps)],
        remoteServices,
      }).entries,
    )['10.96.0.100:80/TCP'];
  assert.deepEqual(run(['10.244.1.10']), ['10.244.1.10:8080/c1']);
  assert.deepEqual(run([]), ['10.245.1.10:8080/c2']);
  assert.deepEqual(run(['10.244.1.12']), ['10.244.1.12:8080/c1']);
});

test('catalog: multi-port services match slices and remotes by port name; UDP; algorithm', () => {
  const s = svc('dns', {
    ip: '10.96.0.10',
    annotations: G,
    ports: [
      { name: 'dns', port: 53, protocol: 'UDP' },
      { name: 'dns-tcp', port: 53, protocol: 'TCP' },
    ],
  });
  const sl = slice('dns', ['10.244.0.5'], {
    ports: [
      { name: 'dns', port: 5353, protocol: 'UDP' },
      { name: 'dns-tcp', port: 5354, protocol: 'TCP' },
    ],
  });
  const remote = cs('cluster2', 2, 'dns', ['10.245.0.5'], {
    ports: { dns: { Protocol: 'UDP', Port: 53 }, 'dns-tcp': { Protocol: 'TCP', Port: 53 } },
  });
  const r = desiredServiceEntries({
    ...base,
    services: [s],
    endpointSlices: [sl],
    remoteServices: [remote],
    algorithm: 'maglev',
  });
  assert.deepEqual(summary(r.entries), {
    '10.96.0.10:53/TCP': ['10.244.0.5:5354/c1', '10.245.0.5:53/c2'],
    '10.96.0.10:53/UDP': ['10.244.0.5:5353/c1', '10.245.0.5:53/c2'],
  });
  assert.ok(r.entries.every((e) => e.algorithm === 'maglev'));
  assert.deepEqual(r.services[0]!.backendCounts, [
    { port: 'dns', local: 1, remote: 1 },
    { port: 'dns-tcp', local: 1, remote: 1 },
  ]);
});

test('catalog: headless, ExternalName and services without backends', () => {
  const r = desiredServiceEntries({
    ...base,
    services: [
      svc('headless', { ip: 'None' }),
      svc('ext', { type: 'ExternalName' }),
      svc('empty', { ip: '10.96.0.3' }),
    ],
    endpointSlices: [slice('headless', ['10.244.1.1'])],
  });
  assert.deepEqual(
    summary(r.entries),
    { '10.96.0.3:80/TCP': [] },
    'a service without backends is still a frontend (the datapath refuses connections)',
  );
  assert.equal(r.services.length, 3);
});

test('catalog: a duplicate frontend is reported, the first service (by ns/name) keeps it', () => {
  const r = desiredServiceEntries({
    ...base,
    services: [svc('b', { ip: '10.96.0.9' }), svc('a', { ip: '10.96.0.9' })],
    endpointSlices: [slice('a', ['10.0.0.1']), slice('b', ['10.0.0.2'])],
  });
  assert.deepEqual(summary(r.entries), { '10.96.0.9:80/TCP': ['10.0.0.1:8080/c1'] });
  assert.deepEqual(
    r.issues.map((i) => [i.name, i.code]),
    [['b', 'SERVICE_DUPLICATE_FRONTEND']],
  );
});

test('catalog: deterministic, whatever the input order', () => {
  const services = [
    svc('a', { ip: '10.96.0.2', annotations: G }),
    svc('b', { ip: '10.96.0.1' }),
    svc('c', { ip: '10.96.0.12', annotations: G }),
  ];
  const endpointSlices = [
    slice('a', ['10.0.0.3', '10.0.0.1']),
    slice('b', ['10.0.0.9']),
    slice('c', ['10.0.0.20']),
  ];
  const remoteServices = [
    cs('z', 3, 'a', ['10.9.0.1']),
    cs('y', 2, 'a', ['10.8.0.1']),
    cs('y', 2, 'c', ['10.8.0.2']),
  ];
  const one = desiredServiceEntries({ ...base, services, endpointSlices, remoteServices });
  const two = desiredServiceEntries({
    ...base,
    services: [...services].reverse(),
    endpointSlices: [...endpointSlices].reverse(),
    remoteServices: [...remoteServices].reverse(),
  });
  assert.deepEqual(one, two);
  assert.deepEqual(Object.keys(summary(one.entries)), [
    '10.96.0.1:80/TCP',
    '10.96.0.2:80/TCP',
    '10.96.0.12:80/TCP',
  ]);
});

test('catalog: a remote-only import gets the remote backends (seed step 5 in cluster2)', () => {
  const remoteServices = [
    cs('cluster1', 1, 'echo-service-c1', ['10.244.1.10'], {
      fePorts: { '': { Protocol: 'TCP', Port: 80 } },
    }),
  ];
  const { services: imports } = remoteOnlyServices([], remoteServices, { cluster: 'cluster2' });
  const imported = importedServiceManifest(imports[0]!, { clusterIP: '10.96.7.7' });
  const r = desiredServiceEntries({
    cluster: 'cluster2',
    clusterID: 2,
    services: [imported],
    endpointSlices: [],
    remoteServices,
  });
  assert.deepEqual(summary(r.entries), { '10.96.7.7:80/TCP': ['10.244.1.10:8080/c1'] });
  assert.equal(r.services[0]!.kind, 'imported');
});

test('catalog: a user manifest applied over an import (label kept, selector set) is local: affinity local uses the local pod', () => {
  const remoteServices = [cs('cluster1', 1, 'echo', ['10.244.1.10'])];
  const taken = svc('echo', {
    ip: '10.96.7.7',
    labels: { 'tendril.io/imported-service': 'true' },
    annotations: {
      'service.cilium.io/global': 'true',
      'service.cilium.io/affinity': 'local',
      'tendril.io/imported-from': 'cluster1',
    },
  });
  const r = desiredServiceEntries({
    cluster: 'cluster2',
    clusterID: 2,
    services: [taken],
    endpointSlices: [slice('echo', ['10.245.1.1'])],
    remoteServices,
  });
  assert.equal(r.services[0]!.kind, 'local');
  assert.deepEqual(summary(r.entries), { '10.96.7.7:80/TCP': ['10.245.1.1:8080/c2'] });
});

test('catalog: MCS derived service: backends of the exporting clusters only, local ones when exported here', () => {
  const echo = svc('echo', { ip: '10.96.0.50' });
  const exports = [
    serviceExportSpec(echo, { cluster: 'cluster1', exportCreated: '2026-01-01T00:00:00Z' }),
    { ...serviceExportSpec(echo, { cluster: 'cluster2', exportCreated: '2026-01-02T00:00:00Z' }) },
  ];
  const { imports } = resolveServiceImports(exports);
  const derived = derivedServiceManifest(imports[0]!);
  derived.spec!.clusterIP = '10.96.9.9';
  const remoteServices = [
    cs('cluster2', 2, 'echo', ['10.245.0.7']),
    cs('cluster3', 3, 'echo', ['10.246.0.7']),
  ];
  const input: CatalogInput = {
    ...base,
    services: [echo, derived],
    endpointSlices: [slice('echo', ['10.244.0.7'])],
    remoteServices,
    exportedServices: ['default/echo'],
    mcsExports: exports,
  };
  const r = desiredServiceEntries(input);
  assert.deepEqual(summary(r.entries), {
    '10.96.0.50:80/TCP': ['10.244.0.7:8080/c1', '10.245.0.7:8080/c2', '10.246.0.7:8080/c3'],
    '10.96.9.9:80/TCP': ['10.244.0.7:8080/c1', '10.245.0.7:8080/c2'],
  });
  // Not exported locally: the derived service has only the remote exporters.
  const r2 = desiredServiceEntries({
    ...input,
    exportedServices: [],
    mcsExports: exports.filter((e) => e.cluster !== 'cluster1'),
  });
  assert.deepEqual(summary(r2.entries)['10.96.9.9:80/TCP'], ['10.245.0.7:8080/c2']);
});

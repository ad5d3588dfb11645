import assert from 'node:assert/strict';
import { test } from 'node:test';
import { svc } from './fixtures.js';
import {
  derivedServiceManifest,
  derivedServiceName,
  resolveServiceImports,
  serviceExportSpec,
  serviceExportValidity,
  serviceImportManifest,
  type ServiceExportSpec,
} from './mcs.js';

const exp = (
  cluster: string,
  created: string,
  o: Partial<ServiceExportSpec> = {},
): ServiceExportSpec => ({
  cluster,
  namespace: 'default',
  name: 'echo',
  exportCreationTimestamp: created,
  type: 'ClusterSetIP',
  ports: [{ name: 'http', protocol: 'TCP', port: 80 }],
  sessionAffinity: 'None',
  ...o,
});

test('serviceExportSpec from a Service', () => {
  const s = svc('echo', {
    ports: [
      { name: 'http', port: 80 },
      { name: 'dns', port: 53, protocol: 'UDP' },
    ],
  });
  assert.deepEqual(
    serviceExportSpec(s, { cluster: 'c1', exportCreated: new Date('2026-01-01T00:00:00Z') }),
    {
      cluster: 'c1',
      namespace: 'default',
      name: 'echo',
      exportCreationTimestamp: '2026-01-01T00:00:00.000Z',
      type: 'ClusterSetIP',
      ports: [
        { name: 'http', protocol: 'TCP', port: 80 },
        { name: 'dns', protocol: 'UDP', port: 53 },
      ],
      sessionAffinity: 'None',
    },
  );
  assert.equal(
    serviceExportSpec(svc('h', { ip: 'None' }), { cluster: 'c1', exportCreated: undefined }).type,
    'Headless',
  );
});

test('serviceExportValidity', () => {
  assert.deepEqual(serviceExportValidity('default', 'echo', svc('echo')).status, 'True');
  const none = serviceExportValidity('default', 'echo', undefined);
  assert.deepEqual([none.status, none.reason], ['False', 'NoService']);
  const ext = serviceExportValidity('default', 'echo', svc('echo', { type: 'ExternalName' }));
  assert.deepEqual([ext.status, ext.reason], ['False', 'InvalidServiceType']);
});

test('resolveServiceImports: conflict table, the oldest export wins', () => {
  const cases: {
    what: string;
    exports: ServiceExportSpec[];
    ports: string[];
    type?: string;
    conflicts: Record<string, string>;
  }[] = [
    {
      what: 'identical exports: no conflict',
      exports: [exp('c2', '2026-01-02T00:00:00Z'), exp('c1', '2026-01-01T00:00:00Z')],
      ports: ['http:80/TCP'],
      conflicts: { c1: 'NoConflicts', c2: 'NoConflicts' },
    },
    {
      what: 'union of distinct ports',
      exports: [
        exp('c1', '2026-01-01T00:00:00Z'),
        exp('c2', '2026-01-02T00:00:00Z', {
          ports: [{ name: 'metrics', protocol: 'TCP', port: 9100 }],
        }),
      ],
      ports: ['http:80/TCP', 'metrics:9100/TCP'],
      conflicts: { c1: 'NoConflicts', c2: 'NoConflicts' },
    },
    {
      what: 'same port name, other number: the newer export conflicts',
      exports: [
        exp('c2', '2026-01-01T00:00:00Z', {
          ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
        }),
        exp('c1', '2026-01-05T00:00:00Z'),
      ],
      ports: ['http:8080/TCP'],
      conflicts: { c1: 'PortConflict', c2: 'NoConflicts' },
    },
    {
      what: 'same number, other name',
      exports: [
        exp('c1', '2026-01-01T00:00:00Z'),
        exp('c2', '2026-01-02T00:00:00Z', { ports: [{ name: 'web', protocol: 'TCP', port: 80 }] }),
      ],
      ports: ['http:80/TCP'],
      conflicts: { c1: 'NoConflicts', c2: 'PortConflict' },
    },
    {
      what: 'type conflict',
      exports: [
        exp('c1', '2026-01-01T00:00:00Z', { type: 'Headless' }),
        exp('c2', '2026-01-02T00:00:00Z'),
      ],
      ports: ['http:80/TCP'],
      type: 'Headless',
      conflicts: { c1: 'NoConflicts', c2: 'TypeConflict' },
    },
    {
      what: 'session affinity conflict',
      exports: [
        exp('c1', '2026-01-01T00:00:00Z'),
        exp('c2', '2026-01-02T00:00:00Z', { sessionAffinity: 'ClientIP' }),
      ],
      ports: ['http:80/TCP'],
      conflicts: { c1: 'NoConflicts', c2: 'SessionAffinityConflict' },
    },
    {
      what: 'same timestamp: cluster name breaks the tie',
      exports: [
        exp('c2', '2026-01-01T00:00:00Z', { ports: [{ name: 'http', protocol: 'TCP', port: 81 }] }),
        exp('c1', '2026-01-01T00:00:00Z'),
      ],
      ports: ['http:80/TCP'],
      conflicts: { c1: 'NoConflicts', c2: 'PortConflict' },
    },
  ];
  for (const c of cases) {
    const { imports, conflicts } = resolveServiceImports(c.exports);
    assert.equal(imports.length, 1, c.what);
    const imp = imports[0]!;
    assert.deepEqual(
      imp.ports.map((p) => `${p.name ?? ''}:${p.port}/${p.protocol}`),
      c.ports,
      c.what,
    );
    assert.equal(imp.type, c.type ?? 'ClusterSetIP', c.what);
    assert.deepEqual(imp.clusters, ['c1', 'c2'], c.what);
    for (const [cluster, reason] of Object.entries(c.conflicts)) {
      const cond = conflicts.get(`${cluster}/default/echo`)!;
      assert.equal(cond.reason, reason, `${c.what}: ${cluster}`);
      assert.equal(cond.status, reason === 'NoConflicts' ? 'False' : 'True');
      if (reason !== 'NoConflicts') assert.match(cond.message, /oldest export/);
    }
  }
});

test('resolveServiceImports: separate imports per namespace/name, sorted', () => {
  const { imports } = resolveServiceImports([
    exp('c1', 'x', { name: 'b' }),
    exp('c1', 'x', { namespace: 'a' }),
    exp('c2', 'x', { name: 'b' }),
  ]);
  assert.deepEqual(
    imports.map((i) => `${i.namespace}/${i.name}:${i.clusters.join('+')}`),
    ['a/echo:c1', 'default/b:c1+c2'],
  );
});

test('derived service and ServiceImport manifests', () => {
  const { imports } = resolveServiceImports([exp('c1', '2026-01-01T00:00:00Z')]);
  const imp = imports[0]!;
  const name = derivedServiceName('default', 'echo');
  assert.match(name, /^derived-[0-9a-f]{10}$/);
  assert.equal(name, derivedServiceName('default', 'echo'));
  assert.notEqual(name, derivedServiceName('other', 'echo'));
  const d = derivedServiceManifest(imp);
  assert.equal(d.metadata!.name, name);
  assert.equal(d.metadata!.labels!['multicluster.kubernetes.io/service-name'], 'echo');
  assert.equal(d.spec!.selector, undefined);
  assert.deepEqual(d.spec!.ports, [{ name: 'http', protocol: 'TCP', port: 80 }]);
  const si = serviceImportManifest(imp, { ips: ['10.96.3.3'] }) as {
    kind: string;
    spec: { ips: string[]; type: string };
    status: { clusters: { cluster: string }[] };
  };
  assert.equal(si.kind, 'ServiceImport');
  assert.deepEqual(si.spec.ips, ['10.96.3.3']);
  assert.deepEqual(si.status.clusters, [{ cluster: 'c1' }]);
});

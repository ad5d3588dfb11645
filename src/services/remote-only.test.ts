import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cs, svc } from './fixtures.js';
import { isMeshCreatedService, isRemoteOnlyImport } from './annotations.js';
import { importedServiceManifest, remoteOnlyServices, staleImports } from './remote-only.js';

test('remoteOnlyServices: remote global services without a local Service', () => {
  const remote = [
    cs('cluster1', 1, 'echo-service-c1', ['10.244.1.10']),
    cs('cluster3', 3, 'echo-service-c1', ['10.246.1.10']),
    cs('cluster1', 1, 'both', ['10.244.1.11']),
    cs('cluster1', 1, 'hidden', ['10.244.1.12'], { shared: false }),
    cs('cluster2', 2, 'mine', ['10.245.1.12']),
    cs('cluster1', 1, 'multi', ['10.244.1.13'], {
      fePorts: {
        http: { Protocol: 'TCP', Port: 80 },
        dns: { Protocol: 'UDP', Port: 53 },
        sctp: { Protocol: 'SCTP', Port: 9 },
      },
    }),
  ];
  const local = [svc('both')];
  const { services, issues } = remoteOnlyServices(local, remote, { cluster: 'cluster2' });
  assert.deepEqual(services, [
    {
      namespace: 'default',
      name: 'echo-service-c1',
      clusters: ['cluster1', 'cluster3'],
      ports: [{ name: '', protocol: 'TCP', port: 80 }],
    },
    {
      namespace: 'default',
      name: 'multi',
      clusters: ['cluster1'],
      ports: [
        { name: 'dns', protocol: 'UDP', port: 53 },
        { name: 'http', protocol: 'TCP', port: 80 },
      ],
    },
  ]);
  assert.deepEqual(issues, []);
});

test('remoteOnlyServices: an earlier import does not block itself; port conflicts reported, first cluster wins', () => {
  const remote = [
    cs('b', 2, 'x', ['10.0.0.2'], { fePorts: { '': { Protocol: 'TCP', Port: 8080 } } }),
    cs('a', 1, 'x', ['10.0.0.1']),
  ];
  const earlier = importedServiceManifest({
    namespace: 'default',
    name: 'x',
    clusters: ['a'],
    ports: [{ name: '', protocol: 'TCP', port: 80 }],
  });
  const { services, issues } = remoteOnlyServices([earlier], remote, { cluster: 'c' });
  assert.deepEqual(services[0]!.ports, [{ name: '', protocol: 'TCP', port: 80 }]);
  assert.equal(issues[0]!.code, 'SERVICE_PORT_CONFLICT');
  assert.match(issues[0]!.message, /8080\/TCP in b but 80\/TCP in a; using a's/);
});

test('importedServiceManifest and staleImports', () => {
  const r = {
    namespace: 'default',
    name: 'echo',
    clusters: ['cluster1'],
    ports: [{ name: 'http', protocol: 'TCP' as const, port: 80 }],
  };
  const m = importedServiceManifest(r, { clusterIP: '10.96.5.5' });
  assert.equal(m.metadata!.labels!['tendril.io/imported-service'], 'true');
  assert.equal(m.metadata!.annotations!['service.cilium.io/global'], 'true');
  assert.equal(m.spec!.clusterIP, '10.96.5.5');
  assert.equal(m.spec!.selector, undefined);
  assert.deepEqual(m.spec!.ports, [{ name: 'http', protocol: 'TCP', port: 80 }]);
  const other = importedServiceManifest({ ...r, name: 'gone' });
  assert.deepEqual(
    staleImports([m, other, svc('plain')], [r]).map((s) => s.metadata!.name),
    ['gone'],
  );
});

test('a user manifest applied over an import (label kept, selector added) is a local Service: no import, not stale', () => {
  const remote = [cs('cluster1', 1, 'echo', ['10.244.1.10'])];
  const earlier = importedServiceManifest({
    namespace: 'default',
    name: 'echo',
    clusters: ['cluster1'],
    ports: [{ name: '', protocol: 'TCP', port: 80 }],
  });
  const taken = { ...earlier, spec: { ...earlier.spec, selector: { app: 'echo' } } };
  assert.equal(isRemoteOnlyImport(earlier), true);
  assert.equal(isRemoteOnlyImport(taken), false);
  assert.equal(isMeshCreatedService(taken), false, 'the user-owned Service is exported');
  assert.deepEqual(remoteOnlyServices([taken], remote, { cluster: 'cluster2' }).services, []);
  assert.deepEqual(staleImports([taken], []), []);
});

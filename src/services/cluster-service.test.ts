import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ClusterServiceError,
  decodeClusterService,
  encodeClusterService,
  type ClusterService,
} from './cluster-service.js';

const sample: ClusterService = {
  cluster: 'cluster1',
  namespace: 'default',
  name: 'echo',
  frontends: { '10.96.12.34': { http: { Protocol: 'TCP', Port: 80 } } },
  backends: { '10.244.1.10': { http: { Protocol: 'TCP', Port: 8080 } } },
  labels: { app: 'echo' },
  selector: { app: 'echo' },
  includeExternal: false,
  shared: true,
  clusterID: 1,
};

test("encode: Cilium's JSON shape and field order", () => {
  assert.equal(
    encodeClusterService(sample),
    '{"cluster":"cluster1","namespace":"default","name":"echo","frontends":{"10.96.12.34":{"http":{"Protocol":"TCP","Port":80}}},"backends":{"10.244.1.10":{"http":{"Protocol":"TCP","Port":8080}}},"labels":{"app":"echo"},"selector":{"app":"echo"},"includeExternal":false,"shared":true,"clusterID":1}',
  );
});

test('decode(encode(x)) === x, and key expectations are checked', () => {
  assert.deepEqual(decodeClusterService(encodeClusterService(sample)), sample);
  assert.deepEqual(
    decodeClusterService(encodeClusterService(sample), {
      cluster: 'cluster1',
      namespace: 'default',
      name: 'echo',
    }),
    sample,
  );
  assert.throws(
    () => decodeClusterService(encodeClusterService(sample), { cluster: 'cluster2' }),
    /"cluster" is "cluster1" but the key says "cluster2"/,
  );
});

test('decode: lower-case port fields and missing optional fields are accepted', () => {
  const cs = decodeClusterService(
    '{"cluster":"c2","namespace":"ns","name":"n","frontends":{},"backends":{"10.0.0.1":{"":{"protocol":"udp","port":53}}},"clusterID":2}',
  );
  assert.deepEqual(cs.backends, { '10.0.0.1': { '': { Protocol: 'UDP', Port: 53 } } });
  assert.deepEqual([cs.shared, cs.includeExternal, cs.labels, cs.selector], [true, false, {}, {}]);
});

test('decode: malformed values name the field', () => {
  const base = JSON.parse(encodeClusterService(sample));
  const cases: [string, (o: Record<string, unknown>) => unknown, RegExp][] = [
    ['not JSON', () => undefined, /not JSON/],
    ['array', () => [], /not a JSON object/],
    ['no name', (o) => ({ ...o, name: '' }), /"name" must be a non-empty string/],
    [
      'bad cluster',
      (o) => ({ ...o, cluster: 'Cluster_1' }),
      /cluster name "Cluster_1" is not valid/,
    ],
    ['clusterID', (o) => ({ ...o, clusterID: 600 }), /"clusterID" 600 is not 0..511/],
    [
      'ip',
      (o) => ({ ...o, backends: { 'not-an-ip': {} } }),
      /backends: "not-an-ip" is not an IP address/,
    ],
    [
      'port',
      (o) => ({ ...o, backends: { '10.0.0.1': { http: { Protocol: 'TCP', Port: 0 } } } }),
      /port 0 is not 1..65535/,
    ],
    [
      'protocol',
      (o) => ({ ...o, frontends: { '10.0.0.1': { http: { Protocol: 'ICMP', Port: 1 } } } }),
      /protocol "ICMP"/,
    ],
    ['shared', (o) => ({ ...o, shared: 'yes' }), /"shared" must be true or false/],
    ['labels', (o) => ({ ...o, labels: { a: 1 } }), /"labels" must be an object of strings/],
  ];
  for (const [what, mut, re] of cases) {
    const text = what === 'not JSON' ? '{nope' : JSON.stringify(mut(base));
    assert.throws(
      () => decodeClusterService(text),
      (e) =>
        e instanceof ClusterServiceError &&
        e.code === 'SERVICE_INVALID_CLUSTER_SERVICE' &&
        re.test(e.message),
      what,
    );
  }
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Question } from 'dns-packet';
import { svc } from '../services/fixtures.js';
import { ServiceRecordStore } from './records.js';
import { resolveQuestion } from './resolver.js';

const dataOf = (a: unknown): unknown => (a as { data?: unknown }).data;

function store(): ServiceRecordStore {
  const s = new ServiceRecordStore();
  s.upsertService(
    svc('echo-service-c1', { ip: '10.96.123.45', ports: [{ name: 'http', port: 80 }] }),
  );
  s.upsertService(
    svc('kube-dns', {
      ns: 'kube-system',
      ip: '10.96.0.10',
      ports: [
        { name: 'dns', port: 53, protocol: 'UDP' },
        { name: 'dns-tcp', port: 53, protocol: 'TCP' },
      ],
    }),
  );
  s.upsertService(svc('db', { ip: 'None', ports: [{ name: 'pg', port: 5432 }] }));
  s.upsertService(svc('ext', { type: 'ExternalName' }));
  s.upsertEndpointSlice({
    metadata: {
      name: 'db-1',
      namespace: 'default',
      labels: { 'kubernetes.io/service-name': 'db' },
    },
    addressType: 'IPv4',
    endpoints: [
      { addresses: ['10.244.1.7'], hostname: 'db-0', conditions: { ready: true } },
      { addresses: ['10.244.1.8'], conditions: { ready: true } },
      { addresses: ['10.244.1.9'], conditions: { ready: false } },
    ],
  });
  s.upsertServiceImport({
    metadata: { name: 'echo', namespace: 'default' },
    spec: {
      type: 'ClusterSetIP',
      ips: ['10.96.200.1'],
      ports: [{ name: 'http', protocol: 'TCP', port: 80 }],
    },
  });
  return s;
}

const q = (name: string, type: Question['type'] = 'A'): Question => ({ name, type, class: 'IN' });
const data = (r: ReturnType<typeof resolveQuestion>) =>
  r.answers.map(
    (a) => `${a.type} ${typeof dataOf(a) === 'object' ? JSON.stringify(dataOf(a)) : dataOf(a)}`,
  );

test('resolver: table', () => {
  const s = store();
  const cases: [Question, string, string[]][] = [
    [q('echo-service-c1.default.svc.cluster.local'), 'NOERROR', ['A 10.96.123.45']],
    [q('ECHO-SERVICE-C1.Default.SVC.cluster.LOCAL.'), 'NOERROR', ['A 10.96.123.45']],
    [q('echo-service-c1.default.svc.cluster.local', 'AAAA'), 'NOERROR', []],
    [q('echo-service-c1.default.svc.cluster.local', 'TXT'), 'NOERROR', []],
    [q('echo-service-c1.prod.svc.cluster.local'), 'NXDOMAIN', []],
    [q('nope.default.svc.cluster.local'), 'NXDOMAIN', []],
    [q('echo-service-c1.default.svc.cluster.local.default.svc.cluster.local'), 'NXDOMAIN', []],
    [
      q('_http._tcp.echo-service-c1.default.svc.cluster.local', 'SRV'),
      'NOERROR',
      [
        'SRV {"priority":0,"weight":100,"port":80,"target":"echo-service-c1.default.svc.cluster.local"}',
      ],
    ],
    [q('_http._udp.echo-service-c1.default.svc.cluster.local', 'SRV'), 'NXDOMAIN', []],
    [
      q('_dns._udp.kube-dns.kube-system.svc.cluster.local', 'SRV'),
      'NOERROR',
      [
        'SRV {"priority":0,"weight":100,"port":53,"target":"kube-dns.kube-system.svc.cluster.local"}',
      ],
    ],
    [
      q('kube-dns.kube-system.svc.cluster.local', 'SRV'),
      'NOERROR',
      [
        'SRV {"priority":0,"weight":100,"port":53,"target":"kube-dns.kube-system.svc.cluster.local"}',
        'SRV {"priority":0,"weight":100,"port":53,"target":"kube-dns.kube-system.svc.cluster.local"}',
      ],
    ],
    [q('db.default.svc.cluster.local'), 'NOERROR', ['A 10.244.1.7', 'A 10.244.1.8']],
    [q('db-0.db.default.svc.cluster.local'), 'NOERROR', ['A 10.244.1.7']],
    [q('db-9.db.default.svc.cluster.local'), 'NXDOMAIN', []],
    [q('ext.default.svc.cluster.local'), 'NXDOMAIN', []],
    [q('echo.default.svc.clusterset.local'), 'NOERROR', ['A 10.96.200.1']],
    [
      q('_http._tcp.echo.default.svc.clusterset.local', 'SRV'),
      'NOERROR',
      ['SRV {"priority":0,"weight":100,"port":80,"target":"echo.default.svc.clusterset.local"}'],
    ],
    [q('echo-service-c1.default.svc.clusterset.local'), 'NXDOMAIN', []],
    [q('10-244-1-7.default.pod.cluster.local'), 'NOERROR', ['A 10.244.1.7']],
    [q('10-244-1-999.default.pod.cluster.local'), 'NXDOMAIN', []],
    [q('default.svc.cluster.local'), 'NOERROR', []],
    [q('svc.cluster.local'), 'NOERROR', []],
    [q('cluster.local', 'SOA'), 'NOERROR', ['SOA']],
    [q('foo.cluster.local'), 'NXDOMAIN', []],
    [q('example.com'), 'REFUSED', []],
    [q('localcluster.local'), 'REFUSED', []],
    [q('cluster.local.example.com'), 'REFUSED', []],
  ];
  for (const [question, rcode, want] of cases) {
    const r = resolveQuestion(question, s);
    assert.equal(r.rcode, rcode, `${question.type} ${question.name}`);
    const got = data(r).map((x) => (x.startsWith('SOA') ? 'SOA' : x));
    assert.deepEqual(got, want, `${question.type} ${question.name}`);
    if (rcode === 'REFUSED') assert.equal(r.authoritative, false);
    if (rcode === 'NXDOMAIN' || (rcode === 'NOERROR' && want.length === 0))
      assert.equal(
        r.authorities[0]?.type,
        'SOA',
        `negative answers carry the SOA: ${question.name}`,
      );
  }
});

test("resolver: answers keep the question's spelling; SRV adds the A records", () => {
  const r = resolveQuestion(
    q('_http._tcp.Echo-Service-C1.default.svc.cluster.local', 'SRV'),
    store(),
  );
  assert.equal(r.answers[0]!.name, '_http._tcp.Echo-Service-C1.default.svc.cluster.local');
  assert.deepEqual(
    r.additionals.map((a) => `${a.name} ${dataOf(a)}`),
    ['echo-service-c1.default.svc.cluster.local 10.96.123.45'],
  );
});

test('resolver: other domains and TTL', () => {
  const r = resolveQuestion(q('echo-service-c1.default.svc.corp.example'), store(), {
    clusterDomain: 'corp.example',
    ttl: 30,
  });
  assert.equal(r.rcode, 'NOERROR');
  assert.equal((r.answers[0] as { ttl?: number }).ttl, 30);
  assert.equal(
    resolveQuestion(q('echo-service-c1.default.svc.cluster.local'), store(), {
      clusterDomain: 'corp.example',
    }).rcode,
    'REFUSED',
  );
});

test('resolver: the store follows updates and deletes; ServiceImport without ips uses the derived service', () => {
  const s = store();
  s.deleteService({ metadata: { name: 'echo-service-c1', namespace: 'default' } });
  assert.equal(
    resolveQuestion(q('echo-service-c1.default.svc.cluster.local'), s).rcode,
    'NXDOMAIN',
  );
  s.upsertService(svc('derived-abc', { ip: '10.96.44.44' }));
  s.upsertServiceImport({
    metadata: {
      name: 'x',
      namespace: 'default',
      annotations: { 'multicluster.kubernetes.io/derived-service': 'derived-abc' },
    },
    spec: { type: 'ClusterSetIP', ports: [] },
  });
  assert.deepEqual(data(resolveQuestion(q('x.default.svc.clusterset.local'), s)), [
    'A 10.96.44.44',
  ]);
  assert.deepEqual(s.counts(), { services: 4, endpointSlices: 1, serviceImports: 2 });
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  endpointSlicesForService,
  localBackends,
  resolveTargetPort,
  serviceClusterIPs,
  servicePorts,
} from './backends.js';
import { pod, slice, svc } from './fixtures.js';

test('servicePorts: TCP/UDP served; bad numbers, SCTP, duplicates reported', () => {
  const s = svc('x', {
    ports: [
      { name: 'http', port: 80, targetPort: 8080 },
      { name: 'dns', port: 53, protocol: 'UDP' },
      { name: 'sctp', port: 9, protocol: 'SCTP' },
      { name: 'bad', port: 70000 },
      { name: 'http', port: 81 },
      { name: 'tp', port: 82, targetPort: 0 },
    ],
  });
  const { ports, issues } = servicePorts(s);
  assert.deepEqual(ports, [
    { name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 },
    { name: 'dns', port: 53, protocol: 'UDP', targetPort: undefined },
  ]);
  assert.deepEqual(
    issues.map((i) => i.code),
    [
      'SERVICE_UNSUPPORTED_PROTOCOL',
      'SERVICE_INVALID_PORT',
      'SERVICE_DUPLICATE_PORT',
      'SERVICE_INVALID_PORT',
    ],
  );
  assert.match(issues[1]!.message, /70000 is not a port number/);
});

test('serviceClusterIPs: IPv4 ClusterIPs; none for headless and ExternalName', () => {
  assert.deepEqual(serviceClusterIPs(svc('a', { ip: '10.96.0.5' })), ['10.96.0.5']);
  assert.deepEqual(serviceClusterIPs(svc('a', { ip: 'None' })), []);
  assert.deepEqual(serviceClusterIPs(svc('a', { type: 'ExternalName' })), []);
  const dual = svc('a');
  dual.spec!.clusterIPs = ['10.96.0.7', 'fd00::7'];
  assert.deepEqual(serviceClusterIPs(dual), ['10.96.0.7']);
});

test('resolveTargetPort: table', () => {
  const p = pod('p', '10.0.0.1', {
    ports: [
      { name: 'web', containerPort: 8080 },
      { name: 'dns', containerPort: 5353, protocol: 'UDP' },
    ],
  });
  const cases: [
    { port: number; targetPort?: number | string; protocol?: string },
    number | undefined,
  ][] = [
    [{ port: 80 }, 80],
    [{ port: 80, targetPort: 9090 }, 9090],
    [{ port: 80, targetPort: '9091' }, 9091],
    [{ port: 80, targetPort: 'web' }, 8080],
    [{ port: 53, targetPort: 'dns', protocol: 'UDP' }, 5353],
    [{ port: 53, targetPort: 'dns', protocol: 'TCP' }, undefined],
    [{ port: 80, targetPort: 'missing' }, undefined],
  ];
  for (const [sp, want] of cases)
    assert.equal(resolveTargetPort(sp as never, p), want, JSON.stringify(sp));
});

test('localBackends: by port name and protocol; marker slices, other namespaces, other services, IPv6 ignored', () => {
  const s = svc('echo', {
    ports: [
      { name: 'http', port: 80 },
      { name: 'metrics', port: 9100 },
    ],
  });
  const slices = [
    slice('echo', ['10.244.1.11', '10.244.1.2'], {
      ports: [
        { name: 'http', port: 8080 },
        { name: 'metrics', port: 9100 },
      ],
    }),
    slice(
      'echo',
      [{ ip: '10.244.2.5', ready: false, serving: true, terminating: true, node: 'n2' }],
      { name: 'echo-2', ports: [{ name: 'http', port: 8080 }] },
    ),
    slice('echo', ['10.244.9.9'], { marker: true, ports: [{ name: 'http', port: 80 }] }),
    slice('echo', ['10.244.8.8'], { ns: 'prod', ports: [{ name: 'http', port: 8080 }] }),
    slice('other', ['10.244.7.7'], { ports: [{ name: 'http', port: 8080 }] }),
    slice('echo', ['fd00::1'], {
      name: 'echo-v6',
      addressType: 'IPv6',
      ports: [{ name: 'http', port: 8080 }],
    }),
    slice('echo', ['10.244.6.6'], {
      name: 'echo-udp',
      ports: [{ name: 'http', port: 8080, protocol: 'UDP' }],
    }),
  ];
  const b = localBackends(s, slices);
  assert.deepEqual(b.get('http/TCP'), [
    { ip: '10.244.1.2', port: 8080, ready: true, serving: true, terminating: false },
    { ip: '10.244.1.11', port: 8080, ready: true, serving: true, terminating: false },
    {
      ip: '10.244.2.5',
      port: 8080,
      ready: false,
      serving: true,
      terminating: true,
      nodeName: 'n2',
    },
  ]);
  assert.deepEqual(
    b.get('metrics/TCP')!.map((x) => `${x.ip}:${x.port}`),
    ['10.244.1.2:9100', '10.244.1.11:9100'],
  );
});

test('localBackends: Kubernetes condition defaults (ready unset = ready; terminating = not ready)', () => {
  const s = svc('echo');
  const sl = slice('echo', [
    { ip: '10.0.0.1' },
    { ip: '10.0.0.2', ready: false },
    { ip: '10.0.0.3', terminating: true },
  ]);
  const got = localBackends(s, [sl]).get('/TCP')!;
  assert.deepEqual(
    got.map((b) => [b.ip, b.ready, b.serving]),
    [
      ['10.0.0.1', true, true],
      ['10.0.0.2', false, false],
      ['10.0.0.3', false, false],
    ],
  );
});

test('endpointSlicesForService: selector, named target ports resolved per pod, readiness, deterministic', () => {
  const s = svc('web', {
    ports: [{ name: 'http', port: 80, targetPort: 'web' }],
    selector: { app: 'web' },
  });
  const pods = [
    pod('a', '10.244.1.3', {
      labels: { app: 'web' },
      ports: [{ name: 'web', containerPort: 8080 }],
    }),
    pod('b', '10.244.1.2', {
      labels: { app: 'web' },
      ports: [{ name: 'web', containerPort: 8080 }],
      ready: false,
    }),
    pod('c', '10.244.2.2', {
      labels: { app: 'web' },
      ports: [{ name: 'web', containerPort: 9090 }],
      deleting: true,
    }),
    pod('d', '10.244.2.3', { labels: { app: 'web' }, ports: [] }),
    pod('e', undefined, { labels: { app: 'web' }, ports: [{ name: 'web', containerPort: 8080 }] }),
    pod('f', '10.244.3.3', {
      labels: { app: 'other' },
      ports: [{ name: 'web', containerPort: 8080 }],
    }),
    pod('g', '10.244.3.4', {
      ns: 'prod',
      labels: { app: 'web' },
      ports: [{ name: 'web', containerPort: 8080 }],
    }),
  ];
  const slices = endpointSlicesForService(s, pods);
  assert.equal(slices.length, 2);
  const byPort = new Map(slices.map((sl) => [sl.ports![0]!.port, sl]));
  const s8080 = byPort.get(8080)!;
  assert.deepEqual(
    s8080.endpoints.map((e) => [e.addresses[0], e.conditions?.ready]),
    [
      ['10.244.1.2', false],
      ['10.244.1.3', true],
    ],
  );
  assert.deepEqual(
    byPort
      .get(9090)!
      .endpoints.map((e) => [e.addresses[0], e.conditions?.ready, e.conditions?.terminating]),
    [['10.244.2.2', false, true]],
  );
  assert.equal(s8080.metadata!.labels!['kubernetes.io/service-name'], 'web');
  assert.deepEqual(
    endpointSlicesForService(s, [...pods].reverse()),
    slices,
    'order of pods does not matter',
  );
  // Feeding the slices back gives the backends.
  const b = localBackends(s, slices).get('http/TCP')!;
  assert.deepEqual(
    b.filter((x) => x.ready).map((x) => `${x.ip}:${x.port}`),
    ['10.244.1.3:8080'],
  );
  assert.deepEqual(endpointSlicesForService(svc('nosel', { selector: {} }), pods), []);
  assert.equal(endpointSlicesForService(s, [], {}).length, 1, 'an empty slice when no pod matches');
  const many = Array.from({ length: 5 }, (_, i) =>
    pod(`p${i}`, `10.244.5.${i + 1}`, {
      labels: { app: 'web' },
      ports: [{ name: 'web', containerPort: 8080 }],
    }),
  );
  assert.deepEqual(
    endpointSlicesForService(s, many, { maxEndpoints: 2 }).map((x) => x.endpoints.length),
    [2, 2, 1],
  );
});

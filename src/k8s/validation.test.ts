import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KubeObject } from './objects.js';
import { ApiError } from './status.js';
import { invalidMessage } from './testing.js';
import { isCIDR, validateObject } from './validation.js';

const svc = (spec: unknown, name = 'x'): unknown => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name },
  spec,
});
const pod = (spec: unknown, meta: Record<string, unknown> = { name: 'p' }): unknown => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: meta,
  spec,
});

describe('validation', () => {
  it('words port errors as Kubernetes does', () => {
    assert.equal(
      invalidMessage(svc({ ports: [{ port: 0 }] })),
      'Service "x" is invalid: spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive',
    );
    assert.equal(
      invalidMessage(svc({ ports: [{ port: 70000, targetPort: 8080 }] })),
      'Service "x" is invalid: spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive',
    );
    assert.match(
      invalidMessage(svc({ ports: [{ port: 80, protocol: 'HTTP' }] })),
      /spec.ports\[0\].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"/,
    );
    assert.match(invalidMessage(svc({})), /spec.ports: Required value/);
    assert.match(
      invalidMessage(svc({ ports: [{ port: 80 }, { port: 81 }] })),
      /spec.ports\[0\].name: Required value/,
    );
  });
  it('checks names, namespaces, labels and annotations', () => {
    assert.match(
      invalidMessage(svc({ ports: [{ port: 80 }] }, 'Bad_Name')),
      /metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 label/,
    );
    assert.match(
      invalidMessage(pod({ containers: [{ name: 'c', image: 'i' }] }, {})),
      /metadata.name: Required value/,
    );
    assert.match(
      invalidMessage(
        pod(
          { containers: [{ name: 'c', image: 'i' }] },
          { name: 'p', labels: { 'bad key!': 'v' } },
        ),
      ),
      /metadata.labels: Invalid value: "bad key!"/,
    );
    assert.match(
      invalidMessage(
        pod({ containers: [{ name: 'c', image: 'i' }] }, { name: 'p', labels: { ok: 'not ok!' } }),
      ),
      /metadata.labels: Invalid value: "not ok!": a valid label must be/,
    );
    assert.match(
      invalidMessage(
        pod({ containers: [{ name: 'c', image: 'i' }] }, { name: 'p', labels: { ok: true } }),
      ),
      /metadata.labels\[ok\]: Invalid value: true: must be a string/,
    );
    assert.match(
      invalidMessage(
        pod({ containers: [{ name: 'c', image: 'i' }] }, { name: 'p', namespace: 'No' }),
      ),
      /metadata.namespace: Invalid value: "No"/,
    );
    // Pods allow subdomain names; services do not.
    validateObject(pod({ containers: [{ name: 'c', image: 'i' }] }, { name: 'a.b' }) as KubeObject);
  });
  it('requires pod containers with names and images, and valid container ports', () => {
    assert.match(invalidMessage(pod({})), /spec.containers: Required value/);
    const msg = invalidMessage(
      pod({
        containers: [
          { name: 'c', ports: [{ containerPort: 0 }] },
          { name: 'c', image: 'x' },
        ],
      }),
    );
    assert.match(msg, /spec.containers\[0\].image: Required value/);
    assert.match(msg, /spec.containers\[0\].ports\[0\].containerPort: Invalid value: 0/);
    assert.match(msg, /spec.containers\[1\].name: Duplicate value: "c"/);
    assert.match(
      invalidMessage(pod({ containers: [{ name: 'c', image: 'i' }], restartPolicy: 'Sometimes' })),
      /spec.restartPolicy: Unsupported value: "Sometimes"/,
    );
  });
  it('checks that a Deployment selector matches its template', () => {
    const d = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'd' },
      spec: {
        selector: { matchLabels: { app: 'a' } },
        template: {
          metadata: { labels: { app: 'b' } },
          spec: { containers: [{ name: 'c', image: 'i' }] },
        },
      },
    };
    assert.match(
      invalidMessage(d),
      /Deployment.apps "d" is invalid: spec.template.metadata.labels: Invalid value: \{"app":"b"\}: `selector` does not match template `labels`/,
    );
    assert.match(
      invalidMessage({ ...d, spec: { template: d.spec.template } }),
      /spec.selector: Required value/,
    );
  });
  it('accepts the seed EndpointSlice and checks slice addresses', () => {
    validateObject({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: 's',
        labels: { 'kubernetes.io/service-name': 'x', 'cilium.io/global-service': 'true' },
      },
      addressType: 'IPv4',
      ports: [{ name: 'http', protocol: 'TCP', port: 80 }],
      endpoints: [],
    });
    assert.match(
      invalidMessage({
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: 's' },
        addressType: 'IPv4',
        endpoints: [{ addresses: ['10.0.0.300'] }],
      }),
      /endpoints\[0\].addresses\[0\]: Invalid value: "10.0.0.300": must be a valid IPv4 address/,
    );
    assert.match(
      invalidMessage({
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: 's' },
        endpoints: [],
      }),
      /addressType: Required value/,
    );
  });
  it('checks CIDRs in Nodes and CiliumNetworkPolicies', () => {
    assert.ok(
      isCIDR('10.244.0.0/16') &&
        isCIDR('fd00::/64') &&
        !isCIDR('10.0.0.0/33') &&
        !isCIDR('10.0.0.0'),
    );
    assert.match(
      invalidMessage({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: 'n' },
        spec: { podCIDR: '10.244.1.0/40' },
      }),
      /spec.podCIDR: Invalid value: "10.244.1.0\/40": must be a valid CIDR/,
    );
    assert.match(
      invalidMessage({
        apiVersion: 'cilium.io/v2',
        kind: 'CiliumNetworkPolicy',
        metadata: { name: 'p' },
        spec: { endpointSelector: {}, egress: [{ toCIDR: ['1.2.3.0/99'] }] },
      }),
      /spec.egress\[0\].toCIDR\[0\]: Invalid value: "1.2.3.0\/99": must be a valid CIDR/,
    );
  });
  it('refuses unknown kinds and apiVersions with 400 naming them', () => {
    for (const [o, re] of [
      [
        { apiVersion: 'v1', kind: 'ReplicationController', metadata: { name: 'x' } },
        /no matches for kind "ReplicationController" in version "v1"/,
      ],
      [
        { apiVersion: 'apps/v2', kind: 'Deployment', metadata: { name: 'x' } },
        /no matches for kind "Deployment" in version "apps\/v2"/,
      ],
      [{ kind: 'Pod', metadata: { name: 'x' } }, /Object 'apiVersion' is missing/],
      [{ apiVersion: 'v1', metadata: { name: 'x' } }, /Object 'Kind' is missing/],
    ] as const) {
      assert.throws(
        () => validateObject(o as unknown as KubeObject),
        (e: unknown) => e instanceof ApiError && e.httpCode === 400 && re.test(e.message),
      );
    }
  });
  it('lists every field error with causes', () => {
    try {
      validateObject(svc({ ports: [{ port: 0, protocol: 'X' }] }) as KubeObject);
      assert.fail('expected invalid');
    } catch (err) {
      assert.ok(err instanceof ApiError);
      assert.equal(err.httpCode, 422);
      assert.deepEqual(
        err.status.details?.causes?.map((c) => c.field),
        ['spec.ports[0].port', 'spec.ports[0].protocol'],
      );
    }
  });
});

it('spec and status must be objects (found by the API server fuzz test)', () => {
  for (const spec of [0, 's', [1]]) {
    assert.throws(
      () =>
        validateObject({
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name: 'x' },
          spec,
        } as unknown as KubeObject),
      /spec: Invalid value: .*must be an object/,
    );
  }
});

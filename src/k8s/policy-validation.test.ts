import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManifestError, parseManifest } from './manifest.js';
import type { KubeObject } from './objects.js';
import { resolveResourceName } from './resources.js';
import { invalidMessage } from './testing.js';
import { validateObject } from './validation.js';

const cnp = (spec: unknown, kind = 'CiliumNetworkPolicy'): unknown => ({
  apiVersion: 'cilium.io/v2',
  kind,
  metadata: { name: 'p', namespace: 'default' },
  spec,
});
const netpol = (spec: unknown): unknown => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name: 'np', namespace: 'default' },
  spec,
});

describe('policy validation', () => {
  it('accepts a full CNP, a CCNP and a NetworkPolicy', () => {
    const spec = {
      endpointSelector: {
        matchLabels: { app: 'server' },
        matchExpressions: [{ key: 'io.cilium.k8s.policy.cluster', operator: 'Exists' }],
      },
      ingress: [
        {
          fromEndpoints: [{ matchLabels: { 'k8s:app': 'client' } }],
          toPorts: [
            {
              ports: [
                { port: '80', protocol: 'TCP' },
                { port: 'http' },
                { port: '8000', endPort: 8100 },
              ],
            },
          ],
        },
        { fromEntities: ['cluster', 'host'] },
      ],
      egress: [
        { toCIDRSet: [{ cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] }] },
        { toCIDR: ['192.0.2.1'] },
      ],
      egressDeny: [{ toEntities: ['world'] }],
      enableDefaultDeny: { ingress: true, egress: false },
    };
    validateObject(cnp(spec) as KubeObject);
    validateObject(cnp(spec, 'CiliumClusterwideNetworkPolicy') as KubeObject);
    validateObject(
      netpol({
        podSelector: {},
        policyTypes: ['Ingress', 'Egress'],
        ingress: [
          {
            from: [
              { podSelector: { matchLabels: { a: 'b' } }, namespaceSelector: {} },
              { ipBlock: { cidr: '10.0.0.0/8', except: ['10.0.0.0/24'] } },
            ],
            ports: [
              { port: 80, endPort: 90, protocol: 'TCP' },
              { port: 'dns', protocol: 'UDP' },
            ],
          },
        ],
        egress: [{}],
      }) as KubeObject,
    );
  });

  it('names the field path of each kind of bad input', () => {
    for (const [spec, re] of [
      [
        { endpointSelector: {}, ingress: [{ fromEntities: ['wrld'] }] },
        /spec\.ingress\[0\]\.fromEntities\[0\]: Unsupported value: "wrld": supported values: "all", "cluster"/,
      ],
      [
        {
          endpointSelector: { matchExpressions: [{ key: 'a', operator: 'Equals', values: ['x'] }] },
        },
        /spec\.endpointSelector\.matchExpressions\[0\]\.operator: Unsupported value: "Equals"/,
      ],
      [
        {
          endpointSelector: {},
          egress: [{ toEndpoints: [{ matchExpressions: [{ key: 'a', operator: 'In' }] }] }],
        },
        /spec\.egress\[0\]\.toEndpoints\[0\]\.matchExpressions\[0\]\.values: Required value/,
      ],
      [
        { endpointSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: '0' }] }] }] },
        /spec\.ingress\[0\]\.toPorts\[0\]\.ports\[0\]\.port: Invalid value: "0": must be between 1 and 65535/,
      ],
      [
        { endpointSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: 70000 }] }] }] },
        /ports\[0\]\.port: Invalid value: 70000: must be between 1 and 65535/,
      ],
      [
        {
          endpointSelector: {},
          ingress: [{ toPorts: [{ ports: [{ port: '90', endPort: 80 }] }] }],
        },
        /spec\.ingress\[0\]\.toPorts\[0\]\.ports\[0\]\.endPort: Invalid value: 80: must be greater than or equal to port \(90\)/,
      ],
      [
        { endpointSelector: {}, egress: [{ toCIDR: ['10.0.0.0/33'] }] },
        /spec\.egress\[0\]\.toCIDR\[0\]: Invalid value: "10\.0\.0\.0\/33": must be a valid CIDR/,
      ],
      [
        { endpointSelector: {}, egress: [{ toCIDRSet: [{ cidr: 'ten/8' }] }] },
        /spec\.egress\[0\]\.toCIDRSet\[0\]\.cidr: Invalid value: "ten\/8"/,
      ],
      [
        {
          endpointSelector: {},
          egress: [{ toCIDRSet: [{ cidr: '10.0.0.0/8', except: ['11.0.0.0/16'] }] }],
        },
        /toCIDRSet\[0\]\.except\[0\]: Invalid value: "11\.0\.0\.0\/16": must be within cidr 10\.0\.0\.0\/8/,
      ],
      [
        {
          endpointSelector: {},
          ingress: [{ toPorts: [{ ports: [{ port: '80', protocol: 'TCPP' }] }] }],
        },
        /ports\[0\]\.protocol: Unsupported value: "TCPP": supported values: "ANY", "TCP", "UDP"/,
      ],
      [
        { endpointSelector: {}, ingress: [{ fromEndpoint: [{}] }] },
        /spec\.ingress\[0\]\.fromEndpoint: Invalid value: "fromEndpoint": unknown field/,
      ],
      [
        { endpointSelector: {}, egress: [{ toFQDNs: [{ matchName: 'x' }] }] },
        /spec\.egress\[0\]\.toFQDNs: Forbidden: not supported by Tendril/,
      ],
      [{ ingress: [] }, /spec\.endpointSelector: Required value/],
    ] as const) {
      assert.match(invalidMessage(cnp(spec)), re);
    }
    assert.match(
      invalidMessage({
        apiVersion: 'cilium.io/v2',
        kind: 'CiliumNetworkPolicy',
        metadata: { name: 'p' },
        specs: [
          { endpointSelector: {} },
          { endpointSelector: {}, egress: [{ toEntities: ['nope'] }] },
        ],
      }),
      /specs\[1\]\.egress\[0\]\.toEntities\[0\]: Unsupported value: "nope"/,
    );
    assert.match(invalidMessage(netpol({})), /spec\.podSelector: Required value/);
    assert.match(
      invalidMessage(netpol({ podSelector: {}, ingress: [{ ports: [{ port: 0 }] }] })),
      /spec\.ingress\[0\]\.ports\[0\]\.port: Invalid value: 0: must be between 1 and 65535/,
    );
    assert.match(
      invalidMessage(
        netpol({ podSelector: {}, egress: [{ to: [{ ipBlock: { cidr: '1.2.3.4/40' } }] }] }),
      ),
      /spec\.egress\[0\]\.to\[0\]\.ipBlock\.cidr: Invalid value: "1\.2\.3\.4\/40"/,
    );
    assert.match(
      invalidMessage(netpol({ podSelector: {}, policyTypes: ['Ingres'] })),
      /spec\.policyTypes\[0\]: Unsupported value: "Ingres"/,
    );
  });

  it('a multi-document manifest with one bad policy is refused as a whole', () => {
    const text = [
      'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: good}\nspec:\n  endpointSelector: {}\n  ingress: [{fromEntities: [cluster]}]',
      'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: good2}\nspec: {podSelector: {}}',
      'apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: bad}\nspec:\n  endpointSelector: {}\n  egress: [{toPorts: [{ports: [{port: "80", endPort: 79}]}]}]',
    ].join('\n---\n');
    assert.throws(
      () => parseManifest(text, 'p.yaml'),
      (err: unknown) =>
        err instanceof ManifestError &&
        /spec\.egress\[0\]\.toPorts\[0\]\.ports\[0\]\.endPort/.test(err.message),
    );
  });

  it('resolves the short names cnp, ccnp and netpol', () => {
    assert.equal(resolveResourceName('cnp').kind, 'CiliumNetworkPolicy');
    assert.equal(resolveResourceName('ccnp').kind, 'CiliumClusterwideNetworkPolicy');
    assert.equal(resolveResourceName('ccnp').namespaced, false);
    assert.equal(resolveResourceName('netpol').kind, 'NetworkPolicy');
    assert.equal(resolveResourceName('networkpolicies.networking.k8s.io').kind, 'NetworkPolicy');
  });
});

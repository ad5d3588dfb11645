import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseLabels } from '../identity/labels.js';
import type { KubeObject } from '../k8s/objects.js';
import {
  PolicyEngine,
  WILDCARD_IDENTITY,
  formatOrigin,
  lookupVerdict,
  type EndpointPolicy,
  type PolicyEngineOptions,
} from './engine.js';
import { PROTO, portRangePrefixes } from './ports.js';

const CLIENT = 256; // default/app=client, cluster c1
const SERVER = 257; // default/app=server, c1
const OTHER_NS_CLIENT = 258; // other/app=client, c1
const REMOTE_CLIENT = (2 << 16) | 256; // default/app=client, cluster c2
const CIDR_WIDE = 0x1000001; // cidr:10.0.0.0/8
const CIDR_NARROW = 0x1000002; // cidr:10.1.0.0/16

const pod = (app: string, ns: string, cluster: string, extra = '') =>
  parseLabels(
    `k8s:app=${app};k8s:io.kubernetes.pod.namespace=${ns};k8s:io.cilium.k8s.policy.cluster=${cluster}${extra}`,
  );

function engine(opts: Partial<PolicyEngineOptions> = {}): PolicyEngine {
  const e = new PolicyEngine({ clusterName: 'c1', ...opts });
  e.upsertIdentity(CLIENT, pod('client', 'default', 'c1'));
  e.upsertIdentity(
    SERVER,
    pod('server', 'default', 'c1', ';k8s:io.cilium.k8s.namespace.labels.team=a'),
  );
  e.upsertIdentity(
    OTHER_NS_CLIENT,
    pod('client', 'other', 'c1', ';k8s:io.cilium.k8s.namespace.labels.team=b'),
  );
  e.upsertIdentity(REMOTE_CLIENT, pod('client', 'default', 'c2'));
  e.upsertIdentity(CIDR_WIDE, parseLabels('cidr:10.0.0.0/8'));
  e.upsertIdentity(CIDR_NARROW, parseLabels('cidr:10.1.0.0/16'));
  e.upsertEndpoint({
    id: 1,
    identity: SERVER,
    namedPorts: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  });
  e.upsertEndpoint({ id: 2, identity: CLIENT });
  return e;
}

const cnp = (name: string, spec: unknown, namespace = 'default'): KubeObject => ({
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumNetworkPolicy',
  metadata: { name, namespace },
  spec,
});
const serverSel = { matchLabels: { app: 'server' } };

function policyOf(e: PolicyEngine, id = 1): EndpointPolicy {
  return e.computeAll().get(id)!;
}
function verdict(
  p: EndpointPolicy,
  dir: 'ingress' | 'egress',
  identity: number,
  proto: number = PROTO.TCP,
  port = 80,
) {
  return lookupVerdict(p[dir], identity, proto, port);
}
const allowed = (
  p: EndpointPolicy,
  dir: 'ingress' | 'egress',
  identity: number,
  proto: number = PROTO.TCP,
  port = 80,
) => verdict(p, dir, identity, proto, port).allowed;

describe('policy engine', () => {
  it('without policy nothing is enforced (allow-all wildcard)', () => {
    const p = policyOf(engine());
    assert.equal(p.ingress.enforced, false);
    assert.equal(p.egress.enforced, false);
    const v = verdict(p, 'ingress', OTHER_NS_CLIENT);
    assert.equal(v.allowed, true);
    assert.equal(v.entry?.origin.rule, 'not-enforced');
  });

  it('allow by labels: namespace-scoped, local cluster only, and the direction becomes default-deny', () => {
    const e = engine();
    e.upsertPolicy(
      cnp('allow-client', {
        endpointSelector: serverSel,
        ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }] }],
      }),
    );
    const p = policyOf(e);
    assert.equal(p.ingress.enforced, true);
    assert.equal(p.egress.enforced, false, 'egress untouched');
    const v = verdict(p, 'ingress', CLIENT);
    assert.equal(v.allowed, true);
    assert.equal(
      formatOrigin(v.entry!.origin),
      'CiliumNetworkPolicy default/allow-client spec.ingress[0]',
    );
    assert.equal(allowed(p, 'ingress', OTHER_NS_CLIENT), false, 'other namespace');
    assert.equal(
      allowed(p, 'ingress', REMOTE_CLIENT),
      false,
      'other cluster (policy-default-local-cluster)',
    );
    assert.equal(verdict(p, 'ingress', OTHER_NS_CLIENT).reason, 'default-deny');
    assert.equal(allowed(p, 'ingress', 1), true, 'allow-localhost');
    assert.equal(allowed(p, 'egress', OTHER_NS_CLIENT), true);
    // the client endpoint is not selected
    assert.equal(policyOf(e, 2).ingress.enforced, false);
  });

  it('cluster label: Exists matches every cluster, a name one cluster; defaultLocalCluster=false restores the old default', () => {
    const e = engine();
    e.upsertPolicy(
      cnp('any-cluster', {
        endpointSelector: serverSel,
        ingress: [
          {
            fromEndpoints: [
              {
                matchLabels: { app: 'client' },
                matchExpressions: [{ key: 'io.cilium.k8s.policy.cluster', operator: 'Exists' }],
              },
            ],
          },
        ],
      }),
    );
    let p = policyOf(e);
    assert.equal(allowed(p, 'ingress', REMOTE_CLIENT), true);
    assert.equal(allowed(p, 'ingress', CLIENT), true);
    e.upsertPolicy(
      cnp('any-cluster', {
        endpointSelector: serverSel,
        ingress: [
          {
            fromEndpoints: [
              { matchLabels: { app: 'client', 'io.cilium.k8s.policy.cluster': 'c2' } },
            ],
          },
        ],
      }),
    );
    p = policyOf(e);
    assert.equal(allowed(p, 'ingress', REMOTE_CLIENT), true);
    assert.equal(allowed(p, 'ingress', CLIENT), false);

    const old = engine({ defaultLocalCluster: false });
    old.upsertPolicy(
      cnp('x', {
        endpointSelector: serverSel,
        ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }] }],
      }),
    );
    assert.equal(allowed(policyOf(old), 'ingress', REMOTE_CLIENT), true);
  });

  it('a selector naming the namespace label is not scoped to the policy namespace', () => {
    const e = engine();
    e.upsertPolicy(
      cnp('from-other', {
        endpointSelector: serverSel,
        ingress: [
          { fromEndpoints: [{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'other' } }] },
        ],
      }),
    );
    const p = policyOf(e);
    assert.equal(allowed(p, 'ingress', OTHER_NS_CLIENT), true);
    assert.equal(allowed(p, 'ingress', CLIENT), false);
  });

  it('ports: numeric, endPort ranges, named ports, protocols, ICMP only with L3-only rules', () => {
    const e = engine();
    e.upsertPolicy(
      cnp('ports', {
        endpointSelector: serverSel,
        ingress: [
          {
            fromEndpoints: [{ matchLabels: { app: 'client' } }],
            toPorts: [
              {
                ports: [
                  { port: '80', protocol: 'TCP' },
                  { port: '8000', endPort: 8100, protocol: 'UDP' },
                  { port: 'http' },
                ],
              },
            ],
          },
        ],
      }),
    );
    const p = policyOf(e);
    assert.equal(allowed(p, 'ingress', CLIENT, PROTO.TCP, 80), true);
    assert.equal(allowed(p, 'ingress', CLIENT, PROTO.TCP, 81), false);
    assert.equal(allowed(p, 'ingress', CLIENT, PROTO.UDP, 80), false);
    for (const port of [8000, 8050, 8063, 8064, 8100])
      assert.equal(allowed(p, 'ingress', CLIENT, PROTO.UDP, port), true, `${port}`);
    assert.equal(allowed(p, 'ingress', CLIENT, PROTO.UDP, 7999), false);
    assert.equal(allowed(p, 'ingress', CLIENT, PROTO.UDP, 8101), false);
    assert.equal(allowed(p, 'ingress', CLIENT, PROTO.TCP, 8080), true, 'named port http');
    assert.equal(allowed(p, 'ingress', CLIENT, PROTO.ICMP, 0), false, 'ICMP needs an L3-only rule');
    e.upsertPolicy(
      cnp('l3', {
        endpointSelector: serverSel,
        ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }] }],
      }),
    );
    assert.equal(allowed(policyOf(e), 'ingress', CLIENT, PROTO.ICMP, 0), true);
  });

  it('port ranges split into the fewest prefixes', () => {
    assert.deepEqual(portRangePrefixes(80, 80), [{ port: 80, bits: 16 }]);
    assert.deepEqual(portRangePrefixes(8000, 8023), [
      { port: 8000, bits: 12 },
      { port: 8016, bits: 13 },
    ]);
    assert.deepEqual(portRangePrefixes(0, 65535), [{ port: 0, bits: 0 }]);
    const parts = portRangePrefixes(1, 65535);
    assert.equal(
      parts.reduce((n, x) => n + (1 << (16 - x.bits)), 0),
      65535,
    );
  });

  it('deny wins over every allow, naming the deny rule', () => {
    const e = engine();
    e.upsertPolicy(
      cnp('allow-cluster', {
        endpointSelector: serverSel,
        ingress: [
          { fromEntities: ['cluster'] },
          { toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] },
        ],
      }),
    );
    e.upsertPolicy(
      cnp('deny-client-80', {
        endpointSelector: serverSel,
        ingressDeny: [
          {
            fromEndpoints: [{ matchLabels: { app: 'client' } }],
            toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }],
          },
        ],
      }),
    );
    const p = policyOf(e);
    const v = verdict(p, 'ingress', CLIENT, PROTO.TCP, 80);
    assert.equal(v.allowed, false);
    assert.equal(v.reason, 'deny');
    assert.equal(
      formatOrigin(v.entry!.origin),
      'CiliumNetworkPolicy default/deny-client-80 spec.ingressDeny[0]',
    );
    assert.equal(allowed(p, 'ingress', CLIENT, PROTO.TCP, 81), true, 'cluster allow elsewhere');
    assert.equal(
      allowed(p, 'ingress', OTHER_NS_CLIENT, PROTO.TCP, 80),
      true,
      'other ns client via the L4-only rule',
    );
    // a wildcard deny beats an identity's allow
    e.upsertPolicy(
      cnp('deny-all-tcp', {
        endpointSelector: serverSel,
        ingressDeny: [{ toPorts: [{ ports: [{ port: '81', endPort: 90, protocol: 'TCP' }] }] }],
      }),
    );
    const q = policyOf(e);
    assert.equal(allowed(q, 'ingress', CLIENT, PROTO.TCP, 85), false);
    assert.ok(
      ![...q.ingress.entries.values()].some(
        (x) => !x.deny && x.identity === CLIENT && x.protocol === PROTO.TCP && x.port === 85,
      ),
    );
  });

  it('entities: world (reserved + CIDR identities), cluster (local only), host, all', () => {
    const e = engine();
    e.upsertPolicy(
      cnp('world', {
        endpointSelector: serverSel,
        egress: [{ toEntities: ['world'] }],
        ingress: [{ fromEntities: ['cluster'] }],
      }),
    );
    const p = policyOf(e);
    assert.equal(allowed(p, 'egress', 2), true);
    assert.equal(allowed(p, 'egress', CIDR_WIDE), true);
    assert.equal(allowed(p, 'egress', CLIENT), false);
    assert.equal(allowed(p, 'ingress', CLIENT), true);
    assert.equal(allowed(p, 'ingress', OTHER_NS_CLIENT), true);
    assert.equal(allowed(p, 'ingress', REMOTE_CLIENT), false, 'cluster = this cluster');
    assert.equal(allowed(p, 'ingress', 6), true, 'remote-node is part of cluster');
    assert.equal(allowed(p, 'ingress', 2), false);
    e.upsertPolicy(
      cnp('world', { endpointSelector: serverSel, egress: [{ toEntities: ['all'] }] }),
    );
    const q = policyOf(e);
    assert.ok(q.egress.entries.has(`${WILDCARD_IDENTITY}/0/0/0`));
    assert.equal(allowed(q, 'egress', REMOTE_CLIENT), true);
    e.upsertPolicy(
      cnp('world', {
        endpointSelector: serverSel,
        egress: [{ toEntities: ['host', 'kube-apiserver'] }],
      }),
    );
    const h = policyOf(e);
    assert.equal(allowed(h, 'egress', 1), true);
    assert.equal(allowed(h, 'egress', 7), true);
    assert.equal(allowed(h, 'egress', 6), false);
  });

  it('CIDR with except, toCIDR, NetworkPolicy ipBlock', () => {
    const e = engine();
    e.upsertPolicy(
      cnp('cidr', {
        endpointSelector: serverSel,
        egress: [{ toCIDRSet: [{ cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] }] }],
      }),
    );
    let p = policyOf(e);
    assert.equal(allowed(p, 'egress', CIDR_WIDE), true);
    assert.equal(allowed(p, 'egress', CIDR_NARROW), false, 'except');
    assert.equal(allowed(p, 'egress', 2), false);
    e.upsertPolicy(
      cnp('cidr', { endpointSelector: serverSel, egress: [{ toCIDR: ['10.1.0.0/16'] }] }),
    );
    p = policyOf(e);
    assert.equal(allowed(p, 'egress', CIDR_NARROW), true);
    assert.equal(allowed(p, 'egress', CIDR_WIDE), false);
  });

  it('enableDefaultDeny false adds allows without default-deny; deny rules still apply', () => {
    const e = engine();
    e.upsertPolicy(
      cnp('soft', {
        endpointSelector: serverSel,
        enableDefaultDeny: { ingress: false },
        ingressDeny: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }] }],
      }),
    );
    const p = policyOf(e);
    assert.equal(p.ingress.enforced, false);
    assert.equal(allowed(p, 'ingress', OTHER_NS_CLIENT), true);
    assert.equal(allowed(p, 'ingress', CLIENT), false);
  });

  it('an empty rule makes the direction default-deny with no allow', () => {
    const e = engine();
    e.upsertPolicy(cnp('deny-all', { endpointSelector: {}, ingress: [{}], egress: [{}] }));
    const p = policyOf(e, 2);
    assert.equal(p.ingress.enforced, true);
    assert.equal(p.egress.enforced, true);
    assert.equal(allowed(p, 'egress', SERVER), false);
    assert.equal(allowed(p, 'ingress', SERVER), false);
    assert.deepEqual(
      p.ingress.policies.map((x) => x.name),
      ['deny-all'],
    );
    // deleting the policy restores allow-all
    assert.equal(
      e.deletePolicy({ kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'deny-all' }),
      true,
    );
    assert.equal(allowed(policyOf(e, 2), 'egress', SERVER), true);
  });

  it('enforcement always and never', () => {
    const always = engine({ enforcement: 'always' });
    const p = policyOf(always);
    assert.equal(p.ingress.enforced, true);
    assert.equal(allowed(p, 'ingress', CLIENT), false);
    assert.equal(allowed(p, 'egress', CLIENT), false);
    const never = engine({ enforcement: 'never' });
    never.upsertPolicy(
      cnp('deny', { endpointSelector: serverSel, ingressDeny: [{ fromEntities: ['all'] }] }),
    );
    const q = policyOf(never);
    assert.equal(q.ingress.enforced, false);
    assert.equal(allowed(q, 'ingress', CLIENT), true);
  });

  it('identities coming and going update the selections (remote pod appears, then leaves)', () => {
    const e = engine();
    e.upsertPolicy(
      cnp('x', {
        endpointSelector: serverSel,
        ingress: [
          {
            fromEndpoints: [
              {
                matchLabels: { app: 'client' },
                matchExpressions: [{ key: 'io.cilium.k8s.policy.cluster', operator: 'Exists' }],
              },
            ],
          },
        ],
      }),
    );
    const late = (3 << 16) | 300;
    assert.equal(allowed(policyOf(e), 'ingress', late), false);
    e.upsertIdentity(late, pod('client', 'default', 'c3'));
    assert.equal(allowed(policyOf(e), 'ingress', late), true);
    e.deleteIdentity(late);
    assert.equal(allowed(policyOf(e), 'ingress', late), false);
    assert.equal(e.cache.selectorCount, 1);
    e.deletePolicy({ kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'x' });
    assert.equal(e.cache.selectorCount, 0, 'selectors released with their policy');
  });

  it('CiliumClusterwideNetworkPolicy selects in every namespace', () => {
    const e = engine();
    e.upsertPolicy({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumClusterwideNetworkPolicy',
      metadata: { name: 'cw' },
      spec: {
        endpointSelector: serverSel,
        ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }] }],
      },
    });
    const p = policyOf(e);
    assert.equal(allowed(p, 'ingress', CLIENT), true);
    assert.equal(allowed(p, 'ingress', OTHER_NS_CLIENT), true);
    assert.equal(allowed(p, 'ingress', REMOTE_CLIENT), false);
    assert.equal(allowed(p, 'ingress', 2), false);
  });

  it('NetworkPolicy: podSelector, namespaceSelector, ipBlock, ports and policyTypes', () => {
    const e = engine();
    const np = (name: string, spec: unknown): KubeObject => ({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name, namespace: 'default' },
      spec,
    });
    e.upsertPolicy(
      np('web', {
        podSelector: { matchLabels: { app: 'server' } },
        ingress: [
          { from: [{ podSelector: { matchLabels: { app: 'client' } } }], ports: [{ port: 80 }] },
          {
            from: [{ namespaceSelector: { matchLabels: { team: 'b' } } }],
            ports: [{ port: 'http' }],
          },
          { from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } }] },
        ],
      }),
    );
    let p = policyOf(e);
    assert.equal(p.ingress.enforced, true);
    assert.equal(p.egress.enforced, false, 'policyTypes defaults to Ingress');
    assert.equal(allowed(p, 'ingress', CLIENT, PROTO.TCP, 80), true);
    assert.equal(allowed(p, 'ingress', CLIENT, PROTO.UDP, 80), false, 'protocol defaults to TCP');
    assert.equal(allowed(p, 'ingress', OTHER_NS_CLIENT, PROTO.TCP, 80), false);
    assert.equal(
      allowed(p, 'ingress', OTHER_NS_CLIENT, PROTO.TCP, 8080),
      true,
      'namespace labels + named port',
    );
    assert.equal(allowed(p, 'ingress', CIDR_WIDE, PROTO.UDP, 53), true);
    assert.equal(allowed(p, 'ingress', CIDR_NARROW, PROTO.UDP, 53), false);
    e.upsertPolicy(np('egress-none', { podSelector: {}, policyTypes: ['Egress'] }));
    p = policyOf(e);
    assert.equal(p.egress.enforced, true);
    assert.equal(allowed(p, 'egress', CLIENT), false);
    e.upsertPolicy(np('egress-all', { podSelector: {}, policyTypes: ['Egress'], egress: [{}] }));
    assert.equal(
      allowed(policyOf(e), 'egress', REMOTE_CLIENT),
      true,
      'an empty egress rule allows everything',
    );
  });
});

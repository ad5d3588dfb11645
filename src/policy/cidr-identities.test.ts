import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseLabels } from '../identity/labels.js';
import {
  CidrIdentityAllocator,
  LOCAL_IDENTITY_SCOPE,
  cidrIdentityLabels,
  policyCidrPrefixes,
} from './cidr-identities.js';
import { PolicyEngine, lookupVerdict } from './engine.js';
import { PROTO } from './ports.js';
import { parseV4Prefix, v4Within } from './selector.js';
import { ReservedIdentity } from '../identity/numeric.js';

const CLIENT = 256;

/** The ipcache's longest-prefix match over the CIDR identities (a miss is world). */
function ipcacheLookup(entries: { prefix: string; identity: number }[], ip: string): number {
  const addr = parseV4Prefix(ip)!;
  let best: { len: number; identity: number } | undefined;
  for (const e of entries) {
    const p = parseV4Prefix(e.prefix)!;
    if (v4Within(addr, p) && (!best || p.len > best.len))
      best = { len: p.len, identity: e.identity };
  }
  return best?.identity ?? ReservedIdentity.world;
}

describe('CIDR identities', () => {
  it('collects the prefixes policies name (cidr and except), canonical, without /0', () => {
    const e = new PolicyEngine({ clusterName: 'c1' });
    e.upsertPolicy({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'p', namespace: 'default' },
      spec: {
        endpointSelector: {},
        egress: [
          { toCIDR: ['192.0.2.7', '10.1.2.3/16'] },
          { toCIDRSet: [{ cidr: '0.0.0.0/0', except: ['10.0.0.0/8'] }] },
        ],
      },
    });
    e.upsertPolicy({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'n', namespace: 'default' },
      spec: {
        podSelector: {},
        policyTypes: ['Ingress'],
        ingress: [
          { from: [{ ipBlock: { cidr: '198.51.100.0/24', except: ['198.51.100.128/25'] } }] },
        ],
      },
    });
    assert.deepEqual(policyCidrPrefixes(e.policySpecs()), [
      '10.0.0.0/8',
      '10.1.0.0/16',
      '192.0.2.7/32',
      '198.51.100.0/24',
      '198.51.100.128/25',
    ]);
  });

  it('allocates node-local identities (bit 24), stable while used, reused after release', () => {
    const a = new CidrIdentityAllocator();
    const first = a.sync(['10.0.0.0/8', '192.0.2.0/24']);
    assert.deepEqual(first.removed, []);
    const ids = new Map(first.added.map((c) => [c.prefix, c.identity]));
    for (const id of ids.values()) {
      assert.equal(id & LOCAL_IDENTITY_SCOPE, LOCAL_IDENTITY_SCOPE);
      assert.ok(id > LOCAL_IDENTITY_SCOPE);
    }
    assert.equal(new Set(ids.values()).size, 2);
    const second = a.sync(['192.0.2.0/24', '198.51.100.0/24']);
    assert.deepEqual(second.removed, [{ prefix: '10.0.0.0/8', identity: ids.get('10.0.0.0/8') }]);
    assert.deepEqual(second.added, [
      { prefix: '198.51.100.0/24', identity: ids.get('10.0.0.0/8') },
    ]);
    assert.equal(
      a.list().find((c) => c.prefix === '192.0.2.0/24')?.identity,
      ids.get('192.0.2.0/24'),
      'kept its identity',
    );
    assert.deepEqual(a.sync([]).added, []);
    assert.deepEqual(a.list(), []);
  });

  it('with the prefixes in the ipcache, toCIDRSet allows inside the CIDR and except excludes', () => {
    const e = new PolicyEngine({ clusterName: 'c1' });
    e.upsertIdentity(
      CLIENT,
      parseLabels(
        'k8s:app=client;k8s:io.kubernetes.pod.namespace=default;k8s:io.cilium.k8s.policy.cluster=c1',
      ),
    );
    e.upsertEndpoint({ id: 1, identity: CLIENT });
    e.upsertPolicy({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'egress-cidr', namespace: 'default' },
      spec: {
        endpointSelector: { matchLabels: { app: 'client' } },
        egress: [
          {
            toCIDRSet: [{ cidr: '192.0.2.0/24', except: ['192.0.2.128/25'] }],
            toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }],
          },
        ],
      },
    });
    const a = new CidrIdentityAllocator();
    for (const c of a.sync(policyCidrPrefixes(e.policySpecs())).added)
      e.upsertIdentity(c.identity, cidrIdentityLabels(c.prefix));
    const egress = e.computeAll().get(1)!.egress;
    const to = (ip: string, port = 80) =>
      lookupVerdict(egress, ipcacheLookup(a.list(), ip), PROTO.TCP, port).allowed;
    assert.equal(egress.enforced, true);
    assert.equal(to('192.0.2.5'), true, 'inside the CIDR');
    assert.equal(to('192.0.2.5', 81), false, 'another port');
    assert.equal(to('192.0.2.200'), false, 'inside except');
    assert.equal(to('198.51.100.1'), false, 'outside: world');
  });
});

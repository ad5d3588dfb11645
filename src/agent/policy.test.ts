import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeDatapath } from '../datapath/fake.js';
import type { KubeObject } from '../k8s/objects.js';
import { AgentPolicy } from './policy.js';

const labels = (app: string, cluster: string) =>
  `k8s:app=${app};k8s:io.cilium.k8s.policy.cluster=${cluster};k8s:io.kubernetes.pod.namespace=default`;
const policy: KubeObject = {
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumNetworkPolicy',
  metadata: { name: 'allow-client', namespace: 'default' },
  spec: {
    endpointSelector: { matchLabels: { app: 'server' } },
    ingress: [
      {
        fromEndpoints: [
          {
            matchLabels: { app: 'client' },
            matchExpressions: [{ key: 'io.cilium.k8s.policy.cluster', operator: 'Exists' }],
          },
        ],
        toPorts: [{ ports: [{ port: 'http', protocol: 'TCP' }] }],
      },
    ],
  },
};

/**
 * An AgentPolicy of cluster c1 over a FakeDatapath (1 ms batches) whose CIDR
 * identities, as it last handed them to the ipcache, are in `seen.cidrs`.
 */
function policyWithCidrs() {
  const dp = new FakeDatapath();
  const seen = { cidrs: [] as { prefix: string; identity: number }[] };
  const ap = new AgentPolicy({
    clusterName: 'c1',
    datapath: dp,
    batchMs: 1,
    onCidrIdentities: (all) => (seen.cidrs = all),
  });
  return { dp, ap, seen };
}

describe('agent policy', () => {
  it('computes policy for local endpoints from policies, local and remote identities, and writes it with retries', async () => {
    const dp = new FakeDatapath();
    const ap = new AgentPolicy({ clusterName: 'c1', datapath: dp, batchMs: 1 });
    ap.namedPortsOf = (ns, name) =>
      name === 'server' ? [{ name: 'http', port: 8080, protocol: 'TCP' }] : undefined;
    try {
      ap.upsertIdentity(256, labels('client', 'c1'));
      ap.upsertIdentity(257, labels('server', 'c1'));
      ap.upsertEndpoint({ id: 7, identity: 257, podNamespace: 'default', podName: 'server' });
      ap.upsertEndpoint({ id: 8, identity: 0, podNamespace: 'default', podName: 'pending' });
      await ap.idle();
      assert.equal(dp.policies.get(7)?.ingress.enforced, false, 'no policy yet');
      assert.equal(dp.policies.has(8), false, 'an endpoint without identity gets no policy');

      dp.failNext('upsertEndpointPolicy');
      ap.upsertPolicy(policy);
      await ap.idle();
      await new Promise((r) => setTimeout(r, 300));
      await ap.idle();
      let p = dp.policies.get(7)!;
      assert.equal(p.ingress.enforced, true);
      assert.deepEqual(ap.summary(), { enforcement: 'default', endpoints: 1, enforced: 1 });
      assert.ok(
        p.ingress.entries.some(
          (e) =>
            e.identity === 256 &&
            e.protocol === 6 &&
            e.port === 8080 &&
            e.bits === 16 &&
            !e.deny &&
            e.rule === 'CiliumNetworkPolicy default/allow-client spec.ingress[0]',
        ),
        JSON.stringify(p.ingress.entries),
      );
      assert.ok(
        dp.log.some((l) => l.startsWith('upsertEndpointPolicy') && l.endsWith('FAILED')),
        'a failure was retried',
      );

      // A remote cluster's pod appears through the mesh: allowed (Exists), with its own identity.
      const remote = (2 << 16) | 300;
      ap.setClusterIdentities('c2', new Map([[remote, labels('client', 'c2')]]));
      await ap.idle();
      p = dp.policies.get(7)!;
      assert.ok(p.ingress.entries.some((e) => e.identity === remote));
      ap.setClusterIdentities('c2', new Map());
      await ap.idle();
      assert.ok(!dp.policies.get(7)!.ingress.entries.some((e) => e.identity === remote));

      ap.deletePolicy({ kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'allow-client' });
      await ap.idle();
      assert.equal(dp.policies.get(7)!.ingress.enforced, false);

      ap.upsertPolicy({ ...policy, metadata: { name: 'bad', namespace: 'default' }, kind: 'Pod' });
      assert.match(ap.problems.get('Pod default/bad') ?? '', /not a network policy kind/);

      ap.deleteEndpoint(7);
      await ap.idle();
      assert.equal(dp.policies.has(7), false);
    } finally {
      ap.stop();
    }
  });

  it('allocates CIDR identities for the prefixes policies name and hands them to the ipcache', async () => {
    const { dp, ap, seen } = policyWithCidrs();
    try {
      ap.upsertIdentity(256, labels('client', 'c1'));
      ap.upsertEndpoint({ id: 7, identity: 256, podNamespace: 'default', podName: 'client' });
      const cidrPolicy: KubeObject = {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: 'to-net', namespace: 'default' },
        spec: {
          podSelector: { matchLabels: { app: 'client' } },
          policyTypes: ['Egress'],
          egress: [{ to: [{ ipBlock: { cidr: '192.0.2.0/24', except: ['192.0.2.128/25'] } }] }],
        },
      };
      ap.upsertPolicy(cidrPolicy);
      await ap.idle();
      assert.deepEqual(seen.cidrs.map((c) => c.prefix).sort(), ['192.0.2.0/24', '192.0.2.128/25']);
      const id = (prefix: string) => seen.cidrs.find((c) => c.prefix === prefix)!.identity;
      const egress = dp.policies.get(7)!.egress;
      assert.equal(egress.enforced, true);
      assert.ok(egress.entries.some((e) => e.identity === id('192.0.2.0/24') && !e.deny));
      assert.ok(
        !egress.entries.some((e) => e.identity === id('192.0.2.128/25')),
        'the except prefix is not allowed',
      );
      ap.deletePolicy({ kind: 'NetworkPolicy', namespace: 'default', name: 'to-net' });
      await ap.idle();
      assert.deepEqual(seen.cidrs, [], 'released with the last policy naming them');
    } finally {
      ap.stop();
    }
  });

  it('hold(): nothing reaches the datapath until release(); restored CIDR identities keep their numbers', async () => {
    const { dp, ap, seen } = policyWithCidrs();
    try {
      ap.hold();
      // a restart: the previous run's CIDR identities come back from the ipcache
      ap.restoreCidrIdentities([
        { prefix: '192.0.2.0/24', identity: (1 << 24) | 7 },
        { prefix: '203.0.113.0/24', identity: (1 << 24) | 3 },
      ]);
      assert.equal(seen.cidrs.length, 2, 'restored entries stay in the ipcache meanwhile');
      ap.upsertEndpoint({ id: 7, identity: 256, podNamespace: 'default', podName: 'client' });
      await new Promise((r) => setTimeout(r, 30));
      await ap.idle();
      assert.equal(
        dp.policies.size,
        0,
        'an endpoint without its policies and identities: no write',
      );
      ap.upsertIdentity(256, labels('client', 'c1'));
      ap.upsertPolicy({
        apiVersion: 'cilium.io/v2',
        kind: 'CiliumNetworkPolicy',
        metadata: { name: 'to-net', namespace: 'default' },
        spec: {
          endpointSelector: { matchLabels: { app: 'client' } },
          egress: [{ toCIDR: ['192.0.2.0/24', '198.51.100.0/24'] }],
        },
      });
      await new Promise((r) => setTimeout(r, 30));
      await ap.idle();
      assert.equal(dp.policies.size, 0, 'still held');
      ap.release();
      await ap.idle();
      const id = (prefix: string) => seen.cidrs.find((c) => c.prefix === prefix)?.identity;
      assert.equal(id('192.0.2.0/24'), (1 << 24) | 7, 'kept its number');
      assert.equal(id('203.0.113.0/24'), undefined, 'no policy names it any more: released');
      assert.ok(id('198.51.100.0/24')! > 1 << 24 && id('198.51.100.0/24') !== ((1 << 24) | 7));
      const egress = dp.policies.get(7)!.egress;
      assert.equal(egress.enforced, true);
      assert.ok(egress.entries.some((e) => e.identity === ((1 << 24) | 7)));
    } finally {
      ap.stop();
    }
  });
});

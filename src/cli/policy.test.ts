import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeDatapath } from '../datapath/fake.js';
import { AgentPolicy } from '../agent/policy.js';
import { ipcacheIdentity, parseDport, traceReport } from './policy.js';

const labels = (app: string) =>
  `k8s:app=${app};k8s:io.cilium.k8s.policy.cluster=c1;k8s:io.kubernetes.pod.namespace=default`;

async function reports(policies: object[]) {
  const ap = new AgentPolicy({ clusterName: 'c1', datapath: new FakeDatapath(), batchMs: 1 });
  try {
    ap.upsertIdentity(256, labels('client'));
    ap.upsertIdentity(257, labels('server'));
    ap.upsertEndpoint({ id: 1, identity: 256, podNamespace: 'default', podName: 'client' });
    ap.upsertEndpoint({ id: 2, identity: 257, podNamespace: 'default', podName: 'server' });
    for (const p of policies) ap.upsertPolicy(p as never);
    await ap.idle();
    const r = ap.report();
    return {
      client: r.find((x) => x.podName === 'client')!,
      server: r.find((x) => x.podName === 'server')!,
    };
  } finally {
    ap.stop();
  }
}
const cnp = (name: string, spec: unknown) => ({
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumNetworkPolicy',
  metadata: { name, namespace: 'default' },
  spec,
});

describe('tendril policy trace', () => {
  it('parses --dport', () => {
    assert.deepEqual(parseDport('80/TCP'), { protocol: 6, port: 80 });
    assert.deepEqual(parseDport('53/udp'), { protocol: 17, port: 53 });
    assert.deepEqual(parseDport('8080'), { protocol: 6, port: 8080 });
    assert.deepEqual(parseDport('ICMP'), { protocol: 1, port: 0 });
    assert.throws(() => parseDport('0/TCP'), /expected PORT/);
    assert.throws(() => parseDport('80/GRE'), /expected PORT/);
  });

  it('says no policy selects the destination, then names the allowing rule, then the deny rule', async () => {
    let r = await reports([]);
    const t = (x: typeof r, port = 80) =>
      traceReport({
        src: x.client,
        dst: x.server,
        srcIdentity: 256,
        protocol: 6,
        port,
        from: 'default/client',
        to: 'default/server',
      });
    assert.match(
      t(r).lines.join('\n'),
      /ingress of default\/server: ALLOWED: no policy selects the destination\nverdict: ALLOWED/,
    );

    const allow = cnp('allow-80', {
      endpointSelector: { matchLabels: { app: 'server' } },
      ingress: [
        {
          fromEndpoints: [{ matchLabels: { app: 'client' } }],
          toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }],
        },
      ],
    });
    r = await reports([allow]);
    assert.match(
      t(r).lines.join('\n'),
      /ALLOWED by CiliumNetworkPolicy default\/allow-80 spec\.ingress\[0\]/,
    );
    const denied = t(r, 81);
    assert.equal(denied.allowed, false);
    assert.match(
      denied.lines.join('\n'),
      /DENIED: no rule allows identity 256.* on TCP\/81 \(default deny by CiliumNetworkPolicy default\/allow-80\)/,
    );

    r = await reports([
      allow,
      cnp('deny', {
        endpointSelector: { matchLabels: { app: 'server' } },
        ingressDeny: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }] }],
      }),
    ]);
    const d = t(r);
    assert.equal(d.allowed, false);
    assert.match(
      d.lines.join('\n'),
      /DENIED by CiliumNetworkPolicy default\/deny spec\.ingressDeny\[0\] \(deny rules win\)/,
    );
  });

  it('resolves --to-ip through the ipcache (longest prefix, world when none) and traces the egress alone', async () => {
    const ipcache = [
      { prefix: '10.2.0.0/16', identity: 300 },
      { prefix: '10.2.1.5/32', identity: 131328 },
      { prefix: '172.30.2.11/32', identity: 6 },
    ];
    assert.equal(ipcacheIdentity(ipcache, '10.2.1.5'), 131328);
    assert.equal(ipcacheIdentity(ipcache, '10.2.9.9'), 300);
    assert.equal(ipcacheIdentity(ipcache, '8.8.8.8'), 2);
    const r = await reports([
      cnp('out', {
        endpointSelector: { matchLabels: { app: 'client' } },
        egress: [{ toEntities: ['world'] }],
      }),
    ]);
    const t = (ip: string) =>
      traceReport({
        src: r.client,
        dstIdentity: ipcacheIdentity(ipcache, ip),
        srcIdentity: 256,
        protocol: 6,
        port: 443,
        from: 'default/client',
        to: ip,
      });
    const world = t('8.8.8.8');
    assert.equal(world.allowed, true);
    assert.match(
      world.lines.join('\n'),
      /egress of default\/client: ALLOWED by CiliumNetworkPolicy default\/out spec\.egress\[0\]/,
    );
    assert.match(world.lines.join('\n'), /ingress of 8\.8\.8\.8: not traced/);
    const remote = t('10.2.1.5');
    assert.equal(remote.allowed, false);
    assert.match(remote.lines.join('\n'), /DENIED: no rule allows identity 131328/);
  });
});

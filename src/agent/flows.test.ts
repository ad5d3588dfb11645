import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  EventFlags,
  EventType,
  encodeEvent,
  type DatapathEvent,
} from '../datapath/linux/events.js';
import { FlowRing } from '../observe/ring.js';
import { AgentFlowMetadata, policyOfRuleText, workloadOf } from './flow-metadata.js';
import { FlowBuilder } from './flows.js';
import { ruleIdOf } from '../datapath/linux/policy/policy-datapath.js';
import type { EndpointInfo } from './api/types.js';

const REMOTE_ID = (2 << 16) | 300; // cluster 2's identity 300

/** The local endpoint the flows of these tests reach: echo's pod in namespace demo. */
const ECHO_ENDPOINT: EndpointInfo = {
  id: 5,
  containerId: 'c',
  ifName: 'eth0',
  podNamespace: 'demo',
  podName: 'echo-7d4f9c6b5-abcde',
  ip: '10.1.0.5',
  hostIfName: 'lxc5',
  identity: (1 << 16) | 100,
  labels: { app: 'echo', 'pod-template-hash': '7d4f9c6b5' },
  state: 'ready',
  createdAt: '',
};

function setup() {
  const meta = new AgentFlowMetadata({
    nodeName: 'c1-node1',
    clusterId: 1,
    clusterName: 'cluster1',
    enforcing: (id, dir) =>
      id === 5 && dir === 'ingress'
        ? [
            {
              name: 'lock',
              namespace: 'demo',
              kind: 'CiliumNetworkPolicy',
              labels: [],
              revision: 0,
            },
          ]
        : [],
  });
  meta.setClusterName(2, 'cluster2');
  const ep = ECHO_ENDPOINT;
  meta.onEndpoint('upsert', ep);
  meta.setPeer('10.2.0.9', { namespace: 'demo', podName: 'client' });
  meta.setServiceNames([{ namespace: 'demo', name: 'echo', clusterIPs: ['10.96.0.50'] }]);
  meta.setServiceEntries([
    {
      frontend: { ip: '10.96.0.50', port: 80, protocol: 'TCP' },
      backends: [{ ip: '10.1.0.5', port: 8080, clusterId: 1, ready: true }],
      algorithm: 'random',
    },
  ]);
  const rule = 'CiliumNetworkPolicy demo/allow-client spec.ingress[0]';
  meta.addRules([rule]);
  const ring = new FlowRing(8);
  return {
    meta,
    ring,
    rule,
    builder: new FlowBuilder(meta, ring, { monoToUnixOffsetMs: 1_700_000_000_000 }),
  };
}

const base: DatapathEvent = {
  type: EventType.PolicyVerdict,
  subType: 0,
  flags: 0,
  proto: 6,
  endpoint: 5,
  ktimeNs: 5_000_000_001,
  saddr: '10.2.0.9',
  daddr: '10.1.0.5',
  sport: 40000,
  dport: 8080,
  identity: REMOTE_ID,
  ruleId: 0,
  tcpFlags: 0x02,
};

test('flows: an allowed ingress connection from another cluster, enriched', () => {
  const { builder, ring, rule } = setup();
  const f = builder.ingest(encodeEvent({ ...base, ruleId: ruleIdOf(rule) }))!;
  assert.equal(f.verdict, 'FORWARDED');
  assert.equal(f.trafficDirection, 'INGRESS');
  assert.equal(f.isReply, false);
  assert.deepEqual(f.time, { seconds: 1_700_000_005, nanos: 1 });
  assert.equal(f.nodeName, 'c1-node1');
  assert.equal(f.source!.podName, 'client');
  assert.equal(f.source!.clusterName, 'cluster2');
  assert.equal(f.source!.identity, REMOTE_ID);
  assert.equal(f.destination!.podName, 'echo-7d4f9c6b5-abcde');
  assert.equal(f.destination!.ID, 5);
  assert.equal(f.destination!.clusterName, 'cluster1');
  assert.deepEqual(f.destination!.workloads, [{ name: 'echo', kind: 'Deployment' }]);
  assert.ok(f.destination!.labels.includes('k8s:app=echo'));
  assert.deepEqual(f.destinationService, { name: 'echo', namespace: 'demo' });
  assert.equal(f.ingressAllowedBy![0]!.name, 'allow-client');
  assert.deepEqual(f.l4, {
    TCP: { sourcePort: 40000, destinationPort: 8080, flags: { SYN: true } },
  });
  assert.equal(f.Summary, 'TCP Flags: SYN');
  assert.equal(ring.snapshot().length, 1);
});

test('flows: drops name their reason and policy; replies and translations; bad records are lost', () => {
  const { builder, ring } = setup();
  const drop = builder.ingest(
    encodeEvent({ ...base, type: EventType.Drop, subType: 133, flags: EventFlags.Denied }),
  )!;
  assert.equal(drop.verdict, 'DROPPED');
  assert.equal(drop.dropReasonDesc, 'POLICY_DENIED');
  assert.equal(drop.ingressDeniedBy![0]!.name, 'lock', 'default deny: the policies enforcing');
  const reply = builder.ingest(
    encodeEvent({
      ...base,
      type: EventType.Trace,
      flags: EventFlags.Egress | EventFlags.Reply,
      saddr: '10.1.0.5',
      daddr: '10.2.0.9',
      sport: 8080,
      dport: 40000,
      tcpFlags: 0x12,
    }),
  )!;
  assert.equal(reply.isReply, true);
  assert.equal(reply.trafficDirection, 'INGRESS', 'a reply of an ingress connection');
  assert.equal(reply.traceObservationPoint, 'FROM_ENDPOINT');
  assert.equal(reply.source!.podName, 'echo-7d4f9c6b5-abcde');
  assert.deepEqual(reply.sourceService, { name: 'echo', namespace: 'demo' });
  const sock = builder.ingest(
    encodeEvent({
      ...base,
      type: EventType.TraceSock,
      subType: 2,
      endpoint: 0,
      saddr: '0.0.0.0',
      sport: 0,
      origDaddr: '10.96.0.50',
      origDport: 80,
      cookie: 99n,
      cgroupId: 7n,
    }),
  )!;
  assert.equal(sock.verdict, 'TRANSLATED');
  assert.equal(sock.Type, 'SOCK');
  assert.deepEqual(sock.destinationService, { name: 'echo', namespace: 'demo' });
  assert.equal(sock.socketCookie, 99);
  assert.equal(builder.ingest(Buffer.alloc(3)), undefined);
  builder.reportLost(10);
  builder.reportLost(12);
  assert.equal(ring.stats().lost, 1 + 12);
  assert.equal(ring.stats().seen, 3);
});

test('flows: rule texts and workloads', () => {
  assert.deepEqual(policyOfRuleText('NetworkPolicy web/deny-all spec.ingress[0]'), {
    kind: 'NetworkPolicy',
    namespace: 'web',
    name: 'deny-all',
    labels: [],
    revision: 0,
  });
  assert.equal(policyOfRuleText('allow-localhost'), undefined);
  assert.deepEqual(workloadOf('db-0', { 'controller-revision-hash': 'x' }), [
    { name: 'db', kind: 'StatefulSet' },
  ]);
  assert.deepEqual(workloadOf('solo', {}), []);
});

test('flows: names built once per peer follow metadata changes (pod renamed, peer gone, identity labels later)', () => {
  const { builder, meta } = setup();
  // (identity 0: the peer's labels are complete without an identity lookup)
  const first = builder.ingest(encodeEvent({ ...base, identity: 0 }))!;
  const second = builder.ingest(encodeEvent({ ...base, identity: 0, sport: 40001 }))!;
  assert.equal(second.source, first.source, 'the same peer: one FlowEndpoint');
  assert.equal(second.destination, first.destination, 'the same local endpoint: one FlowEndpoint');
  meta.onEndpoint('upsert', { ...ECHO_ENDPOINT, podName: 'echo-7d4f9c6b5-fghij' });
  meta.setPeer('10.2.0.9', undefined);
  const after = builder.ingest(encodeEvent({ ...base, identity: 0 }))!;
  assert.equal(after.destination!.podName, 'echo-7d4f9c6b5-fghij');
  assert.equal(after.source!.podName, '');
  // an identity without labels yet is not remembered without them
  const unknown = (2 << 16) | 301;
  const noLabels = builder.ingest(encodeEvent({ ...base, saddr: '10.2.0.10', identity: unknown }))!;
  assert.deepEqual(noLabels.source!.labels, []);
  const again = builder.ingest(encodeEvent({ ...base, saddr: '10.2.0.10', identity: unknown }))!;
  assert.notEqual(again.source, noLabels.source);
});

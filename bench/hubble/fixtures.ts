/**
 * Synthetic input of the agent's flow path for bench/hubble: the metadata of a
 * busy node and a mix of ring-buffer records as the programs write them.
 */
import {
  EventFlags,
  EventType,
  encodeEvent,
  type DatapathEvent,
} from '../../src/datapath/linux/events.js';
import { AgentFlowMetadata } from '../../src/agent/flow-metadata.js';
import { ruleIdOf } from '../../src/datapath/linux/policy/policy-datapath.js';
import type { EndpointInfo } from '../../src/agent/api/types.js';

const ENDPOINTS = 100;
const RULE = 'CiliumNetworkPolicy demo/allow spec.ingress[0]';

/** Flow metadata of a busy node: 100 endpoints, 249 remote pods, a service, a policy rule. */
export function metadata(): AgentFlowMetadata {
  const meta = new AgentFlowMetadata({ nodeName: 'node1', clusterId: 1, clusterName: 'cluster1' });
  meta.setClusterName(2, 'cluster2');
  for (let i = 1; i <= ENDPOINTS; i++) {
    const ep: EndpointInfo = {
      id: i,
      containerId: `c${i}`,
      ifName: 'eth0',
      podNamespace: `ns-${i % 10}`,
      podName: `app-${i % 20}-7d4f9c6b5-${i}`,
      ip: `10.1.0.${i}`,
      hostIfName: `lxc${i}`,
      identity: (1 << 16) | (256 + (i % 20)),
      labels: { app: `app-${i % 20}`, 'pod-template-hash': '7d4f9c6b5' },
      state: 'ready',
      createdAt: '',
    };
    meta.onEndpoint('upsert', ep);
  }
  for (let i = 1; i < 250; i++)
    meta.setPeer(`10.2.0.${i}`, { namespace: 'demo', podName: `client-${i}` });
  meta.setServiceNames([{ namespace: 'demo', name: 'echo', clusterIPs: ['10.96.0.50'] }]);
  meta.setServiceEntries([
    {
      frontend: { ip: '10.96.0.50', port: 80, protocol: 'TCP' },
      backends: Array.from({ length: 10 }, (_, i) => ({
        ip: `10.1.0.${i + 1}`,
        port: 8080,
        clusterId: 1,
        ready: true,
      })),
      algorithm: 'random',
    },
  ]);
  meta.addRules([RULE]);
  return meta;
}

/** N ring-buffer records, a realistic mix: 10% verdicts, 10% drops, 10% socket translations, traces. */
export function records(n: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const ep = 1 + (i % ENDPOINTS);
    const ev: DatapathEvent = {
      type: EventType.Trace,
      subType: 0,
      flags: 0,
      proto: 6,
      endpoint: ep,
      ktimeNs: 1e9 + i * 1000,
      saddr: `10.2.0.${1 + (i % 249)}`,
      daddr: `10.1.0.${ep}`,
      sport: 30000 + (i % 30000),
      dport: 8080,
      identity: (2 << 16) | 300,
      ruleId: 0,
      tcpFlags: 0x10,
    };
    const k = i % 10;
    if (k === 0)
      out.push(
        encodeEvent({ ...ev, type: EventType.PolicyVerdict, ruleId: ruleIdOf(RULE), tcpFlags: 2 }),
      );
    else if (k === 1)
      out.push(
        encodeEvent({ ...ev, type: EventType.Drop, subType: 133, flags: EventFlags.Denied }),
      );
    else if (k === 2)
      out.push(
        encodeEvent({
          ...ev,
          type: EventType.TraceSock,
          subType: 2,
          endpoint: 0,
          saddr: '0.0.0.0',
          origDaddr: '10.96.0.50',
          origDport: 80,
          cookie: BigInt(i),
          cgroupId: 9n,
        }),
      );
    else if (k < 6) out.push(encodeEvent({ ...ev, flags: EventFlags.Egress | EventFlags.Reply }));
    else out.push(encodeEvent(ev));
  }
  return out;
}

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import dnsPacket from 'dns-packet';
import { EventType, encodeEvent, type DatapathEvent } from '../datapath/linux/events.js';
import { FlowRing } from '../observe/ring.js';
import { DnsNameCache, parseDnsFrame } from './dns-names.js';
import { AgentFlowMetadata } from './flow-metadata.js';
import { FlowBuilder } from './flows.js';

/** An Ethernet + IPv4 + UDP frame from port 53 carrying PAYLOAD. */
function frame(payload: Buffer, sport = 53): Buffer {
  const eth = Buffer.alloc(14);
  eth.writeUInt16BE(0x0800, 12);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip[9] = 17;
  ip.writeUInt16BE(20 + 8 + payload.length, 2);
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(sport, 0);
  udp.writeUInt16BE(40000, 2);
  udp.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([eth, ip, udp, payload]);
}

const answer = dnsPacket.encode({
  type: 'response',
  id: 7,
  flags: dnsPacket.RECURSION_DESIRED,
  questions: [{ type: 'A', name: 'www.Example.com' }],
  answers: [
    { type: 'CNAME', name: 'www.example.com', ttl: 300, data: 'edge.example.net' },
    { type: 'A', name: 'edge.example.net', ttl: 30, data: '93.184.216.34' },
    { type: 'A', name: 'edge.example.net', ttl: 30, data: '93.184.216.35' },
  ],
});

test('parseDnsFrame: A records with the question and CNAME names; anything else is ignored', () => {
  const got = parseDnsFrame(frame(answer));
  assert.deepEqual(
    got.map((a) => ({ ...a, names: [...a.names].sort() })),
    [
      { ip: '93.184.216.34', names: ['edge.example.net', 'www.example.com'], ttlSeconds: 30 },
      { ip: '93.184.216.35', names: ['edge.example.net', 'www.example.com'], ttlSeconds: 30 },
    ],
  );
  assert.deepEqual(parseDnsFrame(frame(answer, 5353)), [], 'not from port 53');
  const query = dnsPacket.encode({ type: 'query', id: 1, questions: [{ type: 'A', name: 'x' }] });
  assert.deepEqual(parseDnsFrame(frame(query)), [], 'a question, not an answer');
  assert.deepEqual(parseDnsFrame(frame(Buffer.from('garbage'))), []);
  assert.deepEqual(parseDnsFrame(Buffer.alloc(10)), []);
});

test('DnsNameCache: names expire with the TTL (at least a minute); the oldest address goes first', () => {
  let now = 1_000_000;
  const c = new DnsNameCache({ maxIPs: 2, now: () => now });
  c.record({ ip: '10.0.0.1', names: ['a.example'], ttlSeconds: 5 });
  c.record({ ip: '10.0.0.1', names: ['b.example'], ttlSeconds: 600 });
  assert.deepEqual(c.names('10.0.0.1'), ['a.example', 'b.example']);
  now += 61_000;
  assert.deepEqual(c.names('10.0.0.1'), ['b.example'], 'a.example lived 60 s');
  c.record({ ip: '10.0.0.2', names: ['c'], ttlSeconds: 60 });
  c.record({ ip: '10.0.0.3', names: ['d'], ttlSeconds: 60 });
  assert.equal(c.size, 2);
  assert.equal(c.names('10.0.0.1'), undefined, 'evicted');
  now += 601_000;
  assert.equal(c.names('10.0.0.3'), undefined);
});

test('flows carry DNS names; a TRANSLATED flow names the pod of the cgroup that connected', () => {
  const root = mkdtempSync(join(tmpdir(), 'flow-cgroups-'));
  try {
    const uid = '0b9f2a34-1c1d-4e4e-9d2f-6f0c7a1b2c3d';
    mkdirSync(join(root, 'kubepods', `pod${uid.replace(/-/g, '_')}.slice`), { recursive: true });
    mkdirSync(join(root, 'other'));
    const cgroupId = statSync(join(root, 'kubepods', `pod${uid.replace(/-/g, '_')}.slice`)).ino;
    const meta = new AgentFlowMetadata({
      nodeName: 'n1',
      clusterId: 1,
      clusterName: 'cluster1',
      cgroupRoot: root,
    });
    meta.onEndpoint('upsert', {
      id: 9,
      containerId: 'c',
      ifName: 'eth0',
      podNamespace: 'default',
      podName: 'client',
      podUid: uid,
      ip: '10.1.0.9',
      hostIfName: 'lxc9',
      identity: (1 << 16) | 200,
      labels: { app: 'client' },
      state: 'ready',
      createdAt: '',
    });
    meta.setServiceNames([{ namespace: 'default', name: 'echo', clusterIPs: ['10.96.0.50'] }]);
    meta.setServiceEntries([
      {
        frontend: { ip: '10.96.0.50', port: 80, protocol: 'TCP' },
        backends: [{ ip: '10.1.0.5', port: 8080, clusterId: 1, ready: true }],
        algorithm: 'random',
      },
    ]);
    meta.dnsNames.record({
      ip: '10.96.0.50',
      names: ['echo.default.svc.cluster.local'],
      ttlSeconds: 5,
    });
    const b = new FlowBuilder(meta, new FlowRing(8), { monoToUnixOffsetMs: 0 });
    const ev: DatapathEvent = {
      type: EventType.TraceSock,
      subType: 2,
      flags: 0,
      proto: 6,
      endpoint: 0,
      ktimeNs: 1,
      saddr: '0.0.0.0',
      daddr: '10.1.0.5',
      sport: 0,
      dport: 8080,
      identity: 0,
      ruleId: 0,
      tcpFlags: 0,
      origDaddr: '10.96.0.50',
      origDport: 80,
      cookie: 1n,
      cgroupId: BigInt(cgroupId),
    };
    const sock = b.ingest(encodeEvent(ev))!;
    assert.equal(sock.verdict, 'TRANSLATED');
    assert.equal(sock.source?.podName, 'client');
    assert.equal(sock.source?.namespace, 'default');
    assert.equal(sock.IP?.source, '10.1.0.9');
    assert.deepEqual(sock.destinationNames, ['echo.default.svc.cluster.local']);
    // the connection's packets to the backend keep the name it was reached by
    const fwd = b.ingest(
      encodeEvent({
        ...ev,
        type: EventType.PolicyVerdict,
        subType: 0,
        endpoint: 9,
        flags: 1,
        saddr: '10.1.0.9',
        sport: 40000,
        cgroupId: 0n,
        cookie: 0n,
      }),
    )!;
    assert.deepEqual(fwd.destinationNames, ['echo.default.svc.cluster.local']);
    assert.deepEqual(fwd.sourceNames, []);
    // an unknown cgroup leaves the source empty, as before
    const other = b.ingest(encodeEvent({ ...ev, cgroupId: 424242n }))!;
    assert.equal(other.source, undefined);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ObserverClient } from './client.js';
import type { GetFlowsResponse } from './grpc.js';
import { Relay, type RelayPeer } from './relay.js';
import { createRelayMetrics } from './relay-metrics.js';
import { metricValue, scrapeMetrics } from './scrape.js';
import { serveMetrics } from '../util/metrics-server.js';
import { FlowRing } from './ring.js';
import { ObserverServer } from './server.js';
import { testFlow } from './testing.js';

let dir: string;
const servers: ObserverServer[] = [];
const rings: FlowRing[] = [];
let relay: Relay;
let remoteRelay: Relay;
let client: ObserverClient;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hubble-relay-'));
  // node-a has odd seconds, node-b even ones, node-c (in cluster2) 100+
  for (const [i, name] of ['node-a', 'node-b', 'node-c'].entries()) {
    const ring = new FlowRing(100);
    rings.push(ring);
    const s = new ObserverServer({ source: ring, nodeName: name });
    await s.listen({ socketPath: join(dir, `${name}.sock`) });
    servers.push(s);
    if (i < 2) for (let t = 1 + i; t <= 10; t += 2) ring.push(testFlow(t, { nodeName: name }));
    else ring.push(testFlow(100, { nodeName: name }));
  }
  const peer = (name: string): RelayPeer => ({
    name,
    client: { address: `unix:${join(dir, `${name}.sock`)}` },
  });
  // cluster2's relay lists cluster1's relay as its remote: a hop must not loop back
  remoteRelay = new Relay({
    name: 'relay-cluster2',
    peers: async () => [
      peer('node-c'),
      {
        name: 'cluster:cluster1',
        client: { address: `unix:${join(dir, 'relay1.sock')}` },
        remoteCluster: 'cluster1',
      },
    ],
  });
  await remoteRelay.listen({ socketPath: join(dir, 'relay2.sock') });
  relay = new Relay({
    name: 'relay-cluster1',
    peers: async () => [
      peer('node-a'),
      peer('node-b'),
      peer('node-gone'), // no socket: unreachable
      {
        name: 'cluster:cluster2',
        client: { address: `unix:${join(dir, 'relay2.sock')}` },
        remoteCluster: 'cluster2',
      },
    ],
    sortWindowMs: 100,
  });
  await relay.listen({ socketPath: join(dir, 'relay1.sock') });
  client = new ObserverClient({ address: `unix:${join(dir, 'relay1.sock')}` });
});

after(async () => {
  client.close();
  await relay.close();
  await remoteRelay.close();
  for (const s of servers) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

async function collect(it: AsyncIterable<GetFlowsResponse>): Promise<GetFlowsResponse[]> {
  const out: GetFlowsResponse[] = [];
  for await (const r of it) out.push(r);
  return out;
}

test('GetFlows merges every node of both clusters in time order and reports the unreachable one', async () => {
  const rs = await collect(client.getFlows({ number: 5 }));
  const flows = rs.filter((r) => r.flow);
  assert.deepEqual(
    flows.map((r) => `${r.nodeName}:${r.flow!.uuid}`),
    ['node-a:uuid-7', 'node-b:uuid-8', 'node-a:uuid-9', 'node-b:uuid-10', 'node-c:uuid-100'],
  );
  const down = rs.find((r) => r.nodeStatus?.stateChange === 'NODE_UNAVAILABLE');
  assert.deepEqual(down?.nodeStatus?.nodeNames, ['node-gone']);
  const up = rs.find((r) => r.nodeStatus?.stateChange === 'NODE_CONNECTED');
  assert.deepEqual([...up!.nodeStatus!.nodeNames].sort(), ['cluster:cluster2', 'node-a', 'node-b']);
});

test('filters pass through the relay', async () => {
  const rs = await collect(client.getFlows({ whitelist: [{ nodeName: ['node-c'] }] }));
  assert.deepEqual(
    rs.filter((r) => r.flow).map((r) => r.flow!.uuid),
    ['uuid-100'],
  );
  await assert.rejects(
    collect(client.getFlows({ whitelist: [{ sourcePort: ['99999'] }] })),
    /source_port: invalid port "99999"/,
  );
});

test('follow merges new flows from every node', async () => {
  const ac = new AbortController();
  const got: string[] = [];
  const done = (async () => {
    for await (const r of client.getFlows({ follow: true }, { signal: ac.signal })) {
      if (r.flow) got.push(`${r.nodeName}:${r.flow.uuid}`);
      if (got.length === 3) ac.abort();
    }
  })();
  await new Promise((r) => setTimeout(r, 600));
  rings[1]!.push(testFlow(202, { nodeName: 'node-b' }));
  rings[0]!.push(testFlow(201, { nodeName: 'node-a' }));
  rings[2]!.push(testFlow(203, { nodeName: 'node-c' }));
  await done;
  assert.deepEqual(got, ['node-a:uuid-201', 'node-b:uuid-202', 'node-c:uuid-203']);
});

test('ServerStatus sums the nodes and lists the unavailable one; GetNodes lists every node', async () => {
  const st = await client.serverStatus();
  assert.equal(st.numConnectedNodes, 3);
  assert.equal(st.numUnavailableNodes, 1);
  assert.deepEqual(st.unavailableNodes, ['node-gone']);
  assert.equal(st.maxFlows, 300);
  assert.equal(st.numFlows, 6 + 6 + 2);
  const nodes = await client.getNodes();
  assert.deepEqual(nodes.map((n) => `${n.name}:${n.state}`).sort(), [
    'node-a:NODE_CONNECTED',
    'node-b:NODE_CONNECTED',
    'node-c:NODE_CONNECTED',
    'node-gone:NODE_UNAVAILABLE',
  ]);
});

test('a peer that cannot be dialled (a bad certificate file) is unavailable with its reason', async () => {
  const why = 'hubble: the key /x/client.key does not belong to the certificate /x/client.crt';
  const r = new Relay({
    name: 'relay-x',
    peers: async () => [
      { name: 'node-a', client: { address: `unix:${join(dir, 'node-a.sock')}` } },
      {
        name: 'cluster:cluster9',
        remoteCluster: 'cluster9',
        client: { address: '192.0.2.1:4245' },
        unusable: why,
      },
    ],
  });
  const sock = join(dir, 'relay-x.sock');
  await r.listen({ socketPath: sock });
  const c = new ObserverClient({ address: `unix:${sock}` });
  try {
    const st = await c.serverStatus();
    assert.deepEqual(st.unavailableNodes, ['cluster:cluster9']);
    assert.equal(st.numConnectedNodes, 1);
    const nodes = await c.getNodes();
    assert.equal(nodes.find((n) => n.name === 'cluster:cluster9')?.state, 'NODE_UNAVAILABLE');
    const out: GetFlowsResponse[] = [];
    for await (const x of c.getFlows({ number: 100 })) out.push(x);
    const down = out.find((x) => x.nodeStatus?.stateChange === 'NODE_UNAVAILABLE');
    assert.deepEqual(down?.nodeStatus?.nodeNames, ['cluster:cluster9']);
    assert.equal(down?.nodeStatus?.message, why);
    assert.ok(
      out.some((x) => x.flow),
      'node-a still serves',
    );
  } finally {
    c.close();
    await r.close();
  }
});

test('relay metrics: connected/unavailable peers and flows relayed, scraped as Prometheus text', async () => {
  const srv = await serveMetrics(createRelayMetrics(relay), '127.0.0.1:0');
  try {
    const before = relay.stats().flowsRelayed;
    const got = (await collect(client.getFlows({ number: 4 }))).filter((r) => r.flow);
    assert.equal(got.length, 4);
    const f = await scrapeMetrics(srv.url);
    // node-a, node-b, and node-c behind cluster2's relay; node-gone has no socket
    assert.equal(
      metricValue(f, 'hubble_relay_pool_peer_connection_status', { status: 'CONNECTED' }),
      3,
    );
    assert.equal(
      metricValue(f, 'hubble_relay_pool_peer_connection_status', { status: 'UNAVAILABLE' }),
      1,
    );
    assert.equal(metricValue(f, 'hubble_relay_flows_relayed_total'), before + 4);
    assert.equal(metricValue(f, 'hubble_relay_responses_dropped_total'), 0);
    assert.ok((metricValue(f, 'hubble_relay_process_resident_memory_bytes') ?? 0) > 0);
  } finally {
    await srv.close();
  }
});

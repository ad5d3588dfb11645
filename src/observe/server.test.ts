import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ObserverClient } from './client.js';
import type { GetFlowsResponse } from './grpc.js';
import { FlowRing } from './ring.js';
import { ObserverServer } from './server.js';
import { testFlow } from './testing.js';

let dir: string;
let ring: FlowRing;
let server: ObserverServer;
let client: ObserverClient;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hubble-server-'));
  ring = new FlowRing(8);
  for (let i = 1; i <= 10; i++)
    ring.push(testFlow(i, i % 2 ? {} : { verdict: 'DROPPED', dropReasonDesc: 'POLICY_DENIED' }));
  server = new ObserverServer({ source: ring, nodeName: 'node-a', maxQueue: 16 });
  await server.listen({ socketPath: join(dir, 'hubble.sock') });
  client = new ObserverClient({ address: `unix:${join(dir, 'hubble.sock')}` });
});

after(async () => {
  client.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function collect(it: AsyncIterable<GetFlowsResponse>): Promise<GetFlowsResponse[]> {
  const out: GetFlowsResponse[] = [];
  for await (const r of it) out.push(r);
  return out;
}

test('GetFlows: last N, first N, since/until and filters over a real socket', async () => {
  const last = await collect(client.getFlows({ number: 3 }));
  assert.deepEqual(
    last.map((r) => r.flow?.uuid),
    ['uuid-8', 'uuid-9', 'uuid-10'],
  );
  assert.equal(last[0]!.nodeName, 'node-a');
  const first = await collect(client.getFlows({ number: 2, first: true }));
  assert.deepEqual(
    first.map((r) => r.flow?.uuid),
    ['uuid-3', 'uuid-4'],
    'the ring holds the newest 8',
  );
  const window = await collect(
    client.getFlows({ since: { seconds: 5, nanos: 0 }, until: { seconds: 7, nanos: 0 } }),
  );
  assert.deepEqual(
    window.map((r) => r.flow?.uuid),
    ['uuid-5', 'uuid-6'],
  );
  const drops = await collect(
    client.getFlows({ number: 100, whitelist: [{ verdict: ['DROPPED'] }] }),
  );
  assert.deepEqual(
    drops.map((r) => r.flow?.uuid),
    ['uuid-4', 'uuid-6', 'uuid-8', 'uuid-10'],
  );
  assert.equal(drops[0]!.flow!.dropReasonDesc, 'POLICY_DENIED');
  const notDrops = await collect(
    client.getFlows({ number: 2, blacklist: [{ verdict: ['DROPPED'] }] }),
  );
  assert.deepEqual(
    notDrops.map((r) => r.flow?.uuid),
    ['uuid-7', 'uuid-9'],
  );
});

test('a flow survives the wire field for field', async () => {
  const [r] = await collect(client.getFlows({ number: 1, whitelist: [{ uuid: ['uuid-9'] }] }));
  assert.deepEqual(r!.flow, testFlow(9));
});

test('a bad filter is INVALID_ARGUMENT naming the field', async () => {
  await assert.rejects(
    collect(client.getFlows({ whitelist: [{ destinationPort: ['70000'] }] })),
    /destination_port: invalid port "70000"/,
  );
});

test('follow streams new flows after the history', async () => {
  const ac = new AbortController();
  const got: string[] = [];
  const done = (async () => {
    for await (const r of client.getFlows({ number: 1, follow: true }, { signal: ac.signal })) {
      got.push(r.flow!.uuid);
      if (got.length === 3) ac.abort();
    }
  })();
  await new Promise((r) => setTimeout(r, 200));
  ring.push(testFlow(11));
  ring.push(testFlow(12));
  await done;
  assert.deepEqual(got, ['uuid-10', 'uuid-11', 'uuid-12']);
});

test('a follower that stops reading gets a bounded queue and a lost_events notice', async () => {
  const ac = new AbortController();
  const it = client.getFlows({ follow: true }, { signal: ac.signal })[Symbol.asyncIterator]();
  // ask once so the call starts, then stop reading while the ring fills
  const firstP = it.next();
  await new Promise((r) => setTimeout(r, 200));
  const big = 'x'.repeat(20_000); // large flows fill the HTTP/2 window quickly
  for (let i = 0; i < 3000; i++) ring.push(testFlow(100 + i, { Summary: big }));
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < 3000; i++) ring.push(testFlow(5000 + i, { Summary: big }));
  const grown = process.memoryUsage().heapUsed - before;
  const seen: GetFlowsResponse[] = [(await firstP).value as GetFlowsResponse];
  for (;;) {
    const n = await it.next();
    if (n.done) break;
    seen.push(n.value);
    if (n.value.lostEvents) break;
  }
  ac.abort();
  await it.return?.(undefined);
  const lost = seen.find((r) => r.lostEvents);
  assert.ok(lost, 'a lost_events response arrives');
  assert.equal(lost.lostEvents!.source, 'OBSERVER_EVENTS_QUEUE');
  assert.ok(lost.lostEvents!.numEventsLost > 1000, `lost ${lost.lostEvents!.numEventsLost}`);
  // 3000 flows of 20 kB would be 60 MB if queued; the queue holds 16
  assert.ok(grown < 40_000_000, `heap grew ${grown} bytes`);
  const st = await client.serverStatus();
  assert.ok(st.lostEvents >= lost.lostEvents!.numEventsLost);
});

test('ServerStatus and GetNodes', async () => {
  const st = await client.serverStatus();
  assert.equal(st.maxFlows, 8);
  assert.equal(st.numFlows, 8);
  assert.ok(st.seenFlows >= 12);
  assert.ok(st.uptimeNs > 0);
  assert.equal(st.numConnectedNodes, 1);
  const nodes = await client.getNodes();
  assert.equal(nodes.length, 1);
  assert.equal(nodes[0]!.name, 'node-a');
  assert.equal(nodes[0]!.state, 'NODE_CONNECTED');
  assert.equal(nodes[0]!.maxFlows, 8);
});

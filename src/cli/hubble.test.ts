import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseObserveArgs } from './hubble-flags.js';
import { runObserve } from './hubble.js';
import { ObserverClient } from '../observe/client.js';
import { FlowRing } from '../observe/ring.js';
import { ObserverServer } from '../observe/server.js';
import { testEndpoint, testFlow } from '../observe/testing.js';
import { formatCompact } from '../observe/format.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const NOW = Date.UTC(2026, 11, 6, 12, 0, 0);
const p = (s: string) => parseObserveArgs(s.split(' ').filter(Boolean), NOW);

test('either-side flags make two filters (source | destination); from/to and common flags go into both', () => {
  assert.deepEqual(p('--pod echo --verdict DROPPED').request.whitelist, [
    { sourcePod: ['default/echo'], verdict: ['DROPPED'] },
    { destinationPod: ['default/echo'], verdict: ['DROPPED'] },
  ]);
  assert.deepEqual(p('--from-pod kube-system/coredns --to-port 53').request.whitelist, [
    { sourcePod: ['kube-system/coredns'], destinationPort: ['53'] },
  ]);
  assert.deepEqual(p('-n app --from-label k8s:app=client').request.whitelist, [
    { sourcePod: ['app/'], sourceLabel: ['k8s:app=client'] },
    { destinationPod: ['app/'], sourceLabel: ['k8s:app=client'] },
  ]);
  assert.deepEqual(p('-n app --to-pod echo').request.whitelist, [
    { sourcePod: ['app/'], destinationPod: ['app/echo'] },
    { destinationPod: ['app/', 'app/echo'] },
  ]);
  assert.deepEqual(p('--from-identity 12345 --cluster c2 --node-name w*').request.whitelist, [
    { sourceIdentity: [12345], sourceClusterName: ['c2'], nodeName: ['w*'] },
    { sourceIdentity: [12345], destinationClusterName: ['c2'], nodeName: ['w*'] },
  ]);
  assert.deepEqual(
    p(
      '--from-cluster c1 --to-cluster c2 --protocol TCP --traffic-direction ingress -t drop:133 --drop-reason-desc policy_denied',
    ).request.whitelist,
    [
      {
        sourceClusterName: ['c1'],
        destinationClusterName: ['c2'],
        protocol: ['tcp'],
        trafficDirection: ['INGRESS'],
        eventType: [{ type: 1, matchSubType: true, subType: 133 }],
        dropReasonDesc: ['POLICY_DENIED'],
      },
    ],
  );
});

test('--not sends the next filter flag to the blacklist', () => {
  const a = p('--not --verdict FORWARDED --to-port 8080');
  assert.deepEqual(a.request.blacklist, [{ verdict: ['FORWARDED'] }]);
  assert.deepEqual(a.request.whitelist, [{ destinationPort: ['8080'] }]);
});

test('number, first, follow, since and until', () => {
  assert.equal(p('').request.number, 20, 'hubble shows the last 20 by default');
  assert.deepEqual(p('--last 10 -o json').request.number, 10);
  assert.deepEqual(p('--first 5').request, {
    number: 5,
    first: true,
    whitelist: [],
    blacklist: [],
  });
  assert.deepEqual(p('-f').request, { follow: true, whitelist: [], blacklist: [] });
  const s = p('--since 5m --until 2026-12-06T11:58:00Z').request;
  assert.deepEqual(s.since, { seconds: NOW / 1000 - 300, nanos: 0 });
  assert.deepEqual(s.until, { seconds: NOW / 1000 - 120, nanos: 0 });
  assert.equal(s.number, undefined);
  assert.equal(p('-o table --print-node-name').printNodeName, true);
});

test('bad input is rejected naming the flag', () => {
  const bad: Array<[string, RegExp]> = [
    ['--since yesterday-ish', /--since: invalid time "yesterday-ish"/],
    ['--verdict MAYBE', /--verdict: unknown value "MAYBE"/],
    ['--port 70000', /--port: invalid port "70000"/],
    ['--to-port -1', /--to-port: invalid port "-1"/],
    ['--last zero', /--last: "zero" is not a positive number/],
    ['-o yaml', /-o: unknown output format "yaml"/],
    ['--protocol carrier', /--protocol: unknown protocol/],
    ['--traffic-direction sideways', /--traffic-direction: unknown value/],
    ['-t everything', /-t: unknown event type/],
    ['--from-identity someone', /--from-identity: invalid identity/],
    ['--first 3 -f', /--first: cannot be combined with --follow/],
    ['-A -n default', /-A: cannot be combined/],
    ['--frobnicate', /--frobnicate: unknown flag/],
    ['--not', /--not: must be followed/],
  ];
  for (const [args, re] of bad) assert.throws(() => p(args), re, args);
});

test('compact output reads like hubble observe', () => {
  const f = testFlow(Date.UTC(2026, 11, 6, 12, 0, 0) / 1000);
  assert.equal(
    formatCompact({ flow: f, nodeName: 'cluster1-worker' }),
    'Dec  6 12:00:00.123: default/client-abc:43210 (ID:12345) -> default/echo-xyz:8080 (ID:23456) to-endpoint FORWARDED (TCP Flags: SYN)',
  );
  const drop = testFlow(Date.UTC(2026, 0, 16, 9, 5, 7) / 1000, {
    verdict: 'DROPPED',
    dropReasonDesc: 'POLICY_DENIED',
    eventType: { type: 1, subType: 133 },
    destination: testEndpoint({ identity: 2, labels: ['reserved:world'] }),
    IP: { source: '10.244.1.5', destination: '1.1.1.1', ipVersion: 'IPv4' },
  });
  assert.equal(
    formatCompact({ flow: drop, nodeName: 'n1' }, { printNodeName: true }),
    'Jan 16 09:05:07.123 [n1]: default/client-abc:43210 (ID:12345) -> 1.1.1.1:8080 (world) Policy denied DROPPED (TCP Flags: SYN)',
  );
});

let dir: string;
let server: ObserverServer;
let client: ObserverClient;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hubble-cli-'));
  const ring = new FlowRing(16);
  ring.push(testFlow(1_765_000_000));
  ring.push(
    testFlow(1_765_000_001, {
      verdict: 'DROPPED',
      dropReasonDesc: 'POLICY_DENIED',
      eventType: { type: 1, subType: 133 },
    }),
  );
  server = new ObserverServer({ source: ring, nodeName: 'node-x' });
  await server.listen({ socketPath: join(dir, 'h.sock') });
  client = new ObserverClient({ address: `unix:${join(dir, 'h.sock')}` });
});
after(async () => {
  client.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function observe(args: string): Promise<string[]> {
  const out: string[] = [];
  await runObserve(client, p(args), { out: (l) => out.push(l), err: (l) => out.push(`ERR ${l}`) });
  return out;
}

test('every output format over a real observer', async () => {
  const compact = await observe('--verdict DROPPED');
  assert.equal(compact.length, 1);
  assert.match(compact[0]!, /Policy denied DROPPED/);
  const json = (await observe('--last 10 -o json')).map(
    (l) => JSON.parse(l) as { flow: { uuid: string; time: string }; node_name: string },
  );
  assert.deepEqual(
    json.map((j) => j.flow.uuid),
    ['uuid-1765000000', 'uuid-1765000001'],
  );
  assert.equal(json[0]!.node_name, 'node-x');
  assert.match(json[0]!.flow.time, /^2025-12-06T05:46:40\.123000000Z$/);
  const jsonpb = (await observe('-o jsonpb --last 1')).map(
    (l) => JSON.parse(l) as { flow: unknown; nodeName: string },
  );
  assert.equal(jsonpb.length, 1);
  assert.equal(jsonpb[0]!.nodeName, 'node-x');
  const dict = (await observe('-o dict --last 1 --print-node-name')).join('\n');
  assert.match(
    dict,
    /^------------\n  TIMESTAMP: Dec  6 05:46:41\.123\n       NODE: node-x\n     SOURCE: default\/client-abc:43210 \(ID:12345\)\nDESTINATION: default\/echo-xyz:8080 \(ID:23456\)\n       TYPE: Policy denied\n    VERDICT: DROPPED\n    SUMMARY: TCP Flags: SYN$/,
  );
  const table = (await observe('-o table')).join('\n').split('\n');
  assert.match(
    table[0]!,
    /^TIMESTAMP\s{3,}SOURCE\s{3,}DESTINATION\s{3,}TYPE\s{3,}VERDICT\s{3,}SUMMARY$/,
  );
  assert.equal(table.length, 3);
  assert.equal(table[1]!.indexOf('default/client'), table[0]!.indexOf('SOURCE'));
});

test('the CLI rejects bad flags with exit 1 and observes through --server', () => {
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [join(root, 'bin/tendril.mjs'), 'hubble', 'observe', ...args], {
      encoding: 'utf8',
      timeout: 30_000,
    });
  const bad = run('--server', `unix:${join(dir, 'h.sock')}`, '--port', '70000');
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /--port: invalid port "70000"/);
});

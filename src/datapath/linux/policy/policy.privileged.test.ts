import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe } from 'node:test';
import { privilegedTest } from '../../../../test/helpers/privileged.js';
import { parseLabels } from '../../../identity/labels.js';
import type { KubeObject } from '../../../k8s/objects.js';
import { PolicyEngine, endpointPolicySpec } from '../../../policy/engine.js';
import { BPFFS_ROOT } from '../../../util/paths.js';
import { ensureBpffs, removePinnedTree } from '../../bpf/bpffs.js';
import { queryAttached } from '../../bpf/query.js';
import {
  icmpFrame,
  makeNetns,
  runProcess,
  sh,
  startProcess,
  stopProcess,
  tcpFrame,
  uniqueName,
} from '../../bpf/testing.js';
import { TcAction } from '../../bpf/types.js';
import { DropReason, PolicyFlags, openEndpointPolicyMap } from './maps.js';
import { BpfPolicyDatapath, readPinnedPolicy, ruleIdOf } from './policy-datapath.js';
import { loadPolicyProgram } from './programs.js';

const CLIENT_IP = '10.77.0.1';
const SERVER_IP = '10.77.0.2';
const CLIENT_ID = 256;
const SERVER_ID = 257;

const SERVERS = `const net=require('net'),d=require('dgram');let n=0;const ok=()=>{if(++n===3)console.log('listening')};
for(const p of [8080,8081])net.createServer(s=>{s.on('error',()=>{});s.pipe(s)}).listen(p,'${SERVER_IP}',ok);
const u=d.createSocket('udp4');u.on('message',(m,r)=>u.send(m,r.port,r.address));u.bind(9000,'${SERVER_IP}',ok);`;
const TCP_PROBE = `const s=require('net').connect(+process.argv[1],'${SERVER_IP}');const t=setTimeout(()=>{console.log('FAIL');process.exit(0)},1500);
s.on('connect',()=>s.write('hi'));s.on('data',()=>{console.log('OK');clearTimeout(t);s.destroy()});s.on('error',()=>{console.log('FAIL');process.exit(0)})`;
const UDP_PROBE = `const s=require('dgram').createSocket('udp4');const t=setTimeout(()=>{console.log('FAIL');process.exit(0)},1000);
s.on('message',()=>{console.log('OK');clearTimeout(t);s.close()});s.send('hi',9000,'${SERVER_IP}')`;
// One long connection: a line every 100 ms; prints "e" per echo received.
const STREAM = `const s=require('net').connect(8080,'${SERVER_IP}');s.on('connect',()=>{console.log('connected');setInterval(()=>s.write('x'),100)});
s.on('data',()=>console.log('e'));s.on('error',()=>{});setTimeout(()=>process.exit(0),30000)`;

const cnp = (name: string, spec: unknown): KubeObject => ({
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumNetworkPolicy',
  metadata: { name, namespace: 'default' },
  spec,
});
const ref = (name: string) => ({
  kind: 'CiliumNetworkPolicy' as const,
  namespace: 'default',
  name,
});

const SYN = 0x02;
const SYN_ACK = 0x12;
const ACK = 0x10;
const PSH_ACK = 0x18;

describe('policy datapath on a veth', () => {
  let node: ReturnType<typeof makeNetns>;
  let podA: ReturnType<typeof makeNetns>;
  let podB: ReturnType<typeof makeNetns>;
  let bpffsDir: string;
  let dp: BpfPolicyDatapath | undefined;
  let servers: ReturnType<typeof startProcess> | undefined;
  let engine: PolicyEngine;

  const tcp = async (port: number) =>
    (
      await runProcess('nsenter', [
        `--net=${podA.path}`,
        process.execPath,
        '-e',
        TCP_PROBE,
        String(port),
      ])
    ).stdout.trim() === 'OK';
  const udp = async () =>
    (
      await runProcess('nsenter', [`--net=${podA.path}`, process.execPath, '-e', UDP_PROBE])
    ).stdout.trim() === 'OK';
  const sync = () => {
    for (const p of engine.computeAll().values()) dp!.writePolicy(endpointPolicySpec(p));
  };

  before(() => {
    if (process.getuid?.() !== 0) return;
    ensureBpffs();
    node = makeNetns('pn');
    podA = makeNetns('pa');
    podB = makeNetns('pb');
    sh('ip', ['-n', node.name, 'link', 'add', 'br0', 'type', 'bridge']);
    sh('ip', ['-n', node.name, 'link', 'set', 'br0', 'up']);
    for (const [pod, host, ip] of [
      [podA, 'ha', CLIENT_IP],
      [podB, 'hb', SERVER_IP],
    ] as const) {
      sh('ip', [
        '-n',
        node.name,
        'link',
        'add',
        host,
        'type',
        'veth',
        'peer',
        'name',
        'eth0',
        'netns',
        pod.name,
      ]);
      sh('ip', ['-n', node.name, 'link', 'set', host, 'master', 'br0']);
      sh('ip', ['-n', node.name, 'link', 'set', host, 'up']);
      sh('ip', ['-n', pod.name, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
      sh('ip', ['-n', pod.name, 'link', 'set', 'eth0', 'up']);
    }
    bpffsDir = join(BPFFS_ROOT, uniqueName('pol'));
    mkdirSync(bpffsDir, { recursive: true });
    engine = new PolicyEngine({ clusterName: 'c1' });
    const pod = (app: string) =>
      parseLabels(
        `k8s:app=${app};k8s:io.kubernetes.pod.namespace=default;k8s:io.cilium.k8s.policy.cluster=c1`,
      );
    engine.upsertIdentity(CLIENT_ID, pod('client'));
    engine.upsertIdentity(SERVER_ID, pod('server'));
    engine.upsertEndpoint({ id: 1, identity: CLIENT_ID });
    engine.upsertEndpoint({ id: 2, identity: SERVER_ID });
  });

  after(async () => {
    if (servers) await stopProcess(servers.child);
    if (dp) dp.destroy();
    else if (bpffsDir) removePinnedTree(bpffsDir);
    if (bpffsDir) removePinnedTree(bpffsDir);
    podA?.remove();
    podB?.remove();
    node?.remove();
  });

  privilegedTest(
    'privileged: allow, default deny, replies, deny wins, revocation, restart, ICMP',
    async () => {
      dp = BpfPolicyDatapath.open({ bpffsDir });
      dp.maps.ipcache.update(
        { prefixLen: 32, addr: CLIENT_IP },
        { identity: CLIENT_ID, hostIP: '0.0.0.0', flags: 0 },
      );
      dp.maps.ipcache.update(
        { prefixLen: 32, addr: SERVER_IP },
        { identity: SERVER_ID, hostIP: '0.0.0.0', flags: 0 },
      );
      sync(); // no policy: allow-all entries, written before the programs see traffic
      dp.attachEndpoint({ id: 1, hostIfName: 'ha', netns: node.name });
      dp.attachEndpoint({ id: 2, hostIfName: 'hb', netns: node.name });
      assert.equal(
        queryAttached({ ifname: 'hb', direction: 'egress', netns: node.name }).programIds.length,
        1,
      );
      assert.equal(
        queryAttached({ ifname: 'hb', direction: 'ingress', netns: node.name }).programIds.length,
        1,
      );
      servers = startProcess(
        'nsenter',
        [`--net=${podB.path}`, process.execPath, '-e', SERVERS],
        /listening/,
      );
      await servers.ready;

      // 1. No policy selects anything: everything passes.
      assert.equal(await tcp(8080), true, 'no policy: TCP 8080');
      assert.equal(await tcp(8081), true, 'no policy: TCP 8081');
      assert.equal(await udp(), true, 'no policy: UDP');

      // 2. Server ingress: allow app=client on TCP 8080 only; the rest is default-denied.
      const dropsBefore = dp.dropCounts();
      engine.upsertPolicy(
        cnp('allow-8080', {
          endpointSelector: { matchLabels: { app: 'server' } },
          ingress: [
            {
              fromEndpoints: [{ matchLabels: { app: 'client' } }],
              toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }] }],
            },
          ],
        }),
      );
      sync();
      assert.equal(await tcp(8080), true, 'allowed port');
      assert.equal(await tcp(8081), false, 'other port denied');
      assert.equal(await udp(), false, 'UDP denied');
      const dropsAfter = dp.dropCounts();
      const denied = 'policy denied (no allow)';
      assert.ok(
        dropsAfter[denied]! > dropsBefore[denied]!,
        `drops counted: ${JSON.stringify(dropsAfter)}`,
      );

      // 3. Replies pass: the client's ingress and egress are default-deny too; only the
      //    connection it opens to 8080 is allowed, so the server's answers pass by CT alone.
      engine.upsertPolicy(
        cnp('client-lockdown', {
          endpointSelector: { matchLabels: { app: 'client' } },
          ingress: [{}],
          egress: [
            {
              toEndpoints: [{ matchLabels: { app: 'server' } }],
              toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }] }],
            },
          ],
        }),
      );
      sync();
      const clientPolicy = engine.computeAll().get(1)!;
      assert.equal(clientPolicy.ingress.enforced, true);
      assert.ok(
        ![...clientPolicy.ingress.entries.values()].some(
          (e) => e.identity === SERVER_ID || e.identity === 0,
        ),
      );
      assert.equal(await tcp(8080), true, 'replies pass the client ingress by CT');
      assert.equal(await tcp(8081), false);

      // 4. Deny wins over the allow.
      engine.upsertPolicy(
        cnp('deny-client', {
          endpointSelector: { matchLabels: { app: 'server' } },
          ingressDeny: [
            {
              fromEndpoints: [{ matchLabels: { app: 'client' } }],
              toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }] }],
            },
          ],
        }),
      );
      sync();
      const before = dp.dropCounts()['policy deny rule']!;
      assert.equal(await tcp(8080), false, 'deny rule wins');
      assert.ok(dp.dropCounts()['policy deny rule']! > before, 'counted as a deny-rule drop');
      engine.deletePolicy(ref('deny-client'));
      sync();
      assert.equal(await tcp(8080), true, 'deny removed: allowed again');

      // 5. Agent restart: close every fd; the pinned programs keep enforcing; reopen and adopt.
      dp.close();
      dp = undefined;
      assert.equal(await tcp(8081), false, 'still enforced with no agent');
      assert.equal(await tcp(8080), true, 'still allowed with no agent');
      dp = BpfPolicyDatapath.open({ bpffsDir });
      assert.ok(
        dp.readPolicy(2).some((e) => e.identity === CLIENT_ID && e.port === 8080),
        'entries read back from the pinned map',
      );
      dp.attachEndpoint({ id: 1, hostIfName: 'ha', netns: node.name }, { adopt: true });
      dp.attachEndpoint({ id: 2, hostIfName: 'hb', netns: node.name }, { adopt: true });
      assert.equal(
        queryAttached({ ifname: 'hb', direction: 'egress', netns: node.name }).programIds.length,
        1,
        'adopted in place, not doubled',
      );
      assert.equal(
        dp.writePolicy(endpointPolicySpec(engine.computeAll().get(2)!)),
        0,
        'nothing to rewrite after adoption',
      );

      // `tendril debug policy` reads the pinned maps without an agent.
      const pinned = readPinnedPolicy(bpffsDir)!;
      assert.deepEqual(
        pinned.endpoints.map((e) => e.id),
        [1, 2],
      );
      const allow = pinned.endpoints[1]!.entries.find(
        (e) => e.direction === 'ingress' && e.identity === CLIENT_ID && e.port === 8080,
      );
      assert.equal(
        allow?.ruleId,
        ruleIdOf('CiliumNetworkPolicy default/allow-8080 spec.ingress[0]'),
      );
      assert.ok(pinned.drops['policy denied (no allow)']! > 0);

      // 6. ICMP through BPF_PROG_TEST_RUN: an L3 allow lets the client's echo in, not a
      //    stranger's; the echo reply leaves the locked-down server by CT.
      engine.upsertPolicy(
        cnp('l3', {
          endpointSelector: { matchLabels: { app: 'server' } },
          ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }] }],
          egress: [{}],
        }),
      );
      sync();
      const serverMap = openEndpointPolicyMap(bpffsDir, 2);
      const maps = {
        policy: serverMap,
        ct: dp.maps.ct,
        drops: dp.maps.drops,
        ipcache: dp.maps.ipcache,
      };
      const ingressProg = loadPolicyProgram('ingress', maps);
      const egressProg = loadPolicyProgram('egress', maps);
      try {
        assert.equal(
          egressProg.testRun({ data: icmpFrame(SERVER_IP, CLIENT_IP, 0, 0x4242) }).retval,
          TcAction.Drop,
          'unsolicited reply dropped (egress default deny)',
        );
        assert.equal(
          ingressProg.testRun({ data: icmpFrame(CLIENT_IP, SERVER_IP, 8, 0x4242) }).retval,
          TcAction.Next,
          'echo from client allowed',
        );
        assert.equal(
          ingressProg.testRun({ data: icmpFrame('10.99.9.9', SERVER_IP, 8, 0x4343) }).retval,
          TcAction.Drop,
          'echo from world denied',
        );
        assert.equal(
          egressProg.testRun({ data: icmpFrame(SERVER_IP, CLIENT_IP, 0, 0x4242) }).retval,
          TcAction.Next,
          'echo reply passes by CT',
        );
        assert.equal(
          egressProg.testRun({ data: icmpFrame(SERVER_IP, CLIENT_IP, 8, 0x4444) }).retval,
          TcAction.Drop,
          'a new echo from the server is egress-denied',
        );
      } finally {
        ingressProg.close();
        egressProg.close();
        serverMap.close();
      }
      engine.deletePolicy(ref('l3'));
      sync();

      // 7. A revoked allow cuts an established connection.
      const stream = startProcess(
        'nsenter',
        [`--net=${podA.path}`, process.execPath, '-e', STREAM],
        /connected/,
      );
      try {
        await stream.ready;
        let echoes = 0;
        stream.child.stdout!.on(
          'data',
          (d: Buffer) =>
            (echoes += d
              .toString()
              .split('\n')
              .filter((l) => l === 'e').length),
        );
        for (let i = 0; i < 40 && echoes < 5; i++) await sleep(100);
        assert.ok(echoes >= 5, `echoes flow before revocation: ${echoes}`);
        // The server's ingress stays enforced; the allow now names someone else.
        engine.upsertPolicy(
          cnp('allow-8080', {
            endpointSelector: { matchLabels: { app: 'server' } },
            ingress: [{ fromEndpoints: [{ matchLabels: { app: 'someone-else' } }] }],
          }),
        );
        sync();
        await sleep(400);
        const atRevocation = echoes;
        await sleep(1500);
        assert.equal(echoes, atRevocation, 'no echo after the allow was revoked');
      } finally {
        await stopProcess(stream.child);
      }
      assert.equal(DropReason.PolicyDenied, 1);

      // 8. Revocation while the server retransmits (the matrix's regression): the client's
      //    segment is dropped (its CT entry deleted), the server, whose egress is open,
      //    retransmits; that mid-stream segment must not be tracked as an egress
      //    connection of the server, or the client's next segments pass as its "replies".
      engine.upsertPolicy(
        cnp('allow-8080', {
          endpointSelector: { matchLabels: { app: 'server' } },
          ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }] }],
        }),
      );
      sync();
      const srvMap = openEndpointPolicyMap(bpffsDir, 2);
      const srvMaps = {
        policy: srvMap,
        ct: dp.maps.ct,
        drops: dp.maps.drops,
        ipcache: dp.maps.ipcache,
      };
      const toServer = loadPolicyProgram('ingress', srvMaps);
      const fromServer = loadPolicyProgram('egress', srvMaps);
      const run = (p: typeof toServer, f: Buffer) =>
        p.testRun({ data: f }).retval === TcAction.Next ? 'pass' : 'drop';
      try {
        const c2s = (flags: number) => tcpFrame(CLIENT_IP, SERVER_IP, 40001, 8080, flags);
        const s2c = (flags: number) => tcpFrame(SERVER_IP, CLIENT_IP, 8080, 40001, flags);
        assert.equal(run(toServer, c2s(SYN)), 'pass', 'SYN allowed');
        assert.equal(run(fromServer, s2c(SYN_ACK)), 'pass', 'SYN-ACK passes as a reply');
        assert.equal(run(toServer, c2s(ACK)), 'pass', 'established');
        assert.equal(run(fromServer, s2c(PSH_ACK)), 'pass', 'server data passes as a reply');
        engine.upsertPolicy(
          cnp('allow-8080', {
            endpointSelector: { matchLabels: { app: 'server' } },
            ingress: [{ fromEndpoints: [{ matchLabels: { app: 'someone-else' } }] }],
          }),
        );
        sync();
        assert.equal(run(toServer, c2s(ACK)), 'drop', 'revoked: the client ACK is dropped');
        assert.equal(
          run(fromServer, s2c(PSH_ACK)),
          'pass',
          "the server's retransmission passes its open egress",
        );
        assert.equal(
          run(toServer, c2s(ACK)),
          'drop',
          "the client's next segment is no reply of the server's retransmission",
        );
        assert.equal(run(toServer, c2s(PSH_ACK)), 'drop');
        // The same for ICMP: an echo reply the server sends starts no flow.
        assert.equal(run(fromServer, icmpFrame(SERVER_IP, CLIENT_IP, 0, 0x4545)), 'pass');
        assert.equal(
          run(toServer, icmpFrame(CLIENT_IP, SERVER_IP, 8, 0x4545)),
          'drop',
          'an echo request is no reply of an unsolicited echo reply',
        );
        // A new connection the server opens is still tracked: its replies pass.
        assert.equal(run(fromServer, tcpFrame(SERVER_IP, CLIENT_IP, 40002, 22, SYN)), 'pass');
        assert.equal(
          run(toServer, tcpFrame(CLIENT_IP, SERVER_IP, 22, 40002, SYN_ACK)),
          'pass',
          "the reply to the server's own connection passes its ingress",
        );

        // 9. An identity's allow that no wildcard deny overlaps is final (no wildcard lookup);
        //    one a wildcard deny overlaps is not, and the deny still wins where it applies.
        const clientAllowFlags = () =>
          [...srvMap.entries()].find(([k]) => k.dir === 0 && k.identity === CLIENT_ID)?.[1].flags;
        engine.upsertPolicy(
          cnp('allow-8080', {
            endpointSelector: { matchLabels: { app: 'server' } },
            ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }] }],
          }),
        );
        sync();
        assert.equal(clientAllowFlags(), PolicyFlags.Final, 'no wildcard deny: final');
        assert.equal(run(toServer, tcpFrame(CLIENT_IP, SERVER_IP, 40003, 8081, SYN)), 'pass');
        engine.upsertPolicy(
          cnp('deny-8081', {
            endpointSelector: { matchLabels: { app: 'server' } },
            ingressDeny: [
              {
                fromEntities: ['all'],
                toPorts: [{ ports: [{ port: '8081', protocol: 'TCP' }] }],
              },
            ],
          }),
        );
        sync();
        assert.equal(clientAllowFlags(), 0, 'a wildcard deny overlaps it: not final');
        assert.equal(run(toServer, tcpFrame(CLIENT_IP, SERVER_IP, 40004, 8081, SYN)), 'drop');
        assert.equal(run(toServer, tcpFrame(CLIENT_IP, SERVER_IP, 40005, 8080, SYN)), 'pass');
        engine.deletePolicy(ref('deny-8081'));
        sync();
        assert.equal(clientAllowFlags(), PolicyFlags.Final, 'final again');
      } finally {
        toServer.close();
        fromServer.close();
        srvMap.close();
      }
    },
  );
});

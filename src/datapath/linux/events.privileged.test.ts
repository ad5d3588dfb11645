import assert from 'node:assert/strict';
import { privilegedTest } from '../../../test/helpers/privileged.js';
import { newMap } from '../bpf/map.js';
import { openRingBuffer } from '../bpf/ringbuf.js';
import { tcpFrame } from '../bpf/testing.js';
import { TcAction } from '../bpf/types.js';
import {
  EventDropReason,
  EventFlags,
  EventType,
  decodeEvent,
  eventsLostSpec,
  eventsRingSpec,
  readLostEvents,
  type DatapathEvent,
} from './events.js';
import { loadHookProgram } from './lb/programs.js';
import { backendsSpec, maglevSpec, revNatSpec, servicesSpec } from './lb/maps.js';
import { ipcacheSpec } from './maps.js';
import {
  DIR,
  PolicyFlags,
  ctSpec,
  dropsSpec,
  endpointPolicySpec,
  policyPrefixLen,
} from './policy/maps.js';
import { loadPolicyProgram } from './policy/programs.js';

const CLIENT = '10.78.0.1';
const SERVER = '10.78.0.2';
const CLIENT_ID = 70001;

const SYN = 0x02;
const ACK = 0x10;
const PSH = 0x08;
const FIN = 0x01;

function setup(ringBytes: number) {
  const ring = newMap(eventsRingSpec(ringBytes));
  const lost = newMap(eventsLostSpec);
  const policy = newMap(endpointPolicySpec(7));
  const ct = newMap(ctSpec);
  const drops = newMap(dropsSpec);
  const ipcache = newMap(ipcacheSpec);
  ipcache.update({ prefixLen: 32, addr: SERVER }, { identity: 70002, hostIP: '0.0.0.0', flags: 0 });
  ipcache.update(
    { prefixLen: 32, addr: CLIENT },
    { identity: CLIENT_ID, hostIP: '0.0.0.0', flags: 0 },
  );
  const maps = { policy, ct, drops, ipcache, events: { ring, lost, endpointId: 7 } };
  const close = () => {
    for (const m of [ring, lost, policy, ct, drops, ipcache]) m.close();
  };
  return { ring, lost, policy, maps, close };
}

privilegedTest(
  'privileged: policy programs write verdicts, drops and medium-aggregated traces',
  async () => {
    const s = setup(1 << 16);
    // Endpoint 7 (the server) accepts TCP/8080 from the client (rule 1111), denies 9090 (rule 2222).
    s.policy.update(
      {
        prefixLen: policyPrefixLen(6, 16),
        identity: CLIENT_ID,
        dir: DIR.ingress,
        proto: 6,
        dport: 8080,
      },
      { flags: 0, ruleId: 1111 },
    );
    s.policy.update(
      { prefixLen: policyPrefixLen(6, 16), identity: 0, dir: DIR.ingress, proto: 6, dport: 9090 },
      { flags: PolicyFlags.Deny, ruleId: 2222 },
    );
    s.policy.update(
      { prefixLen: policyPrefixLen(0, 0), identity: 0, dir: DIR.egress, proto: 0, dport: 0 },
      { flags: 0, ruleId: 3333 },
    );
    const ingress = loadPolicyProgram('ingress', s.maps);
    const egress = loadPolicyProgram('egress', s.maps);
    const reader = openRingBuffer(s.ring);
    const got: DatapathEvent[] = [];
    const take = async (n: number) => {
      for (let i = 0; i < n; i++) got.push(decodeEvent((await reader.read())!));
    };
    try {
      await reader.ready();
      const run = (p: typeof ingress, f: Buffer) => p.testRun({ data: f }).retval;
      assert.equal(run(ingress, tcpFrame(CLIENT, SERVER, 40000, 8080, SYN)), TcAction.Next);
      await take(1);
      assert.equal(got[0]!.type, EventType.PolicyVerdict);
      assert.equal(got[0]!.ruleId, 1111);
      assert.equal(got[0]!.identity, CLIENT_ID);
      assert.equal(got[0]!.endpoint, 7);
      assert.equal(got[0]!.flags, 0, 'ingress, not a reply');
      assert.deepEqual(
        [got[0]!.saddr, got[0]!.sport, got[0]!.daddr, got[0]!.dport],
        [CLIENT, 40000, SERVER, 8080],
      );
      assert.equal(got[0]!.tcpFlags, SYN);

      // The reply SYN|ACK leaves through the egress program: new flags on the reply side.
      assert.equal(run(egress, tcpFrame(SERVER, CLIENT, 8080, 40000, SYN | ACK)), TcAction.Next);
      await take(1);
      assert.equal(got[1]!.type, EventType.Trace);
      assert.equal(got[1]!.flags, EventFlags.Egress | EventFlags.Reply);
      assert.equal(got[1]!.identity, CLIENT_ID);
      // ACK and PSH report nothing (Cilium's monitor-aggregation-flags: FIN, SYN, RST);
      // the first FIN of each side does, a repeated FIN does not, an RST does.
      run(ingress, tcpFrame(CLIENT, SERVER, 40000, 8080, ACK));
      run(ingress, tcpFrame(CLIENT, SERVER, 40000, 8080, ACK));
      run(ingress, tcpFrame(CLIENT, SERVER, 40000, 8080, PSH | ACK));
      run(egress, tcpFrame(SERVER, CLIENT, 8080, 40000, PSH | ACK));
      run(ingress, tcpFrame(CLIENT, SERVER, 40000, 8080, FIN | ACK));
      run(ingress, tcpFrame(CLIENT, SERVER, 40000, 8080, FIN | ACK));
      run(egress, tcpFrame(SERVER, CLIENT, 8080, 40000, FIN | ACK));
      await take(2);
      assert.equal(got[2]!.type, EventType.Trace);
      assert.equal(got[2]!.tcpFlags, FIN | ACK, "the packet's flags");
      assert.equal(got[2]!.flags, 0, 'forward, at ingress');
      assert.equal(got[3]!.tcpFlags, FIN | ACK);
      assert.equal(got[3]!.flags, EventFlags.Egress | EventFlags.Reply);

      // Denied: default deny (133) and a deny rule (181, naming the rule).
      assert.equal(run(ingress, tcpFrame(CLIENT, SERVER, 40001, 7070, SYN)), TcAction.Drop);
      assert.equal(run(ingress, tcpFrame(CLIENT, SERVER, 40002, 9090, SYN)), TcAction.Drop);
      await take(2);
      assert.equal(got[4]!.type, EventType.Drop);
      assert.equal(got[4]!.subType, EventDropReason.PolicyDenied);
      assert.equal(got[4]!.flags, EventFlags.Denied);
      assert.equal(got[5]!.subType, EventDropReason.PolicyDeny);
      assert.equal(got[5]!.ruleId, 2222);
      assert.equal(got.length, 6, 'nothing else');
      assert.equal(readLostEvents(s), 0);
    } finally {
      await reader.close();
      ingress.close();
      egress.close();
      s.close();
    }
  },
);

privilegedTest('privileged: a full ring counts lost events, never hides them', async () => {
  const s = setup(4096);
  const ingress = loadPolicyProgram('ingress', s.maps);
  try {
    // No policy: every SYN is a 40-byte DROP record (48 with its header) into 4 KiB.
    const burst = 500;
    for (let i = 0; i < burst; i++)
      ingress.testRun({ data: tcpFrame(CLIENT, SERVER, 30000 + i, 80, SYN) });
    const reader = openRingBuffer(s.ring);
    let read = 0;
    try {
      await reader.ready();
      const deadline = Date.now() + 2000;
      const lost = readLostEvents(s);
      assert.ok(lost > 0, 'the burst overflowed the ring');
      while (read + lost < burst && Date.now() < deadline) {
        const r = await Promise.race([
          reader.read(),
          new Promise<undefined>((res) => setTimeout(() => res(undefined), 200)),
        ]);
        if (r) read++;
      }
      assert.equal(read + readLostEvents(s), burst, `read ${read} + lost ${readLostEvents(s)}`);
    } finally {
      await reader.close();
    }
  } finally {
    ingress.close();
    s.close();
  }
});

privilegedTest('privileged: the connect4 program with events passes the verifier', () => {
  const ring = newMap(eventsRingSpec(4096));
  const lost = newMap(eventsLostSpec);
  const maps = {
    services: newMap(servicesSpec),
    backends: newMap(backendsSpec),
    revnat: newMap(revNatSpec),
    maglev: newMap(maglevSpec),
  };
  try {
    loadHookProgram('connect4', maps, { ring, lost }).close();
    loadHookProgram('sendmsg4', maps, { ring, lost }).close();
  } finally {
    for (const m of Object.values(maps)) m.close();
    ring.close();
    lost.close();
  }
});

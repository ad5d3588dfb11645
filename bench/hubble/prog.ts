/**
 * Kernel time per packet of an established TCP connection through the policy
 * program, without and with flow events (BPF_PROG_TEST_RUN, root).
 */
import { newMap } from '../../src/datapath/bpf/map.js';
import { eventsLostSpec, eventsRingSpec } from '../../src/datapath/linux/events.js';
import { ipcacheSpec } from '../../src/datapath/linux/maps.js';
import {
  DIR,
  ctSpec,
  dropsSpec,
  endpointPolicySpec,
  policyPrefixLen,
} from '../../src/datapath/linux/policy/maps.js';
import { loadPolicyProgram } from '../../src/datapath/linux/policy/programs.js';

function tcpFrame(src: string, dst: string, sport: number, dport: number, flags: number): Buffer {
  const f = Buffer.alloc(14 + 20 + 20 + 64);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f.writeUInt16BE(104, 16);
  f[14 + 9] = 6;
  Buffer.from(src.split('.').map(Number)).copy(f, 26);
  Buffer.from(dst.split('.').map(Number)).copy(f, 30);
  f.writeUInt16BE(sport, 34);
  f.writeUInt16BE(dport, 36);
  f[34 + 12] = 0x50;
  f[34 + 13] = flags;
  return f;
}

/** Medians over interleaved rounds of 1,000,000 runs each. */
export function perPacketNs(): { off: number; on: number } {
  const ring = newMap(eventsRingSpec(1 << 20));
  const lost = newMap(eventsLostSpec);
  const policy = newMap(endpointPolicySpec(9));
  const ct = newMap(ctSpec);
  const drops = newMap(dropsSpec);
  const ipcache = newMap(ipcacheSpec);
  policy.update(
    { prefixLen: policyPrefixLen(0, 0), identity: 0, dir: DIR.ingress, proto: 0, dport: 0 },
    { flags: 0, ruleId: 1 },
  );
  const base = { policy, ct, drops, ipcache };
  const off = loadPolicyProgram('ingress', base);
  const on = loadPolicyProgram('ingress', { ...base, events: { ring, lost, endpointId: 9 } });
  const syn = tcpFrame('10.9.0.1', '10.9.0.2', 41000, 80, 0x02);
  const ack = tcpFrame('10.9.0.1', '10.9.0.2', 41000, 80, 0x10);
  try {
    off.testRun({ data: syn });
    on.testRun({ data: ack }); // the CT entry now exists; later ACKs are aggregated away
    const offs: number[] = [];
    const ons: number[] = [];
    for (let round = 0; round < 7; round++) {
      offs.push(off.testRun({ data: ack, repeat: 1_000_000 }).durationNs);
      ons.push(on.testRun({ data: ack, repeat: 1_000_000 }).durationNs);
    }
    const med = (a: number[]) => a.sort((x, y) => x - y)[a.length >> 1]!;
    return { off: med(offs), on: med(ons) };
  } finally {
    off.close();
    on.close();
    for (const m of [ring, lost, policy, ct, drops, ipcache]) m.close();
  }
}

/**
 * The policy programs (SCHED_CLS, attached with TCX to a pod's host-side veth),
 * assembled here, as Cilium's bpf_lxc.c policy path:
 *
 *   host-side ingress = packets the pod sends     -> the pod's EGRESS policy, peer = destination
 *   host-side egress  = packets sent to the pod   -> the pod's INGRESS policy, peer = source
 *
 * For an IPv4 packet (other ethertypes pass: ARP; IPv6 is not policed yet):
 *   1. build the tuple {saddr, daddr, sport, dport, proto} (ICMP echo: the id as both ports);
 *   2. reply? the reversed tuple is in the CT map under the opposite direction
 *      (a connection the other direction allowed) -> pass, no policy;
 *   3. the peer's identity: ipcache LPM lookup of the peer address; a miss is world (2);
 *   4. policy map (this endpoint's LPM trie) at {identity, dir, proto, dport}, then at
 *      {0 (wildcard), dir, proto, dport}; a deny in either drops, an allow in either passes,
 *      nothing drops (default deny). An identity's allow flagged final (no wildcard deny
 *      overlaps it) passes without the wildcard lookup. Every packet of the originating direction is
 *      judged, so revoking an allow cuts established connections too;
 *   5. allowed: pass, and record the tuple in CT (if absent) when the packet starts a
 *      connection (not a TCP segment other than a SYN without ACK, not an ICMP echo reply:
 *      an entry made from a mid-stream packet would make the other side's packets pass as
 *      its "replies", so a revoked allow would not cut the connection once the server
 *      retransmits); dropped: count the reason in the per-CPU drop map and delete the
 *      tuple's CT entry, so replies stop too.
 *
 * Offsets come from ./maps.ts (Off).
 */
import {
  asm,
  Helper,
  R0,
  R1,
  R2,
  R3,
  R4,
  R5,
  R6,
  R7,
  R8,
  R9,
  R10,
  type ProgramText,
} from '../../bpf/asm/index.js';
import type { BpfMap } from '../../bpf/map.js';
import { loadProgram, type Program } from '../../bpf/program.js';
import { ProgramType, SkBuffCtx, TcAction } from '../../bpf/types.js';
import { DIR, DropReason, Off, PolicyFlags } from './maps.js';
import {
  AGGREGATION_CLOCK_SHIFT,
  AGGREGATION_INTERVAL_UNITS,
  AGGREGATION_TCP_FLAGS,
  EventDropReason,
  EventFlags,
  EventOff,
  EventType,
  emitRecord,
  type EventProgramMaps,
} from '../events.js';

/**
 * The identity of a peer the ipcache does not know (Cilium's reserved `world`, 2).
 * The datapath's own constant, so it does not import identity/; a test in
 * src/identity/numeric.test.ts pins it to ReservedIdentity.world.
 */
export const WORLD_IDENTITY = 2;

type AnyMap = Pick<BpfMap<unknown, unknown>, 'fd' | 'name'>;

/** The maps a policy program uses. */
export interface PolicyProgramMaps {
  /** This endpoint's policy map. */
  policy: AnyMap;
  ct: AnyMap;
  drops: AnyMap;
  ipcache: AnyMap;
  /**
   * Flow events (../events.ts): when set, the program writes policy verdicts, drops and
   * `medium`-aggregated traces of the endpoint `endpointId` to the ring; when absent it
   * emits nothing (Hubble disabled) and costs nothing extra.
   */
  events?: EventProgramMaps & { endpointId: number };
}

const ETH_HLEN = 14;
const ETH_P_IP_LE = 0x0008; // 0x0800 read as a little-endian u16
const IPPROTO_ICMP = 1;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPPROTO_SCTP = 132;
const BPF_NOEXIST = 1;
const TCP_SYN = 0x02;
const TCP_ACK = 0x10;

// Stack layout (offsets from r10).
const CT = -16; // forward CT key, 16 bytes
const PK = -32; // policy key, 12 bytes
const IK = -40; // ipcache key {prefixlen, addr}, 8 bytes
const CV = -48; // CT value, 8 bytes
const DK = -56; // drop counter index (u32)
const RK = -72; // reversed CT key, 16 bytes
const TF = -88; // the packet's TCP flags (u64; events only)
const RID = -92; // ruleId of the deciding policy entry (u32; events only)
const LK = -96; // lost-counter key (u32; events only)
const EV = -136; // event record, 40 bytes (events only)
const ST = -144; // 1 if the packet may start a tracked connection (u64)

function lookup(map: AnyMap, keyOff: number): ProgramText {
  return [
    asm.loadMapPtr(R1, map),
    asm.mov.reg(R2, R10),
    asm.add.imm(R2, keyOff),
    asm.call(Helper.MapLookupElem),
  ];
}

/** The program text for one direction of one endpoint. */
export function policyProgram(
  direction: 'ingress' | 'egress',
  maps: PolicyProgramMaps,
): ProgramText {
  const dir = DIR[direction];
  const other = direction === 'ingress' ? DIR.egress : DIR.ingress;
  // The peer is the destination of what the pod sends, the source of what it receives.
  const peerOff = direction === 'egress' ? Off.ctKey.daddr : Off.ctKey.saddr;
  const ev = maps.events;
  const E = (...t: ProgramText): ProgramText => (ev ? t : []);
  const dirFlag = direction === 'egress' ? EventFlags.Egress : 0;
  return [
    asm.mov.reg(R6, R1), // r6 = ctx
    asm.stdw(R10, ST, 1), // may start a connection, until the L4 header says otherwise
    E(asm.stdw(R10, TF, 0), asm.stw(R10, RID, 0)),
    asm.ldxw(R2, R6, SkBuffCtx.data),
    asm.ldxw(R3, R6, SkBuffCtx.dataEnd),
    asm.mov.reg(R1, R2),
    asm.add.imm(R1, ETH_HLEN + 20),
    asm.jgt.reg(R1, R3, 'pass'), // shorter than Ethernet + IPv4
    asm.ldxh(R1, R2, 12),
    asm.jne.imm(R1, ETH_P_IP_LE, 'pass'), // not IPv4 (ARP, ...)
    asm.ldxb(R4, R2, ETH_HLEN),
    asm.and.imm(R4, 0x0f),
    asm.lsh.imm(R4, 2), // r4 = IPv4 header length (0..60)
    asm.ldxb(R8, R2, ETH_HLEN + 9), // r8 = protocol
    asm.ldxw(R1, R2, ETH_HLEN + 12),
    asm.stxw(R10, CT + Off.ctKey.saddr, R1),
    asm.ldxw(R1, R2, ETH_HLEN + 16),
    asm.stxw(R10, CT + Off.ctKey.daddr, R1),
    asm.mov.imm(R9, 0), // r9 = ports word (sport in the low half, as in memory)
    asm.add.imm(R2, ETH_HLEN),
    asm.add.reg(R2, R4), // r2 = L4 header
    asm.mov.reg(R1, R2),
    asm.add.imm(R1, 8),
    asm.jgt.reg(R1, R3, 'l4done'),
    asm.jeq.imm(R8, IPPROTO_TCP, 'ports'),
    asm.jeq.imm(R8, IPPROTO_UDP, 'ports'),
    asm.jeq.imm(R8, IPPROTO_SCTP, 'ports'),
    asm.jeq.imm(R8, IPPROTO_ICMP, 'icmp'),
    asm.ja('l4done'),
    asm.label('ports'),
    asm.ldxw(R9, R2, 0),
    asm.jne.imm(R8, IPPROTO_TCP, 'l4done'),
    asm.stdw(R10, ST, 0),
    asm.mov.reg(R1, R2),
    asm.add.imm(R1, 14),
    asm.jgt.reg(R1, R3, 'l4done'),
    asm.ldxb(R1, R2, 13), // TCP flags
    E(asm.stxdw(R10, TF, R1)),
    asm.and.imm(R1, TCP_SYN | TCP_ACK),
    asm.jne.imm(R1, TCP_SYN, 'l4done'),
    asm.stdw(R10, ST, 1), // a SYN (without ACK) starts a connection
    asm.ja('l4done'),
    asm.label('icmp'),
    asm.ldxb(R1, R2, 0),
    asm.jeq.imm(R1, 8, 'echo'), // echo request
    asm.jne.imm(R1, 0, 'l4done'),
    asm.stdw(R10, ST, 0), // an echo reply starts nothing
    asm.label('echo'),
    asm.ldxh(R9, R2, 4), // the echo id as both "ports", so the reply's reversed tuple matches
    asm.mov.reg(R1, R9),
    asm.lsh.imm(R1, 16),
    asm.or.reg(R9, R1),
    asm.label('l4done'),
    asm.stxw(R10, CT + Off.ctKey.sport, R9), // sport + dport
    asm.mov.reg(R1, R8),
    asm.or.imm(R1, dir << 8),
    asm.stxw(R10, CT + Off.ctKey.proto, R1), // proto, dir, pad

    // Reversed tuple under the other direction: a reply of a connection it allowed.
    asm.ldxw(R1, R10, CT + Off.ctKey.daddr),
    asm.stxw(R10, RK + Off.ctKey.saddr, R1),
    asm.ldxw(R1, R10, CT + Off.ctKey.saddr),
    asm.stxw(R10, RK + Off.ctKey.daddr, R1),
    asm.mov32.reg(R1, R9),
    asm.rsh.imm32(R1, 16),
    asm.mov32.reg(R2, R9),
    asm.lsh.imm32(R2, 16),
    asm.or.reg32(R1, R2),
    asm.stxw(R10, RK + Off.ctKey.sport, R1),
    asm.mov.reg(R1, R8),
    asm.or.imm(R1, other << 8),
    asm.stxw(R10, RK + Off.ctKey.proto, R1),
    lookup(maps.ct, RK),
    asm.jne.imm(R0, 0, ev ? 'reply' : 'pass'), // reply: passes without policy

    // The peer's identity from the ipcache (a miss is world).
    asm.stw(R10, IK, 32),
    asm.ldxw(R1, R10, CT + peerOff),
    asm.stxw(R10, IK + 4, R1),
    lookup(maps.ipcache, IK),
    asm.mov.imm(R7, WORLD_IDENTITY),
    asm.jeq.imm(R0, 0, 'identity'),
    asm.ldxw(R7, R0, 0),
    asm.label('identity'),

    // Policy key {64, identity, dir, proto, dport (0 for protocols without ports)}.
    asm.stw(R10, PK + Off.policyKey.prefixLen, 64),
    asm.stxw(R10, PK + Off.policyKey.identity, R7),
    asm.mov.imm(R1, 0),
    asm.jeq.imm(R8, IPPROTO_TCP, 'dport'),
    asm.jeq.imm(R8, IPPROTO_UDP, 'dport'),
    asm.jeq.imm(R8, IPPROTO_SCTP, 'dport'),
    asm.ja('pkey'),
    asm.label('dport'),
    asm.mov32.reg(R1, R9),
    asm.rsh.imm32(R1, 16),
    asm.lsh.imm32(R1, 16), // dport bytes in the high half (offset 10..11)
    asm.label('pkey'),
    asm.mov.reg(R2, R8),
    asm.lsh.imm(R2, 8),
    asm.or.reg(R1, R2),
    asm.or.imm(R1, dir),
    asm.stxw(R10, PK + Off.policyKey.dir, R1), // dir, proto, dport

    asm.mov.imm(R9, 0), // r9 = allowed
    lookup(maps.policy, PK),
    asm.jeq.imm(R0, 0, 'wildcard'),
    asm.ldxb(R1, R0, Off.policyValue.flags),
    E(asm.ldxw(R2, R0, Off.policyValue.ruleId), asm.stxw(R10, RID, R2)),
    asm.jset.imm(R1, PolicyFlags.Deny, 'deny'),
    asm.mov.imm(R9, 1),
    // no deny of the wildcard identity overlaps this allow: the wildcard lookup cannot deny
    asm.jset.imm(R1, PolicyFlags.Final, 'decide'),
    asm.label('wildcard'),
    asm.stw(R10, PK + Off.policyKey.identity, 0),
    lookup(maps.policy, PK),
    asm.jeq.imm(R0, 0, 'decide'),
    asm.ldxb(R1, R0, Off.policyValue.flags),
    asm.jset.imm(R1, PolicyFlags.Deny, ev ? 'wdeny' : 'deny'),
    E(
      asm.jne.imm(R9, 0, 'wallow'), // the identity's own allow names the rule
      asm.ldxw(R2, R0, Off.policyValue.ruleId),
      asm.stxw(R10, RID, R2),
      asm.label('wallow'),
    ),
    asm.mov.imm(R9, 1),
    asm.label('decide'),
    asm.jeq.imm(R9, 0, 'denied'),

    // Allowed. Only what starts a connection is tracked (a TCP SYN without ACK, not an
    // ICMP echo reply): a mid-stream segment whose entry is gone, e.g. the server's
    // retransmission after a revoked allow dropped the client's segment and deleted its
    // entry, must not create an entry in this direction, or the client's next segments
    // would pass the server's ingress as "replies" to it.
    ev
      ? [
          lookup(maps.ct, CT),
          asm.jne.imm(R0, 0, 'established'), // traces of a tracked connection
          asm.ldxdw(R1, R10, ST),
          asm.jeq.imm(R1, 0, 'pass'),
        ]
      : [
          // Without events an existing entry changes nothing (the packet passes): no CT
          // lookup for a segment that starts nothing, nor for a SYN (BPF_NOEXIST keeps an
          // entry of a retransmitted SYN); other protocols look first, since an LRU insert
          // takes a free node before it finds the key exists.
          asm.ldxdw(R1, R10, ST),
          asm.jeq.imm(R1, 0, 'pass'),
          asm.jeq.imm(R8, IPPROTO_TCP, 'track'),
          lookup(maps.ct, CT),
          asm.jne.imm(R0, 0, 'pass'),
        ],
    asm.label('track'),
    asm.stxw(R10, CV + Off.ctValue.identity, R7),
    ev
      ? [
          // CT flags word: {u8 TCP flags seen forward; u8 seen in reply; u16 last event time}
          asm.call(Helper.KtimeGetNs),
          asm.stxdw(R10, EV + EventOff.ktimeNs, R0),
          asm.rsh.imm(R0, AGGREGATION_CLOCK_SHIFT),
          asm.and.imm(R0, 0xffff),
          asm.lsh.imm(R0, 16),
          asm.ldxdw(R1, R10, TF),
          asm.or.reg(R0, R1),
          asm.stxw(R10, CV + Off.ctValue.flags, R0),
        ]
      : asm.stw(R10, CV + Off.ctValue.flags, 0),
    asm.loadMapPtr(R1, maps.ct),
    asm.mov.reg(R2, R10),
    asm.add.imm(R2, CT),
    asm.mov.reg(R3, R10),
    asm.add.imm(R3, CV),
    asm.mov.imm(R4, BPF_NOEXIST),
    asm.call(Helper.MapUpdateElem),
    ev
      ? [
          // A new connection allowed: a policy verdict event naming the rule.
          asm.stw(R10, EV, EventType.PolicyVerdict | (dirFlag << 16)),
          packetEventTail(ev, R7, 'verdict'),
        ]
      : [],
    asm.label('pass'),
    asm.retImm(TcAction.Next),

    ev
      ? [
          asm.label('reply'),
          aggregate(ev, 8, dirFlag | EventFlags.Reply, 'reply'),
          asm.label('established'),
          aggregate(ev, 0, dirFlag, 'est'),
          asm.label('wdeny'),
          asm.ldxw(R2, R0, Off.policyValue.ruleId),
          asm.stxw(R10, RID, R2),
        ]
      : [],
    asm.label('deny'),
    asm.stw(R10, DK, DropReason.PolicyDenyRule),
    E(
      asm.stw(
        R10,
        EV,
        EventType.Drop | (EventDropReason.PolicyDeny << 8) | ((dirFlag | EventFlags.Denied) << 16),
      ),
    ),
    asm.ja('drop'),
    asm.label('denied'),
    asm.stw(R10, DK, DropReason.PolicyDenied),
    E(
      asm.stw(
        R10,
        EV,
        EventType.Drop |
          (EventDropReason.PolicyDenied << 8) |
          ((dirFlag | EventFlags.Denied) << 16),
      ),
    ),
    asm.label('drop'),
    ev
      ? [
          asm.call(Helper.KtimeGetNs),
          asm.stxdw(R10, EV + EventOff.ktimeNs, R0),
          packetEventTail(ev, R7, 'drop'),
        ]
      : [],
    lookup(maps.drops, DK),
    asm.jeq.imm(R0, 0, 'uncounted'),
    asm.ldxdw(R1, R0, 0),
    asm.add.imm(R1, 1),
    asm.stxdw(R0, 0, R1),
    asm.label('uncounted'),
    // A revoked allow: forget the connection, so its replies stop too.
    asm.loadMapPtr(R1, maps.ct),
    asm.mov.reg(R2, R10),
    asm.add.imm(R2, CT),
    asm.call(Helper.MapDeleteElem),
    asm.retImm(TcAction.Drop),
  ];
}

/**
 * The rest of a packet event whose first word (type, subType, flags) is stored and
 * whose ktime is at EV+8: the protocol, endpoint, tuple, identity (`idReg`), the
 * deciding ruleId and TCP flags; then writes it. Clobbers r0-r5.
 */
function packetEventTail(
  ev: EventProgramMaps & { endpointId: number },
  idReg: typeof R7,
  label: string,
): ProgramText {
  return [
    asm.ldxw(R1, R10, EV),
    asm.mov.reg(R2, R8),
    asm.lsh.imm(R2, 24),
    asm.or.reg(R1, R2),
    asm.stxw(R10, EV, R1),
    asm.stw(R10, EV + EventOff.endpoint, ev.endpointId),
    asm.ldxw(R1, R10, CT + Off.ctKey.saddr),
    asm.stxw(R10, EV + EventOff.saddr, R1),
    asm.ldxw(R1, R10, CT + Off.ctKey.daddr),
    asm.stxw(R10, EV + EventOff.daddr, R1),
    asm.ldxw(R1, R10, CT + Off.ctKey.sport),
    asm.stxw(R10, EV + EventOff.sport, R1), // sport + dport, as in the packet
    asm.stxw(R10, EV + EventOff.identity, idReg),
    asm.ldxw(R1, R10, RID),
    asm.stxw(R10, EV + EventOff.ruleId, R1),
    asm.ldxdw(R1, R10, TF),
    asm.stxw(R10, EV + EventOff.tcpFlags, R1), // flags byte + 3 zero bytes
    emitRecord(ev, EV, EventOff.packetSize, LK, label),
  ];
}

/**
 * Cilium's `medium` monitor aggregation for a packet of a tracked connection (r0 =
 * its CT value): a TRACE event when the packet brings a TCP flag of
 * AGGREGATION_TCP_FLAGS (FIN, SYN, RST) this side of the connection has not shown
 * yet, or when the last event is AGGREGATION_INTERVAL
 * old; otherwise nothing. `shift` selects the side's flags byte (0 forward, 8 reply).
 * Ends by passing the packet.
 */
function aggregate(
  ev: EventProgramMaps & { endpointId: number },
  shift: 0 | 8,
  flags: number,
  label: string,
): ProgramText {
  return [
    asm.mov.reg(R9, R0), // r9 = CT value
    asm.call(Helper.KtimeGetCoarseNs), // the tick's time: cheap, and ~1 s units need no more
    asm.rsh.imm(R0, AGGREGATION_CLOCK_SHIFT),
    asm.and.imm(R0, 0xffff), // r0 = now (aggregation clock)
    asm.ldxw(R1, R9, Off.ctValue.flags),
    asm.ldxdw(R4, R10, TF), // this packet's TCP flags
    asm.and.imm(R4, AGGREGATION_TCP_FLAGS), // those that report when new (FIN, SYN, RST)
    asm.mov.reg(R2, R1),
    asm.rsh.imm(R2, 16), // last event time
    asm.mov.reg(R3, R0),
    asm.sub.reg(R3, R2),
    asm.and.imm(R3, 0xffff),
    asm.jge.imm(R3, AGGREGATION_INTERVAL_UNITS, `${label}_notify`),
    asm.mov.reg(R3, R1),
    shift ? asm.rsh.imm(R3, shift) : [],
    asm.and.imm(R3, 0xff), // flags this side has shown
    asm.mov.reg(R5, R4),
    asm.or.reg(R5, R3),
    asm.jne.reg(R5, R3, `${label}_notify`),
    asm.ja('pass'),
    asm.label(`${label}_notify`),
    asm.mov.reg(R2, R0),
    asm.lsh.imm(R2, 16),
    asm.and.imm(R1, 0xffff),
    asm.or.reg(R1, R2),
    shift ? asm.lsh.imm(R4, shift) : [],
    asm.or.reg(R1, R4),
    asm.stxw(R9, Off.ctValue.flags, R1),
    asm.call(Helper.KtimeGetNs), // the event's precise time
    asm.stxdw(R10, EV + EventOff.ktimeNs, R0),
    asm.stw(R10, EV, EventType.Trace | (flags << 16)),
    asm.ldxw(R7, R9, Off.ctValue.identity),
    packetEventTail(ev, R7, label),
    asm.ja('pass'),
  ];
}

/** Loads one direction's program for an endpoint. Throws VerifierError / BpfError. */
export function loadPolicyProgram(
  direction: 'ingress' | 'egress',
  maps: PolicyProgramMaps,
): Program {
  return loadProgram({
    name: direction === 'ingress' ? 'tdl_pol_ingress' : 'tdl_pol_egress',
    type: ProgramType.SchedCls,
    instructions: policyProgram(direction, maps),
  });
}

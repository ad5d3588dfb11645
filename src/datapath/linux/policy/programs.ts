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
 *      nothing drops (default deny). Every packet of the originating direction is
 *      judged, so revoking an allow cuts established connections too;
 *   5. allowed: record the tuple in CT (if absent) and pass; dropped: count the reason in
 *      the per-CPU drop map and delete the tuple's CT entry, so replies stop too.
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
}

const ETH_HLEN = 14;
const ETH_P_IP_LE = 0x0008; // 0x0800 read as a little-endian u16
const IPPROTO_ICMP = 1;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPPROTO_SCTP = 132;
const BPF_NOEXIST = 1;

// Stack layout (offsets from r10).
const CT = -16; // forward CT key, 16 bytes
const PK = -32; // policy key, 12 bytes
const IK = -40; // ipcache key {prefixlen, addr}, 8 bytes
const CV = -48; // CT value, 8 bytes
const DK = -56; // drop counter index (u32)
const RK = -72; // reversed CT key, 16 bytes

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
  return [
    asm.mov.reg(R6, R1), // r6 = ctx
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
    asm.ja('l4done'),
    asm.label('icmp'),
    asm.ldxb(R1, R2, 0),
    asm.jeq.imm(R1, 8, 'echo'), // echo request
    asm.jeq.imm(R1, 0, 'echo'), // echo reply
    asm.ja('l4done'),
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
    asm.jne.imm(R0, 0, 'pass'), // reply: passes without policy

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
    asm.jset.imm(R1, PolicyFlags.Deny, 'deny'),
    asm.mov.imm(R9, 1),
    asm.label('wildcard'),
    asm.stw(R10, PK + Off.policyKey.identity, 0),
    lookup(maps.policy, PK),
    asm.jeq.imm(R0, 0, 'decide'),
    asm.ldxb(R1, R0, Off.policyValue.flags),
    asm.jset.imm(R1, PolicyFlags.Deny, 'deny'),
    asm.mov.imm(R9, 1),
    asm.label('decide'),
    asm.jeq.imm(R9, 0, 'denied'),

    // Allowed: track the connection so its replies pass.
    lookup(maps.ct, CT),
    asm.jne.imm(R0, 0, 'pass'),
    asm.stxw(R10, CV + Off.ctValue.identity, R7),
    asm.stw(R10, CV + Off.ctValue.flags, 0),
    asm.loadMapPtr(R1, maps.ct),
    asm.mov.reg(R2, R10),
    asm.add.imm(R2, CT),
    asm.mov.reg(R3, R10),
    asm.add.imm(R3, CV),
    asm.mov.imm(R4, BPF_NOEXIST),
    asm.call(Helper.MapUpdateElem),
    asm.label('pass'),
    asm.retImm(TcAction.Next),

    asm.label('deny'),
    asm.stw(R10, DK, DropReason.PolicyDenyRule),
    asm.ja('drop'),
    asm.label('denied'),
    asm.stw(R10, DK, DropReason.PolicyDenied),
    asm.label('drop'),
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

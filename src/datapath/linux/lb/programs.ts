/**
 * The socket load balancer's programs (BPF_PROG_TYPE_CGROUP_SOCK_ADDR), as
 * Cilium's bpf_sock.c, assembled here:
 *
 *   connect4, sendmsg4   forward: {user_ip4, user_port, protocol} found in the
 *                        services map -> pick a backend (random slot, or the
 *                        Maglev table at hash(socket cookie) % M), rewrite the
 *                        destination; for UDP remember {cookie, backend} -> VIP
 *                        in the reverse-NAT map. A service with no backends
 *                        refuses at once: bpf_set_retval(-ECONNREFUSED), return 0.
 *   recvmsg4, getpeername4  reverse: {cookie, user_ip4, user_port} found in the
 *                        reverse-NAT map -> rewrite the address back to the VIP.
 *
 * Offsets come from ./maps.ts (Off); ctx offsets from SockAddrCtx.
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
import { loadProgram, type Program } from '../../bpf/program.js';
import { AttachType, ProgramType, SockAddrCtx, type AttachTypeId } from '../../bpf/types.js';
import { IPPROTO, MAGLEV_M, Off, SvcFlags, type LBMaps } from './maps.js';
import {
  EventOff,
  EventType,
  SOCK_XLATE_POST_FWD,
  emitRecord,
  type EventProgramMaps,
} from '../events.js';

const ECONNREFUSED = 111;

/** The four hooks, their attach types and program names. STABLE (pinned link names). */
export const HOOKS = [
  { hook: 'connect4', attachType: AttachType.CgroupInet4Connect, name: 'lb4_connect' },
  { hook: 'sendmsg4', attachType: AttachType.CgroupUdp4Sendmsg, name: 'lb4_sendmsg' },
  { hook: 'recvmsg4', attachType: AttachType.CgroupUdp4Recvmsg, name: 'lb4_recvmsg' },
  { hook: 'getpeername4', attachType: AttachType.CgroupInet4Getpeername, name: 'lb4_getpeername' },
] as const satisfies ReadonlyArray<{ hook: string; attachType: AttachTypeId; name: string }>;

export type Hook = (typeof HOOKS)[number]['hook'];

// Stack layout of the forward program (offsets from r10).
const SK = -16; // service key, 12 bytes: vip @-16, dport|proto @-12, slot|pad @-8
const BK = -24; // backend id / maglev key (u32)
const RK = -40; // reverse-NAT key, 16 bytes: cookie @-40, ip @-32, port|pad @-28
const RV = -48; // reverse-NAT value, 8 bytes: vip @-48, vport @-44, revNat @-42
const EVS = -112; // socket translation event, 64 bytes (events only)
const LK = -116; // lost-counter key (events only)

/** connect4 / sendmsg4: translate a service address to a backend. */
export function forwardProgram(
  maps: Pick<LBMaps, 'services' | 'backends' | 'revnat' | 'maglev'>,
  events?: EventProgramMaps,
): ProgramText {
  const lookup = (map: { fd: number; name: string }, keyOff: number) => [
    asm.loadMapPtr(R1, map),
    asm.mov.reg(R2, R10),
    asm.add.imm(R2, keyOff),
    asm.call(Helper.MapLookupElem),
  ];
  return [
    asm.mov.reg(R6, R1), // r6 = ctx
    // service key {vip, dport, proto, pad, slot 0, pad}
    asm.ldxw(R7, R6, SockAddrCtx.userIp4),
    asm.stxw(R10, SK + Off.svcKey.vip, R7),
    asm.ldxw(R8, R6, SockAddrCtx.protocol), // r8 = protocol (kept across calls)
    asm.ldxw(R7, R6, SockAddrCtx.userPort),
    asm.and.imm(R7, 0xffff), // port, network order in the low 16 bits
    asm.mov.reg(R1, R8),
    asm.and.imm(R1, 0xff),
    asm.lsh.imm(R1, 16),
    asm.or.reg(R7, R1),
    asm.stxw(R10, SK + Off.svcKey.dport, R7), // dport (2 bytes), proto, pad
    asm.stw(R10, SK + Off.svcKey.slot, 0), // slot 0 = master, pad
    lookup(maps.services, SK),
    asm.jeq.imm(R0, 0, 'pass'), // not a service
    asm.ldxh(R7, R0, Off.svcValue.count),
    asm.ldxh(R9, R0, Off.svcValue.revNat), // r9 = service id (kept across calls)
    asm.ldxb(R1, R0, Off.svcValue.flags),
    asm.jeq.imm(R7, 0, 'refuse'), // no backends: refuse at once
    asm.jset.imm(R1, SvcFlags.Maglev, 'maglev'),

    // random: slot = prandom % count + 1
    asm.call(Helper.GetPrandomU32),
    asm.mod.reg(R0, R7),
    asm.add.imm(R0, 1),
    asm.stxh(R10, SK + Off.svcKey.slot, R0),
    lookup(maps.services, SK),
    asm.jne.imm(R0, 0, 'slot'),
    // the slot vanished (the service shrank between our two lookups): take slot 1
    asm.sth(R10, SK + Off.svcKey.slot, 1),
    lookup(maps.services, SK),
    asm.jeq.imm(R0, 0, 'refuse'),
    asm.label('slot'),
    asm.ldxw(R7, R0, Off.svcValue.backendId),
    asm.ja('backend'),

    // maglev: table[hash(cookie) % M]
    asm.label('maglev'),
    asm.mov.reg(R1, R6),
    asm.call(Helper.GetSocketCookie),
    asm.mov.reg(R1, R0),
    asm.rsh.imm(R1, 32),
    asm.xor.reg(R0, R1),
    asm.mov32.reg(R0, R0),
    asm.mul.imm(R0, 0x45d9f3b),
    asm.mov.reg(R1, R0),
    asm.rsh.imm(R1, 16),
    asm.xor.reg(R0, R1),
    asm.mov32.reg(R0, R0),
    asm.mod.imm(R0, MAGLEV_M),
    asm.mov.reg(R7, R0),
    asm.jge.imm(R7, MAGLEV_M, 'refuse'), // bound for the verifier
    asm.stxw(R10, BK, R9),
    lookup(maps.maglev, BK),
    asm.jeq.imm(R0, 0, 'refuse'),
    asm.lsh.imm(R7, 2),
    asm.add.reg(R0, R7),
    asm.ldxw(R7, R0, 0),

    // backend id in r7
    asm.label('backend'),
    asm.stxw(R10, BK, R7),
    lookup(maps.backends, BK),
    asm.jeq.imm(R0, 0, 'refuse'),
    asm.ldxw(R1, R0, Off.backend.ip),
    asm.ldxh(R2, R0, Off.backend.port),
    asm.stxw(R6, SockAddrCtx.userIp4, R1),
    asm.stxw(R6, SockAddrCtx.userPort, R2), // user_port takes 4-byte stores only
    asm.jne.imm(R8, IPPROTO.UDP, 'allow'),

    // UDP: reverse-NAT entry {cookie, backend ip, backend port} -> {vip, vport, revNat}
    asm.stxw(R10, RK + Off.revNatKey.ip, R1),
    asm.stxw(R10, RK + Off.revNatKey.port, R2), // port + zero pad
    asm.mov.reg(R1, R6),
    asm.call(Helper.GetSocketCookie),
    asm.stxdw(R10, RK + Off.revNatKey.cookie, R0),
    asm.ldxw(R1, R10, SK + Off.svcKey.vip),
    asm.stxw(R10, RV + Off.revNatValue.vip, R1),
    asm.ldxh(R1, R10, SK + Off.svcKey.dport),
    asm.stxh(R10, RV + Off.revNatValue.vport, R1),
    asm.stxh(R10, RV + Off.revNatValue.revNat, R9),
    asm.loadMapPtr(R1, maps.revnat),
    asm.mov.reg(R2, R10),
    asm.add.imm(R2, RK),
    asm.mov.reg(R3, R10),
    asm.add.imm(R3, RV),
    asm.mov.imm(R4, 0),
    asm.call(Helper.MapUpdateElem),
    asm.label('allow'),
    events ? sockEvent(events) : [],
    asm.retImm(1),

    asm.label('pass'),
    asm.retImm(1),

    asm.label('refuse'),
    asm.mov.imm(R1, -ECONNREFUSED),
    asm.call(Helper.SetRetval),
    asm.retImm(0),
  ];
}

/**
 * A TRACE_SOCK event (../events.ts) for the translation just made: frontend from the
 * service key on the stack, backend from the rewritten ctx, service id in r9, protocol
 * in r8, socket cookie and cgroup id. Clobbers r0-r5.
 */
function sockEvent(events: EventProgramMaps): ProgramText {
  return [
    asm.mov.reg(R1, R8),
    asm.and.imm(R1, 0xff),
    asm.lsh.imm(R1, 24),
    asm.or.imm(R1, EventType.TraceSock | (SOCK_XLATE_POST_FWD << 8)),
    asm.stxw(R10, EVS, R1),
    asm.stw(R10, EVS + EventOff.endpoint, 0),
    asm.call(Helper.KtimeGetNs),
    asm.stxdw(R10, EVS + EventOff.ktimeNs, R0),
    asm.stw(R10, EVS + EventOff.saddr, 0),
    asm.ldxw(R1, R6, SockAddrCtx.userIp4),
    asm.stxw(R10, EVS + EventOff.daddr, R1),
    asm.ldxw(R1, R6, SockAddrCtx.userPort),
    asm.and.imm(R1, 0xffff),
    asm.lsh.imm(R1, 16), // sport 0, dport = the backend port (network order)
    asm.stxw(R10, EVS + EventOff.sport, R1),
    asm.stxw(R10, EVS + EventOff.identity, R9), // the service id
    asm.stw(R10, EVS + EventOff.ruleId, 0),
    asm.stw(R10, EVS + EventOff.tcpFlags, 0),
    asm.ldxw(R1, R10, SK + Off.svcKey.vip),
    asm.stxw(R10, EVS + EventOff.origDaddr, R1),
    asm.ldxh(R1, R10, SK + Off.svcKey.dport),
    asm.stxw(R10, EVS + EventOff.origDport, R1), // port + zero pad
    asm.mov.reg(R1, R6),
    asm.call(Helper.GetSocketCookie),
    asm.stxdw(R10, EVS + EventOff.cookie, R0),
    asm.call(Helper.GetCurrentCgroupId),
    asm.stxdw(R10, EVS + EventOff.cgroupId, R0),
    emitRecord(events, EVS, EventOff.sockSize, LK, 'sock'),
  ];
}

/** recvmsg4 / getpeername4: show the VIP instead of the backend the socket was sent to. */
export function reverseProgram(maps: Pick<LBMaps, 'revnat'>): ProgramText {
  return [
    asm.mov.reg(R6, R1),
    asm.call(Helper.GetSocketCookie),
    asm.stxdw(R10, -16 + Off.revNatKey.cookie, R0),
    asm.ldxw(R1, R6, SockAddrCtx.userIp4),
    asm.stxw(R10, -16 + Off.revNatKey.ip, R1),
    asm.ldxw(R1, R6, SockAddrCtx.userPort),
    asm.and.imm(R1, 0xffff),
    asm.stxw(R10, -16 + Off.revNatKey.port, R1),
    asm.loadMapPtr(R1, maps.revnat),
    asm.mov.reg(R2, R10),
    asm.add.imm(R2, -16),
    asm.call(Helper.MapLookupElem),
    asm.jeq.imm(R0, 0, 'out'),
    asm.ldxw(R1, R0, Off.revNatValue.vip),
    asm.stxw(R6, SockAddrCtx.userIp4, R1),
    asm.ldxh(R1, R0, Off.revNatValue.vport),
    asm.stxw(R6, SockAddrCtx.userPort, R1),
    asm.label('out'),
    asm.retImm(1),
  ];
}

/** Loads the program of one hook against `maps`. Throws VerifierError / BpfError. */
export function loadHookProgram(hook: Hook, maps: LBMaps, events?: EventProgramMaps): Program {
  const h = HOOKS.find((x) => x.hook === hook)!;
  const forward = hook === 'connect4' || hook === 'sendmsg4';
  // Translations are reported at connect (TCP, connected UDP); per-datagram sendmsg is not.
  return loadProgram({
    name: h.name,
    type: ProgramType.CgroupSockAddr,
    expectedAttachType: h.attachType,
    instructions: forward
      ? forwardProgram(maps, hook === 'connect4' ? events : undefined)
      : reverseProgram(maps),
  });
}

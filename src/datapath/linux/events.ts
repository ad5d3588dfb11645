/**
 * Datapath events for flow observability (Hubble): the layout of the records
 * the policy programs and the socket load balancer write to one BPF ring
 * buffer, the program text that writes them, and the decoder the agent uses.
 * The offsets below are the single source of truth for both sides (the
 * assembler stores at `EventOff.*`, `decodeEvent` reads at `EventOff.*`).
 *
 * A record (little-endian host order unless "be"):
 *
 *   0  u8   type      Cilium monitor message type: 1 DROP, 4 TRACE, 9 POLICY_VERDICT, 12 TRACE_SOCK
 *   1  u8   subType   DROP: Hubble DropReason number; TRACE_SOCK: SocketTranslationPoint; else 0
 *   2  u8   flags     EventFlags: bit 0 the endpoint's egress, bit 1 reply, bit 2 denied
 *   3  u8   proto     IP protocol
 *   4  u32  endpoint  local endpoint id whose program saw it (0 for TRACE_SOCK)
 *   8  u64  ktimeNs   bpf_ktime_get_ns() (CLOCK_MONOTONIC)
 *  16  be32 saddr     packet source (TRACE_SOCK: 0, the socket is not bound yet)
 *  20  be32 daddr     packet destination (TRACE_SOCK: the backend chosen)
 *  24  be16 sport
 *  26  be16 dport     (TRACE_SOCK: the backend's port)
 *  28  u32  identity  the peer's security identity (TRACE_SOCK: the service id / rev-NAT index)
 *  32  u32  ruleId    policy map value's ruleId that allowed or denied it (0: none)
 *  36  u8   tcpFlags  the packet's TCP flags byte (TRACE: the flags seen so far on this side)
 *  37..39      zero
 *  -- 40 bytes for DROP / TRACE / POLICY_VERDICT; TRACE_SOCK continues: --
 *  40  be32 origDaddr the service frontend (VIP) the socket asked for
 *  44  be16 origDport its port
 *  46  u16  zero
 *  48  u64  cookie    socket cookie
 *  56  u64  cgroupId  the calling task's cgroup v2 id
 *  -- 64 bytes
 *
 * When bpf_ringbuf_output fails (ring full) the program adds one to the per-CPU
 * `lost` counter (PERCPU_ARRAY, index 0); the agent sums it into FlowRing.addLost.
 *
 * Pins under `<bpffsDir>/events/`: `ring` (RINGBUF) and `lost` (PERCPU_ARRAY).
 */
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { asm, Helper, R0, R1, R2, R3, R4, R10, type ProgramText } from '../bpf/asm/index.js';
import { u32, u64 } from '../bpf/codec.js';
import { MapMismatchError } from '../bpf/errors.js';
import { createOrReusePinnedMap, type BpfMap, type MapSpec } from '../bpf/map.js';
import { MapType } from '../bpf/types.js';

/** Monitor message types of records (Cilium's numbers, as Flow.eventType.type). */
export const EventType = { Drop: 1, Trace: 4, PolicyVerdict: 9, TraceSock: 12 } as const;

/** Bits of the flags byte. */
export const EventFlags = { Egress: 1, Reply: 2, Denied: 4 } as const;

/** Record field offsets. STABLE: programs and decoder share them. */
export const EventOff = {
  type: 0,
  subType: 1,
  flags: 2,
  proto: 3,
  endpoint: 4,
  ktimeNs: 8,
  saddr: 16,
  daddr: 20,
  sport: 24,
  dport: 26,
  identity: 28,
  ruleId: 32,
  tcpFlags: 36,
  /** Size of DROP / TRACE / POLICY_VERDICT records. */
  packetSize: 40,
  origDaddr: 40,
  origDport: 44,
  cookie: 48,
  cgroupId: 56,
  /** Size of TRACE_SOCK records. */
  sockSize: 64,
} as const;

/** Hubble DropReason numbers the programs write (flow.proto / Cilium's common.h). */
export const EventDropReason = { PolicyDenied: 133, PolicyDeny: 181 } as const;

/** TRACE_SOCK subtype: translation after the forward direction (Hubble's SOCK_XLATE_POINT_POST_DIRECTION_FWD). */
export const SOCK_XLATE_POST_FWD = 2;

/** The interval of `medium` aggregation in ~1.07 s units (ktime >> 30); Cilium's default is 5 s. */
export const AGGREGATION_INTERVAL_UNITS = 5;
/** Right shift of ktime_ns giving the aggregation clock (~1.07 s per unit). */
export const AGGREGATION_CLOCK_SHIFT = 30;
/**
 * TCP flags whose first appearance on a side of a connection reports a TRACE under
 * `medium` aggregation: FIN | SYN | RST, Cilium's `monitor-aggregation-flags` default.
 * ACK and PSH do not (every connection shows them; with them a short connection made
 * ~7 events per node instead of ~4).
 */
export const AGGREGATION_TCP_FLAGS = 0x07;

/** A decoded record. Addresses are dotted quads; ports host order. */
export interface DatapathEvent {
  type: number;
  subType: number;
  flags: number;
  proto: number;
  endpoint: number;
  /** bpf_ktime_get_ns() as a Number (exact to the ns for 104 days of uptime, to 4 ns after a year). */
  ktimeNs: number;
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  identity: number;
  ruleId: number;
  tcpFlags: number;
  /** TRACE_SOCK only. */
  origDaddr?: string;
  origDport?: number;
  cookie?: bigint;
  cgroupId?: bigint;
}

/** A record that does not decode; code EVENT_BAD_RECORD. */
export class EventDecodeError extends Error {
  readonly code = 'EVENT_BAD_RECORD';
  constructor(message: string) {
    super(message);
    this.name = 'EventDecodeError';
  }
}

// 256 precomputed octet strings make address formatting a join of four lookups.
const OCTET = Array.from({ length: 256 }, (_, i) => String(i));
/** Dotted quads by their u32 value, so a busy peer's address is built once (bounded). */
const IP4_STRINGS = new Map<number, string>();
const IP4_STRINGS_MAX = 65_536;

function ip4(b: Buffer, off: number): string {
  const n = b.readUInt32BE(off);
  let s = IP4_STRINGS.get(n);
  if (s === undefined) {
    s = `${OCTET[b[off]!]}.${OCTET[b[off + 1]!]}.${OCTET[b[off + 2]!]}.${OCTET[b[off + 3]!]}`;
    if (IP4_STRINGS.size >= IP4_STRINGS_MAX) IP4_STRINGS.clear();
    IP4_STRINGS.set(n, s);
  }
  return s;
}
function ip4Bytes(ip: string, b: Buffer, off: number): void {
  const p = ip.split('.');
  for (let i = 0; i < 4; i++) b[off + i] = Number(p[i]);
}

/** Decodes one ring-buffer record. @throws EventDecodeError on a short or unknown record. */
export function decodeEvent(b: Buffer): DatapathEvent {
  if (b.length < EventOff.packetSize)
    throw new EventDecodeError(`datapath event of ${b.length} bytes (want >= 40)`);
  const type = b[EventOff.type]!;
  if (
    type !== EventType.Drop &&
    type !== EventType.Trace &&
    type !== EventType.PolicyVerdict &&
    type !== EventType.TraceSock
  )
    throw new EventDecodeError(`datapath event of unknown type ${type}`);
  const ev: DatapathEvent = {
    type,
    subType: b[EventOff.subType]!,
    flags: b[EventOff.flags]!,
    proto: b[EventOff.proto]!,
    endpoint: b.readUInt32LE(EventOff.endpoint),
    ktimeNs:
      b.readUInt32LE(EventOff.ktimeNs + 4) * 4_294_967_296 + b.readUInt32LE(EventOff.ktimeNs),
    saddr: ip4(b, EventOff.saddr),
    daddr: ip4(b, EventOff.daddr),
    sport: b.readUInt16BE(EventOff.sport),
    dport: b.readUInt16BE(EventOff.dport),
    identity: b.readUInt32LE(EventOff.identity),
    ruleId: b.readUInt32LE(EventOff.ruleId),
    tcpFlags: b[EventOff.tcpFlags]!,
  };
  if (type === EventType.TraceSock) {
    if (b.length < EventOff.sockSize)
      throw new EventDecodeError(`socket translation event of ${b.length} bytes (want 64)`);
    ev.origDaddr = ip4(b, EventOff.origDaddr);
    ev.origDport = b.readUInt16BE(EventOff.origDport);
    ev.cookie = b.readBigUInt64LE(EventOff.cookie);
    ev.cgroupId = b.readBigUInt64LE(EventOff.cgroupId);
  }
  return ev;
}

/** Encodes a record as the programs write it (tests and benchmarks). */
export function encodeEvent(ev: DatapathEvent): Buffer {
  const sock = ev.type === EventType.TraceSock;
  const b = Buffer.alloc(sock ? EventOff.sockSize : EventOff.packetSize);
  b[EventOff.type] = ev.type;
  b[EventOff.subType] = ev.subType;
  b[EventOff.flags] = ev.flags;
  b[EventOff.proto] = ev.proto;
  b.writeUInt32LE(ev.endpoint, EventOff.endpoint);
  b.writeUInt32LE(ev.ktimeNs % 4_294_967_296, EventOff.ktimeNs);
  b.writeUInt32LE(Math.floor(ev.ktimeNs / 4_294_967_296), EventOff.ktimeNs + 4);
  ip4Bytes(ev.saddr, b, EventOff.saddr);
  ip4Bytes(ev.daddr, b, EventOff.daddr);
  b.writeUInt16BE(ev.sport, EventOff.sport);
  b.writeUInt16BE(ev.dport, EventOff.dport);
  b.writeUInt32LE(ev.identity >>> 0, EventOff.identity);
  b.writeUInt32LE(ev.ruleId >>> 0, EventOff.ruleId);
  b[EventOff.tcpFlags] = ev.tcpFlags;
  if (sock) {
    ip4Bytes(ev.origDaddr ?? '0.0.0.0', b, EventOff.origDaddr);
    b.writeUInt16BE(ev.origDport ?? 0, EventOff.origDport);
    b.writeBigUInt64LE(ev.cookie ?? 0n, EventOff.cookie);
    b.writeBigUInt64LE(ev.cgroupId ?? 0n, EventOff.cgroupId);
  }
  return b;
}

// ---------------------------------------------------------------- maps

/** Default ring buffer size (bytes): 16,384 packet records. */
export const DEFAULT_EVENTS_RING_BYTES = 1 << 20;

/** Pin names under `<bpffsDir>/events/`. STABLE. */
export const EVENTS_PIN = { dir: 'events', ring: 'ring', lost: 'lost' } as const;

/** The ring buffer map spec for a size in bytes. @throws RangeError if not a power of 2 >= 4096. */
export function eventsRingSpec(bytes: number): MapSpec {
  if (!Number.isInteger(bytes) || bytes < 4096 || (bytes & (bytes - 1)) !== 0)
    throw new RangeError(
      `events ring buffer size ${bytes}: must be a power of 2 of at least 4096 bytes`,
    );
  return { name: 'tdl_events', type: MapType.Ringbuf, maxEntries: bytes };
}

export const eventsLostSpec: MapSpec<number, bigint> = {
  name: 'tdl_events_lost',
  type: MapType.PercpuArray,
  maxEntries: 1,
  key: u32,
  value: u64,
};

/** The node's event maps. */
export interface EventMaps {
  ring: BpfMap<unknown, unknown>;
  lost: BpfMap<number, bigint>;
}

/**
 * Opens or creates the pinned event maps. A ring of another size is replaced
 * (its records are transient). @throws BpfError, RangeError
 */
export function openEventMaps(bpffsDir: string, ringBytes = DEFAULT_EVENTS_RING_BYTES): EventMaps {
  const dir = join(bpffsDir, EVENTS_PIN.dir);
  const ringPath = join(dir, EVENTS_PIN.ring);
  let ring: BpfMap<unknown, unknown>;
  try {
    ring = createOrReusePinnedMap(eventsRingSpec(ringBytes), ringPath) as BpfMap<unknown, unknown>;
  } catch (e) {
    if (!(e instanceof MapMismatchError)) throw e;
    rmSync(ringPath, { force: true });
    ring = createOrReusePinnedMap(eventsRingSpec(ringBytes), ringPath) as BpfMap<unknown, unknown>;
  }
  try {
    const lost = createOrReusePinnedMap(eventsLostSpec, join(dir, EVENTS_PIN.lost));
    return { ring, lost };
  } catch (e) {
    ring.close();
    throw e;
  }
}

/** Events lost so far (ring full), summed over CPUs. */
export function readLostEvents(maps: Pick<EventMaps, 'lost'>): number {
  const per = maps.lost.lookupPerCpu(0) ?? [];
  return Number(per.reduce((a, b) => a + b, 0n));
}

/** Removes `<bpffsDir>/events/` (uninstall). */
export function removeEventPins(bpffsDir: string): void {
  rmSync(join(bpffsDir, EVENTS_PIN.dir), { recursive: true, force: true });
}

// ---------------------------------------------------------------- program text

type AnyMap = Pick<BpfMap<unknown, unknown>, 'fd' | 'name'>;

/** The maps an emitting program references. */
export interface EventProgramMaps {
  ring: AnyMap;
  lost: AnyMap;
}

/**
 * Writes the `size`-byte record at r10+`recOff` to the ring; on failure adds one
 * to the per-CPU lost counter (its u32 key 0 is stored at r10+`keyOff`).
 * Clobbers r0-r5.
 */
export function emitRecord(
  maps: EventProgramMaps,
  recOff: number,
  size: number,
  keyOff: number,
  label: string,
): ProgramText {
  return [
    asm.loadMapPtr(R1, maps.ring),
    asm.mov.reg(R2, R10),
    asm.add.imm(R2, recOff),
    asm.mov.imm(R3, size),
    asm.mov.imm(R4, 0),
    asm.call(Helper.RingbufOutput),
    asm.jeq.imm(R0, 0, `${label}_sent`),
    asm.stw(R10, keyOff, 0),
    asm.loadMapPtr(R1, maps.lost),
    asm.mov.reg(R2, R10),
    asm.add.imm(R2, keyOff),
    asm.call(Helper.MapLookupElem),
    asm.jeq.imm(R0, 0, `${label}_sent`),
    asm.ldxdw(R1, R0, 0),
    asm.add.imm(R1, 1),
    asm.stxdw(R0, 0, R1),
    asm.label(`${label}_sent`),
  ];
}

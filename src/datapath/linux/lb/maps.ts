/**
 * The socket load balancer's BPF maps (as Cilium's lb4_services / lb4_backends /
 * lb4_reverse_sk / lb4_maglev), their key and value layouts, and where they are
 * pinned. Layouts are STABLE: the programs in ./programs.ts read them at fixed
 * offsets, and a restarted agent reuses the pinned maps; a change needs new
 * pin names.
 *
 *   services  HASH     key {be32 vip; be16 dport; u8 proto; u8 pad; u16 slot; u16 pad}     12 bytes
 *                      value {u32 backendId; u16 count; u16 revNat; u8 flags; u8[3] pad}   12 bytes
 *                      slot 0 is the service's master entry (count of backends, its service
 *                      id = rev-NAT index, flags); slots 1..count hold backend ids.
 *   backends  HASH     key u32 backend id
 *                      value {be32 ip; be16 port; u8 proto; u8 flags; u16 clusterId; u16 pad}  12 bytes
 *   revnat    LRU_HASH key {u64 socket cookie; be32 backend ip; be16 backend port; u16 pad} 16 bytes
 *                      value {be32 vip; be16 vport; u16 revNat}                              8 bytes
 *   maglev    HASH     key u32 service id (revNat) -> value u32[MAGLEV_M] backend ids
 */
import { join } from 'node:path';
import {
  array,
  be16,
  ipv4,
  pad,
  struct,
  u16,
  u32,
  u64,
  u8,
  type CodecValue,
} from '../../bpf/codec.js';
import { createOrReusePinnedMap, type BpfMap, type MapSpec } from '../../bpf/map.js';
import { MapType } from '../../bpf/types.js';
import type { L4Protocol } from '../../types.js';

/** Size of every Maglev lookup table (a prime, as Maglev requires). */
export const MAGLEV_M = 1021;

export const SERVICES_MAX_ENTRIES = 65_536;
export const BACKENDS_MAX_ENTRIES = 65_536;
export const REVNAT_MAX_ENTRIES = 262_144;
export const MAGLEV_MAX_ENTRIES = 1_024;

/** IP protocol numbers as the kernel's bpf_sock_addr.protocol holds them. */
export const IPPROTO = { TCP: 6, UDP: 17 } as const;

/** Flags of a service's master entry. */
export const SvcFlags = {
  /** Select backends through the Maglev table instead of at random. */
  Maglev: 1,
} as const;

export const serviceKey = struct('lb_service_key', 12, {
  vip: [0, ipv4],
  dport: [4, be16],
  proto: [6, u8],
  pad1: [7, pad(1)],
  slot: [8, u16],
  pad2: [10, pad(2)],
});
export const serviceValue = struct('lb_service_value', 12, {
  backendId: [0, u32],
  count: [4, u16],
  revNat: [6, u16],
  flags: [8, u8],
  pad: [9, pad(3)],
});
export const backendKey = u32;
export const backendValue = struct('lb_backend', 12, {
  ip: [0, ipv4],
  port: [4, be16],
  proto: [6, u8],
  flags: [7, u8],
  clusterId: [8, u16],
  pad: [10, pad(2)],
});
export const revNatKey = struct('lb_revnat_key', 16, {
  cookie: [0, u64],
  ip: [8, ipv4],
  port: [12, be16],
  pad: [14, pad(2)],
});
export const revNatValue = struct('lb_revnat_value', 8, {
  vip: [0, ipv4],
  vport: [4, be16],
  revNat: [6, u16],
});
export const maglevKey = u32;
export const maglevValue = array(u32, MAGLEV_M);

export type ServiceKey = CodecValue<typeof serviceKey>;
export type ServiceValue = CodecValue<typeof serviceValue>;
export type BackendValue = CodecValue<typeof backendValue>;
export type RevNatKey = CodecValue<typeof revNatKey>;
export type RevNatValue = CodecValue<typeof revNatValue>;

/** Offsets the programs use (kept beside the codecs; maps.test.ts pins them). */
export const Off = {
  svcKey: { vip: 0, dport: 4, proto: 6, slot: 8, size: 12 },
  svcValue: { backendId: 0, count: 4, revNat: 6, flags: 8 },
  backend: { ip: 0, port: 4 },
  revNatKey: { cookie: 0, ip: 8, port: 12, size: 16 },
  revNatValue: { vip: 0, vport: 4, revNat: 6, size: 8 },
} as const;

/** Pin names under `<bpffsDir>/lb/`. STABLE. */
export const LB_PIN = {
  dir: 'lb',
  services: 'services',
  backends: 'backends',
  revnat: 'revnat',
  maglev: 'maglev',
  links: 'links',
} as const;

export function protoNumber(p: L4Protocol): number {
  return p === 'UDP' ? IPPROTO.UDP : IPPROTO.TCP;
}
export function protoName(n: number): L4Protocol {
  return n === IPPROTO.UDP ? 'UDP' : 'TCP';
}

export const servicesSpec: MapSpec<ServiceKey, ServiceValue> = {
  name: 'lb4_services',
  type: MapType.Hash,
  maxEntries: SERVICES_MAX_ENTRIES,
  key: serviceKey,
  value: serviceValue,
};
export const backendsSpec: MapSpec<number, BackendValue> = {
  name: 'lb4_backends',
  type: MapType.Hash,
  maxEntries: BACKENDS_MAX_ENTRIES,
  key: backendKey,
  value: backendValue,
};
export const revNatSpec: MapSpec<RevNatKey, RevNatValue> = {
  name: 'lb4_revnat_sk',
  type: MapType.LruHash,
  maxEntries: REVNAT_MAX_ENTRIES,
  key: revNatKey,
  value: revNatValue,
};
export const maglevSpec: MapSpec<number, number[]> = {
  name: 'lb4_maglev',
  type: MapType.Hash,
  maxEntries: MAGLEV_MAX_ENTRIES,
  key: maglevKey,
  value: maglevValue,
};

/** The four maps of the socket LB. */
export interface LBMaps {
  services: BpfMap<ServiceKey, ServiceValue>;
  backends: BpfMap<number, BackendValue>;
  revnat: BpfMap<RevNatKey, RevNatValue>;
  maglev: BpfMap<number, number[]>;
}

/** The pin directory of the LB under a node's bpffs directory. */
export function lbPinDir(bpffsDir: string): string {
  return join(bpffsDir, LB_PIN.dir);
}

/**
 * Opens the LB maps pinned under `<bpffsDir>/lb/`, creating and pinning the
 * missing ones. Throws MapMismatchError when a pinned map has another layout
 * (the pin is left alone), BpfError for kernel errors.
 */
export function openLBMaps(bpffsDir: string): LBMaps {
  const dir = lbPinDir(bpffsDir);
  const opened: Array<{ close(): void }> = [];
  try {
    const services = createOrReusePinnedMap(servicesSpec, join(dir, LB_PIN.services));
    opened.push(services);
    const backends = createOrReusePinnedMap(backendsSpec, join(dir, LB_PIN.backends));
    opened.push(backends);
    const revnat = createOrReusePinnedMap(revNatSpec, join(dir, LB_PIN.revnat));
    opened.push(revnat);
    const maglev = createOrReusePinnedMap(maglevSpec, join(dir, LB_PIN.maglev));
    return { services, backends, revnat, maglev };
  } catch (e) {
    for (const m of opened) m.close();
    throw e;
  }
}

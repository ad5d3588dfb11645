/**
 * The policy datapath's BPF maps, their layouts and pins. Layouts are STABLE:
 * the programs in ./programs.ts read them at fixed offsets and a restarted agent
 * reuses the pinned maps (a change needs new pin names).
 *
 *   policy/ep_<id>  LPM_TRIE per endpoint, as Cilium's cilium_policy_v2_<id>
 *       key   {u32 prefixlen; u32 identity; u8 dir; u8 proto; be16 dport}      12 bytes
 *             prefixlen counts bits after itself: 32 (identity) + 8 (dir) = 40 for
 *             "every protocol"; + 8 (proto) + 0..16 port bits = 48..64 otherwise.
 *             identity 0 is the wildcard (looked up second); dir 0 ingress, 1 egress.
 *       value {u8 flags (bit 0 deny, bit 1 final); u8 pad; u16 pad; u32 ruleId}  8 bytes
 *             ruleId names the rule in the agent's rule table (`tendril debug policy`).
 *   policy/ct       LRU_HASH, the connection tracker (one per node)
 *       key   {be32 saddr; be32 daddr; be16 sport; be16 dport; u8 proto; u8 dir; u16 pad} 16 bytes
 *             the tuple as the first packet had it, and the direction whose program
 *             allowed it; ICMP echo uses the echo id as both ports.
 *       value {u32 identity (the peer's, when created); u32 flags}              8 bytes
 *   policy/drops    PERCPU_ARRAY drop counters: index = DropReason, value u64 packets.
 *   policy/links/ep_<id>_{ingress,egress}   the endpoints' TCX links (pinned BPF links).
 */
import { join } from 'node:path';
import { be16, ipv4, pad, struct, u32, u64, u8, type CodecValue } from '../../bpf/codec.js';
import { createOrReusePinnedMap, type BpfMap, type MapSpec } from '../../bpf/map.js';
import { MapType } from '../../bpf/types.js';

export const POLICY_MAX_ENTRIES = 16_384;
export const CT_MAX_ENTRIES = 131_072;
export const DROPS_MAX_ENTRIES = 16;

/** Direction byte of keys (Cilium's egress bit). */
export const DIR = { ingress: 0, egress: 1 } as const;

/** Bits of the policy key covered by identity + dir: the prefix of "every protocol". */
export const POLICY_PREFIX_BASE = 40;
/** Prefix length of an entry: 40 for protocol 0, else 48 + port bits. */
export function policyPrefixLen(protocol: number, portBits: number): number {
  return protocol === 0 ? POLICY_PREFIX_BASE : POLICY_PREFIX_BASE + 8 + portBits;
}

/**
 * Flag bits of a policy value. `Final` (on an identity's allow): no deny of the
 * wildcard identity in that direction overlaps the entry's port prefix, so a packet
 * it matches is allowed without the wildcard lookup (programs of before it ignore it).
 */
export const PolicyFlags = { Deny: 1, Final: 2 } as const;

/** Drop counter indexes. STABLE. */
export const DropReason = {
  /** No entry allowed the packet (default deny). */
  PolicyDenied: 1,
  /** A deny entry matched. */
  PolicyDenyRule: 2,
} as const;

/** Names of the drop reasons, for `tendril debug policy`. */
export const DROP_REASON_NAMES: Record<number, string> = {
  [DropReason.PolicyDenied]: 'policy denied (no allow)',
  [DropReason.PolicyDenyRule]: 'policy deny rule',
};

export const policyKey = struct('policy_key', 12, {
  prefixLen: [0, u32],
  identity: [4, u32],
  dir: [8, u8],
  proto: [9, u8],
  dport: [10, be16],
});
export const policyValue = struct('policy_value', 8, {
  flags: [0, u8],
  pad1: [1, pad(3)],
  ruleId: [4, u32],
});
export const ctKey = struct('ct_key', 16, {
  saddr: [0, ipv4],
  daddr: [4, ipv4],
  sport: [8, be16],
  dport: [10, be16],
  proto: [12, u8],
  dir: [13, u8],
  pad: [14, pad(2)],
});
export const ctValue = struct('ct_value', 8, {
  identity: [0, u32],
  flags: [4, u32],
});

export type PolicyKey = CodecValue<typeof policyKey>;
export type PolicyValue = CodecValue<typeof policyValue>;
export type CtKey = CodecValue<typeof ctKey>;
export type CtValue = CodecValue<typeof ctValue>;

/** Offsets the programs use (maps.test.ts pins them against the codecs). */
export const Off = {
  policyKey: { prefixLen: 0, identity: 4, dir: 8, proto: 9, dport: 10, size: 12 },
  policyValue: { flags: 0, ruleId: 4, size: 8 },
  ctKey: { saddr: 0, daddr: 4, sport: 8, dport: 10, proto: 12, dir: 13, size: 16 },
  ctValue: { identity: 0, flags: 4, size: 8 },
} as const;

/** Pin names under `<bpffsDir>/policy/`. STABLE. */
export const POLICY_PIN = {
  dir: 'policy',
  ct: 'ct',
  drops: 'drops',
  links: 'links',
  endpoint: (id: number) => `ep_${id}`,
  link: (id: number, dir: 'ingress' | 'egress') => `ep_${id}_${dir}`,
} as const;

/** The policy map spec of one endpoint. */
export function endpointPolicySpec(id: number): MapSpec<PolicyKey, PolicyValue> {
  return {
    name: `tdl_pol_${id}`.slice(0, 15),
    type: MapType.LpmTrie,
    maxEntries: POLICY_MAX_ENTRIES,
    key: policyKey,
    value: policyValue,
  };
}

export const ctSpec: MapSpec<CtKey, CtValue> = {
  name: 'tdl_ct4',
  type: MapType.LruHash,
  maxEntries: CT_MAX_ENTRIES,
  key: ctKey,
  value: ctValue,
};

export const dropsSpec: MapSpec<number, bigint> = {
  name: 'tdl_pol_drops',
  type: MapType.PercpuArray,
  maxEntries: DROPS_MAX_ENTRIES,
  key: u32,
  value: u64,
};

/** The pin directory of the policy datapath under a node's bpffs directory. */
export function policyPinDir(bpffsDir: string): string {
  return join(bpffsDir, POLICY_PIN.dir);
}

/** The node-wide policy maps (the per-endpoint maps are opened per endpoint). */
export interface PolicyNodeMaps {
  ct: BpfMap<CtKey, CtValue>;
  drops: BpfMap<number, bigint>;
}

/** Opens or creates the pinned CT and drop-counter maps. @throws BpfError, MapMismatchError */
export function openPolicyNodeMaps(bpffsDir: string): PolicyNodeMaps {
  const dir = policyPinDir(bpffsDir);
  const ct = createOrReusePinnedMap(ctSpec, join(dir, POLICY_PIN.ct));
  try {
    const drops = createOrReusePinnedMap(dropsSpec, join(dir, POLICY_PIN.drops));
    return { ct, drops };
  } catch (e) {
    ct.close();
    throw e;
  }
}

/** Opens or creates an endpoint's pinned policy map. @throws BpfError, MapMismatchError */
export function openEndpointPolicyMap(
  bpffsDir: string,
  id: number,
): BpfMap<PolicyKey, PolicyValue> {
  return createOrReusePinnedMap(
    endpointPolicySpec(id),
    join(policyPinDir(bpffsDir), POLICY_PIN.endpoint(id)),
  );
}

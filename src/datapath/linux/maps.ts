/**
 * The agent's own BPF maps, pinned under the node's bpffs directory so they
 * outlive an agent restart and `tendril debug` can read them. Layouts are
 * STABLE (a change needs a new pin name).
 *
 *   ipcache    LPM_TRIE  key {u32 prefixlen; be32 addr}         value {u32 identity; be32 hostIP; u32 flags}
 *              IP prefix -> security identity (and the tunnel endpoint for remote pods), for policy.
 *   endpoints  HASH      key be32 pod IP                        value {u32 id; u32 identity; u32 ifindex; u32 flags}
 *              the node's local endpoints, for policy and observability.
 *
 * (The service maps belong to the socket load balancer in ./lb/.)
 */
import { join } from 'node:path';
import { ipv4, lpmKey, struct, u32, type CodecValue } from '../bpf/codec.js';
import { createOrReusePinnedMap, openPinnedMap, type BpfMap, type MapSpec } from '../bpf/map.js';
import { MapType } from '../bpf/types.js';

export const IPCACHE_MAX_ENTRIES = 65_536;
export const ENDPOINTS_MAX_ENTRIES = 4_096;

export const ipcacheKey = lpmKey(ipv4);
export const ipcacheValue = struct('ipcache_value', 12, {
  identity: [0, u32],
  hostIP: [4, ipv4],
  flags: [8, u32],
});
export const endpointKey = ipv4;
export const endpointValue = struct('endpoint_value', 16, {
  id: [0, u32],
  identity: [4, u32],
  ifindex: [8, u32],
  flags: [12, u32],
});

export type IPCacheKey = CodecValue<typeof ipcacheKey>;
export type IPCacheValue = CodecValue<typeof ipcacheValue>;
export type EndpointValue = CodecValue<typeof endpointValue>;

/** Pin names inside the node's bpffs directory. STABLE. */
export const PIN = { ipcache: 'ipcache', endpoints: 'endpoints' } as const;

export const ipcacheSpec: MapSpec<IPCacheKey, IPCacheValue> = {
  name: 'tdl_ipcache',
  type: MapType.LpmTrie,
  maxEntries: IPCACHE_MAX_ENTRIES,
  key: ipcacheKey,
  value: ipcacheValue,
};

export const endpointsSpec: MapSpec<string, EndpointValue> = {
  name: 'tdl_endpoints',
  type: MapType.Hash,
  maxEntries: ENDPOINTS_MAX_ENTRIES,
  key: endpointKey,
  value: endpointValue,
};

/** Bounds of the `bpf-ipcache-map-max` setting. */
export const IPCACHE_MAX_ENTRIES_MIN = 1_024;
export const IPCACHE_MAX_ENTRIES_MAX = 4_194_304;

/**
 * Creates or reuses the pinned ipcache map of a node, with `maxEntries`
 * entries (the agent's `bpf-ipcache-map-max`, default 65,536).
 * @throws BpfError, MapMismatchError (a pinned map of another size: see its hint)
 */
export function openIPCacheMap(
  bpffsDir: string,
  maxEntries = IPCACHE_MAX_ENTRIES,
): BpfMap<IPCacheKey, IPCacheValue> {
  return createOrReusePinnedMap({ ...ipcacheSpec, maxEntries }, join(bpffsDir, PIN.ipcache));
}

/** Creates or reuses the pinned endpoints map of a node. @throws BpfError, MapMismatchError */
export function openEndpointsMap(bpffsDir: string): BpfMap<string, EndpointValue> {
  return createOrReusePinnedMap(endpointsSpec, join(bpffsDir, PIN.endpoints));
}

/** Opens an existing pinned ipcache map read-side (for `tendril debug`). @throws BpfError when absent */
export function openPinnedIPCache(bpffsDir: string): BpfMap<IPCacheKey, IPCacheValue> {
  return openPinnedMap(join(bpffsDir, PIN.ipcache), { key: ipcacheKey, value: ipcacheValue });
}

/** Opens an existing pinned endpoints map (for `tendril debug`). @throws BpfError when absent */
export function openPinnedEndpoints(bpffsDir: string): BpfMap<string, EndpointValue> {
  return openPinnedMap(join(bpffsDir, PIN.endpoints), { key: endpointKey, value: endpointValue });
}

/** "10.0.0.0/8" -> LPM key. */
export function prefixToKey(prefix: string): IPCacheKey {
  const [addr, len] = prefix.includes('/') ? prefix.split('/') : [prefix, '32'];
  return { prefixLen: Number(len), addr: addr! };
}

/** LPM key -> "10.0.0.0/8". */
export function keyToPrefix(k: IPCacheKey): string {
  return `${k.addr}/${k.prefixLen}`;
}

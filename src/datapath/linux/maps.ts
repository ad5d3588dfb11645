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
import { BpfError, CodecError, errnoNumber } from '../bpf/errors.js';
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

/** One ipcache write: prefix ("10.1.2.3/32"; an address alone is a /32) -> identity and tunnel endpoint. */
export interface IPCacheWrite {
  prefix: string;
  identity: number;
  hostIP?: string;
}

/** Below this many entries, IPCacheWriter makes one bpf(2) update per entry (a lone change needs no batch). */
export const IPCACHE_BATCH_MIN = 8;
/** Most entries per BPF_MAP_UPDATE_BATCH call. */
export const IPCACHE_BATCH_MAX = 4096;

/** errnos that say the kernel has no batch update for the map (ENOTSUPP is kernel-internal 524). */
const BATCH_UNSUPPORTED = new Set([524, errnoNumber('EOPNOTSUPP'), errnoNumber('EINVAL')]);

/**
 * Writes many ipcache entries with few syscalls: BPF_MAP_UPDATE_BATCH calls of
 * up to IPCACHE_BATCH_MAX entries (the kernel's generic batch update, which
 * the LPM trie has on the 6.18 kernels this runs on: one syscall per 4,096
 * entries instead of one each, measured ~2x faster per entry at 250,000
 * entries). A batch that fails stops at the entry the kernel refused: that
 * entry and the rest of its batch are written one by one, so each failure is
 * the entry's own. A kernel without batch updates for the map (EINVAL,
 * EOPNOTSUPP, ENOTSUPP on the first batch) gets one update per entry from then on.
 * Keys and values are encoded into reused buffers (no object per entry).
 */
export class IPCacheWriter {
  #batchUnsupported = false;
  #keys = Buffer.alloc(0);
  #values = Buffer.alloc(0);
  readonly #key: IPCacheKey = { prefixLen: 32, addr: '0.0.0.0' };
  readonly #value: IPCacheValue = { identity: 0, hostIP: '0.0.0.0', flags: 0 };

  constructor(private readonly map: BpfMap<IPCacheKey, IPCacheValue>) {}

  /** Whether batch updates are in use (false once the kernel refused them). */
  get batching(): boolean {
    return !this.#batchUnsupported;
  }

  /**
   * Writes `entries` (creating or replacing each prefix).
   * @returns the entries that failed, by prefix (CodecError for a bad prefix or IP, BpfError from the kernel)
   */
  write(entries: readonly IPCacheWrite[]): Map<string, Error> {
    const failed = new Map<string, Error>();
    if (entries.length < IPCACHE_BATCH_MIN || this.#batchUnsupported) {
      for (const e of entries) this.#one(e, failed);
      return failed;
    }
    for (let i = 0; i < entries.length; i += IPCACHE_BATCH_MAX)
      this.#batch(entries.slice(i, i + IPCACHE_BATCH_MAX), failed);
    return failed;
  }

  #one(e: IPCacheWrite, failed: Map<string, Error>): void {
    try {
      this.#fill(e);
      this.map.update(this.#key, this.#value);
    } catch (err) {
      failed.set(e.prefix, err as Error);
    }
  }

  #fill(e: IPCacheWrite): void {
    const slash = e.prefix.indexOf('/');
    this.#key.addr = slash < 0 ? e.prefix : e.prefix.slice(0, slash);
    const len = slash < 0 ? 32 : Number(e.prefix.slice(slash + 1));
    if (!Number.isInteger(len) || len < 0 || len > 32 || slash === e.prefix.length - 1)
      throw new CodecError(
        `ipcache prefix "${e.prefix}": the length must be 0-32`,
        'write it like 10.0.0.0/8',
      );
    this.#key.prefixLen = len;
    this.#value.identity = e.identity;
    this.#value.hostIP = e.hostIP ?? '0.0.0.0';
  }

  #batch(entries: readonly IPCacheWrite[], failed: Map<string, Error>): void {
    const ks = ipcacheKey.size;
    const vs = ipcacheValue.size;
    if (this.#keys.length < entries.length * ks) {
      this.#keys = Buffer.alloc(IPCACHE_BATCH_MAX * ks);
      this.#values = Buffer.alloc(IPCACHE_BATCH_MAX * vs);
    }
    // entries that do not encode are failed here; the others go in the batch
    const sent: IPCacheWrite[] = [];
    for (const e of entries) {
      try {
        this.#fill(e);
        // the fields straight into the buffers (the layouts above: key {u32; ipv4},
        // value {u32; ipv4; u32}), not through the struct codecs
        const k = this.#key;
        const v = this.#value;
        const ko = sent.length * ks;
        const vo = sent.length * vs;
        u32.encode(k.prefixLen, this.#keys, ko);
        ipv4.encode(k.addr, this.#keys, ko + 4);
        u32.encode(v.identity, this.#values, vo);
        ipv4.encode(v.hostIP, this.#values, vo + 4);
        u32.encode(0, this.#values, vo + 8);
        sent.push(e);
      } catch (err) {
        failed.set(e.prefix, err as Error);
      }
    }
    if (sent.length === 0) return;
    try {
      this.map.batchUpdateRaw(this.#keys, this.#values, sent.length);
    } catch (err) {
      if (!(err instanceof BpfError)) throw err;
      let i = (err as { processed?: number }).processed ?? 0;
      if (i === 0 && BATCH_UNSUPPORTED.has(err.errno)) {
        const before = failed.size;
        this.#one(sent[0]!, failed);
        // the entry alone went in: the batch call itself is what the kernel refused
        if (failed.size === before) this.#batchUnsupported = true;
        i = 1;
      }
      // the refused entry and the rest of this batch, one by one: each failure is its own
      for (; i < sent.length; i++) this.#one(sent[i]!, failed);
    }
  }
}

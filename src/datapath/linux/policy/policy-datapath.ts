/**
 * Enforces computed policy (src/policy/) in the kernel: one LPM policy map per
 * endpoint, a node-wide connection tracker and drop counters (./maps.ts), and two
 * TCX programs per endpoint on its host-side veth (./programs.ts), attached through
 * pinned BPF links so they survive an agent restart. Writes are diffs against what
 * the map holds (read back on open), so a restarted agent rewrites only what changed.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { removePinnedTree } from '../../bpf/bpffs.js';
import { createOrUpdatePinnedLink, openPinnedLink } from '../../bpf/link.js';
import { openPinnedMap, type BpfMap } from '../../bpf/map.js';
import { attachTc } from '../../bpf/tcx.js';
import { TendrilError } from '../../../util/errors.js';
import { nopLogger, type Logger } from '../../../util/log.js';
import type { EndpointPolicySpec, PolicyMapEntry as SpecEntry } from '../../types.js';
import { queryAttached } from '../../bpf/query.js';
import { openIPCacheMap, type IPCacheKey, type IPCacheValue } from '../maps.js';
import {
  DIR,
  DROP_REASON_NAMES,
  POLICY_PIN,
  PolicyFlags,
  dropsSpec,
  openEndpointPolicyMap,
  policyKey,
  policyValue,
  openPolicyNodeMaps,
  policyPinDir,
  policyPrefixLen,
  type PolicyKey,
  type PolicyNodeMaps,
  type PolicyValue,
} from './maps.js';
import { loadPolicyProgram } from './programs.js';
import type { EventProgramMaps } from '../events.js';

/** A policy datapath failure; code POLICY_DATAPATH. */
export class PolicyDatapathError extends TendrilError {
  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super('POLICY_DATAPATH', message, options);
    this.name = 'PolicyDatapathError';
  }
}

/** An endpoint to attach: its id and host-side veth (in the node's namespace `netns`, or the caller's). */
export interface PolicyAttachTarget {
  id: number;
  hostIfName: string;
  netns?: string;
}

/** A decoded policy map entry. */
export interface PolicyMapEntry {
  direction: 'ingress' | 'egress';
  identity: number;
  protocol: number;
  port: number;
  /** Port prefix bits (0..16); 0 with protocol 0. */
  bits: number;
  deny: boolean;
  ruleId: number;
}

/** A stable 32-bit id of a rule's origin text (FNV-1a), stored in map values. */
export function ruleIdOf(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function keyOf(direction: 'ingress' | 'egress', e: SpecEntry): PolicyKey {
  return {
    prefixLen: policyPrefixLen(e.protocol, e.bits),
    identity: e.identity,
    dir: DIR[direction],
    proto: e.protocol,
    dport: e.bits === 0 ? 0 : e.port,
  };
}

function keyText(k: PolicyKey): string {
  return `${k.prefixLen}/${k.identity}/${k.dir}/${k.proto}/${k.dport}`;
}

interface OpenEndpoint {
  map: BpfMap<PolicyKey, PolicyValue>;
  /** What the map holds: key text -> [key, value]. */
  held: Map<string, [PolicyKey, PolicyValue]>;
}

/** The policy datapath of one node. */
export class BpfPolicyDatapath {
  private readonly endpoints = new Map<number, OpenEndpoint>();
  /** Rule ids seen in written entries -> origin text (for debug output). */
  readonly ruleNames = new Map<number, string>();

  private constructor(
    private readonly bpffsDir: string,
    readonly maps: PolicyNodeMaps & { ipcache: BpfMap<IPCacheKey, IPCacheValue> },
    private readonly log: Logger,
    private readonly events?: EventProgramMaps,
  ) {}

  /**
   * Opens (or creates) the node's pinned policy maps and the ipcache under `bpffsDir`.
   * @throws BpfError, MapMismatchError
   */
  static open(o: {
    bpffsDir: string;
    logger?: Logger;
    /** Flow event maps: the programs write verdicts, drops and traces (absent: none). */
    events?: EventProgramMaps;
    /** The ipcache map's size (bpf-ipcache-map-max), as the datapath created it (default 65,536). */
    ipcacheMaxEntries?: number;
  }): BpfPolicyDatapath {
    mkdirSync(policyPinDir(o.bpffsDir), { recursive: true });
    const node = openPolicyNodeMaps(o.bpffsDir);
    let ipcache: BpfMap<IPCacheKey, IPCacheValue>;
    try {
      ipcache = openIPCacheMap(o.bpffsDir, o.ipcacheMaxEntries);
    } catch (e) {
      node.ct.close();
      node.drops.close();
      throw e;
    }
    return new BpfPolicyDatapath(o.bpffsDir, { ...node, ipcache }, o.logger ?? nopLogger, o.events);
  }

  private endpoint(id: number): OpenEndpoint {
    let ep = this.endpoints.get(id);
    if (ep) return ep;
    const map = openEndpointPolicyMap(this.bpffsDir, id);
    const held = new Map<string, [PolicyKey, PolicyValue]>();
    for (const [k, v] of map.entries()) held.set(keyText(k), [k, v]);
    ep = { map, held };
    this.endpoints.set(id, ep);
    return ep;
  }

  private linkPath(id: number, dir: 'ingress' | 'egress'): string {
    return join(policyPinDir(this.bpffsDir), POLICY_PIN.links, POLICY_PIN.link(id, dir));
  }

  /**
   * Attaches the endpoint's two programs to its host-side veth (host ingress = pod
   * egress, host egress = pod ingress) through pinned TCX links. `adopt: true` (an agent
   * restart) replaces the programs of links pinned earlier in place; otherwise stale
   * pins of a previous veth with this id are dropped first. Until policy is written the
   * endpoint's map is empty and every new connection is dropped; write first for a pod
   * that must talk at once.
   * @throws BpfError, VerifierError
   */
  attachEndpoint(t: PolicyAttachTarget, options: { adopt?: boolean } = {}): void {
    const ep = this.endpoint(t.id);
    mkdirSync(join(policyPinDir(this.bpffsDir), POLICY_PIN.links), { recursive: true });
    for (const dir of ['egress', 'ingress'] as const) {
      const path = this.linkPath(t.id, dir);
      // The pod's egress is the host side's ingress, and the other way round.
      const hostDir = dir === 'egress' ? 'ingress' : 'egress';
      if (existsSync(path) && !(options.adopt && pinnedLinkAttached(path, t, hostDir)))
        dropPinnedLink(path);
      const prog = loadPolicyProgram(dir, {
        policy: ep.map,
        ct: this.maps.ct,
        drops: this.maps.drops,
        ipcache: this.maps.ipcache,
        ...(this.events ? { events: { ...this.events, endpointId: t.id } } : {}),
      });
      try {
        const link = createOrUpdatePinnedLink(path, prog, () =>
          attachTc(prog, {
            ifname: t.hostIfName,
            direction: hostDir,
            netns: t.netns,
            tcxOnly: true,
          }),
        );
        link.close(); // pinned: stays attached
      } finally {
        prog.close();
      }
    }
    this.log.debug('policy programs attached', { endpoint: t.id, ifname: t.hostIfName });
  }

  /** Detaches an endpoint's programs and removes its map and pins. */
  detachEndpoint(id: number): void {
    for (const dir of ['egress', 'ingress'] as const) {
      const path = this.linkPath(id, dir);
      if (existsSync(path)) dropPinnedLink(path);
    }
    const ep = this.endpoints.get(id);
    ep?.map.close();
    this.endpoints.delete(id);
    rmSync(join(policyPinDir(this.bpffsDir), POLICY_PIN.endpoint(id)), { force: true });
  }

  /**
   * Writes an endpoint's computed policy to its map: new and changed entries first,
   * then removals (a packet racing the update sees old or new entries; a narrowing
   * update may briefly still allow what it removes, never deny what stays allowed).
   * Returns the number of map writes.
   */
  writePolicy(policy: EndpointPolicySpec): number {
    const ep = this.endpoint(policy.endpointId);
    const want = new Map<string, [PolicyKey, PolicyValue]>();
    for (const direction of ['ingress', 'egress'] as const) {
      const wildDenies = policy[direction].entries.filter((e) => e.deny && e.identity === 0);
      for (const e of policy[direction].entries) {
        const k = keyOf(direction, e);
        const text = e.rule;
        const ruleId = ruleIdOf(text);
        this.ruleNames.set(ruleId, text);
        let flags = 0;
        if (e.deny) flags = PolicyFlags.Deny;
        else if (e.identity !== 0 && !wildDenies.some((d) => prefixesOverlap(d, e)))
          flags = PolicyFlags.Final;
        want.set(keyText(k), [k, { flags, ruleId }]);
      }
    }
    const upKeys: PolicyKey[] = [];
    const upValues: PolicyValue[] = [];
    for (const [t, [k, v]] of want) {
      const old = ep.held.get(t);
      if (old && old[1].flags === v.flags && old[1].ruleId === v.ruleId) continue;
      upKeys.push(k);
      upValues.push(v);
    }
    for (let i = 0; i < upKeys.length; i++) ep.map.update(upKeys[i]!, upValues[i]!);
    let writes = upKeys.length;
    for (const [t, [k]] of ep.held) {
      if (want.has(t)) continue;
      ep.map.delete(k);
      writes++;
    }
    ep.held.clear();
    for (const [t, kv] of want) ep.held.set(t, kv);
    return writes;
  }

  /** The entries an endpoint's map holds, decoded. */
  readPolicy(id: number): PolicyMapEntry[] {
    const ep = this.endpoint(id);
    return [...ep.held.values()].map(([k, v]) => decodeEntry(k, v));
  }

  /** Drop counters summed over CPUs, by reason name. */
  dropCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [idx, name] of Object.entries(DROP_REASON_NAMES)) {
      const per = this.maps.drops.lookupPerCpu(Number(idx)) ?? [];
      out[name] = Number(per.reduce((a, b) => a + b, 0n));
    }
    return out;
  }

  /** Closes fds (maps and links stay pinned; programs stay attached). */
  close(): void {
    for (const ep of this.endpoints.values()) ep.map.close();
    this.endpoints.clear();
    this.maps.ct.close();
    this.maps.drops.close();
    this.maps.ipcache.close();
  }

  /** Detaches every endpoint and removes `<bpffsDir>/policy/` (uninstall). */
  destroy(): void {
    const linksDir = join(policyPinDir(this.bpffsDir), POLICY_PIN.links);
    if (existsSync(linksDir)) destroyPolicyLinks(linksDir);
    this.close();
    removePinnedTree(policyPinDir(this.bpffsDir));
  }
}

/**
 * True when some (protocol, port) lies in both entries' port prefixes (protocol 0 =
 * every protocol; `bits` leading bits of the port fixed).
 */
export function prefixesOverlap(
  a: Pick<SpecEntry, 'protocol' | 'port' | 'bits'>,
  b: Pick<SpecEntry, 'protocol' | 'port' | 'bits'>,
): boolean {
  if (a.protocol !== 0 && b.protocol !== 0 && a.protocol !== b.protocol) return false;
  const bits = Math.min(a.protocol === 0 ? 0 : a.bits, b.protocol === 0 ? 0 : b.bits);
  if (bits === 0) return true;
  const shift = 16 - bits;
  return a.port >>> shift === b.port >>> shift;
}

function decodeEntry(k: PolicyKey, v: PolicyValue): PolicyMapEntry {
  const bits = k.proto === 0 ? 0 : k.prefixLen - 48;
  return {
    direction: k.dir === DIR.egress ? 'egress' : 'ingress',
    identity: k.identity,
    protocol: k.proto,
    port: k.dport,
    bits,
    deny: (v.flags & PolicyFlags.Deny) !== 0,
    ruleId: v.ruleId,
  };
}

/** True if the link pinned at `path` is attached to the target's veth (not left from a removed one). */
function pinnedLinkAttached(
  path: string,
  t: PolicyAttachTarget,
  hostDir: 'ingress' | 'egress',
): boolean {
  try {
    const link = openPinnedLink(path);
    try {
      const id = link.info().id;
      const q = queryAttached({ ifname: t.hostIfName, direction: hostDir, netns: t.netns });
      return q.linkIds.includes(id);
    } finally {
      link.close();
    }
  } catch {
    return false;
  }
}

/** Detaches a pinned BPF link and removes its pin. */
function dropPinnedLink(path: string): void {
  try {
    const link = openPinnedLink(path);
    try {
      link.detach();
    } catch {
      /* already defunct (its veth is gone) */
    }
    link.unpin();
    link.close();
  } catch {
    rmSync(path, { force: true });
  }
}

function destroyPolicyLinks(dir: string): void {
  // Detach before unpinning: a pinned link keeps its program attached until detached.
  for (const name of readdirSync(dir)) dropPinnedLink(join(dir, name));
}

/**
 * Attaches an endpoint's programs once both its veth and its first policy are
 * known (so a pod never runs with an empty map, which would drop everything),
 * and writes later policy in place. What LinuxDatapath delegates to.
 */
export class PolicyEnforcer {
  private readonly ifnames = new Map<number, { hostIfName: string; netns?: string }>();
  private readonly written = new Set<number>();
  private readonly attached = new Set<number>();

  constructor(readonly datapath: BpfPolicyDatapath) {}

  /** The endpoint's host-side veth is known (CNI ADD, or adoption after a restart). */
  setEndpoint(id: number, hostIfName: string, netns?: string): void {
    const prev = this.ifnames.get(id);
    if (prev && prev.hostIfName !== hostIfName) this.attached.delete(id);
    this.ifnames.set(id, { hostIfName, ...(netns ? { netns } : {}) });
    this.maybeAttach(id);
  }

  /** Writes the endpoint's policy, attaching the programs if this is the first. */
  setPolicy(policy: EndpointPolicySpec): void {
    this.datapath.writePolicy(policy);
    this.written.add(policy.endpointId);
    this.maybeAttach(policy.endpointId);
  }

  /** Removes the endpoint's programs, map and pins. */
  removeEndpoint(id: number): void {
    this.datapath.detachEndpoint(id);
    this.ifnames.delete(id);
    this.written.delete(id);
    this.attached.delete(id);
  }

  /** Whether the endpoint's programs are attached. */
  isAttached(id: number): boolean {
    return this.attached.has(id);
  }

  private maybeAttach(id: number): void {
    const t = this.ifnames.get(id);
    if (this.attached.has(id) || !t || !this.written.has(id)) return;
    this.datapath.attachEndpoint({ id, ...t }, { adopt: true });
    this.attached.add(id);
  }
}

/** What `readPinnedPolicy` finds: each endpoint's entries and the node's drop counters. */
export interface PinnedPolicyState {
  endpoints: Array<{ id: number; entries: PolicyMapEntry[] }>;
  drops: Record<string, number>;
}

/**
 * Reads a node's pinned policy maps without attaching or changing anything
 * (`tendril debug policy`). Undefined when the node has no policy maps.
 * @throws BpfError
 */
export function readPinnedPolicy(bpffsDir: string): PinnedPolicyState | undefined {
  const dir = policyPinDir(bpffsDir);
  if (!existsSync(dir)) return undefined;
  const endpoints: PinnedPolicyState['endpoints'] = [];
  for (const name of readdirSync(dir).sort()) {
    const m = /^ep_(\d+)$/.exec(name);
    if (!m) continue;
    const map = openPinnedMap(join(dir, name), { key: policyKey, value: policyValue });
    try {
      const entries = [...map.entries()].map(([k, v]) => decodeEntry(k, v));
      endpoints.push({ id: Number(m[1]), entries });
    } finally {
      map.close();
    }
  }
  endpoints.sort((a, b) => a.id - b.id);
  const drops: Record<string, number> = {};
  if (existsSync(join(dir, POLICY_PIN.drops))) {
    const d = openPinnedMap(join(dir, POLICY_PIN.drops), {
      key: dropsSpec.key,
      value: dropsSpec.value,
    });
    try {
      for (const [idx, label] of Object.entries(DROP_REASON_NAMES))
        drops[label] = Number((d.lookupPerCpu(Number(idx)) ?? []).reduce((a, b) => a + b, 0n));
    } finally {
      d.close();
    }
  }
  return { endpoints, drops };
}

/**
 * The policy engine: policies + identities + local endpoints in, per endpoint and
 * direction the policy map entries out — (peer identity, protocol, port prefix) ->
 * allow or deny, each naming the policy and rule that produced it — and whether the
 * direction is enforced. Pure logic: no kernel, no I/O.
 *
 * Semantics (Cilium 1.19):
 * - a direction is enforced (default-deny) for an endpoint once a policy with rules
 *   in that direction selects it (unless that policy says enableDefaultDeny false);
 *   enforcement `always` enforces every endpoint, `never` none;
 * - a direction that is not enforced gets an allow-all wildcard entry (deny rules still apply);
 * - deny rules win over every allow: an allow covered by a deny (same or wildcard
 *   identity, a wider or equal port prefix) is dropped, so the datapath's
 *   longest-prefix lookup plus "either lookup denies -> deny" gives the same verdict;
 * - the local host may always reach its endpoints (allow-localhost, as Cilium's default);
 * - identity 0 in an entry is the wildcard (entity `all`, L4-only rules, NetworkPolicy
 *   rules without peers).
 *
 * Recomputation is incremental where it costs: selections live in the SelectorCache,
 * updated per identity; an endpoint's entries are rebuilt from them in time
 * proportional to its rules and entries.
 */
import type { Labels } from '../identity/labels.js';
import { ReservedIdentity } from '../identity/numeric.js';
import type { KubeObject } from '../k8s/objects.js';
import type { EndpointPolicySpec } from '../datapath/types.js';
import {
  PROTO,
  formatPortPrefix,
  portPrefixCovers,
  portPrefixMatches,
  portRangePrefixes,
  protocolNumbers,
  type PortPrefix,
} from './ports.js';
import { SelectorCache } from './selector-cache.js';
import { indexLabels, requirementsMatch } from './selector.js';
import {
  formatPolicyRef,
  policyKey,
  translatePolicy,
  type Direction,
  type PolicyRef,
  type PolicyRule,
  type PolicySpec,
  type PortSpec,
} from './translate.js';

/** Policy enforcement mode (`tendril install --policy-enforcement`). */
export type EnforcementMode = 'default' | 'always' | 'never';

/** The wildcard identity of a policy map entry. */
export const WILDCARD_IDENTITY = 0;

/** Options of the engine. */
export interface PolicyEngineOptions {
  /** This cluster's name. */
  clusterName: string;
  enforcement?: EnforcementMode;
  /** policy-default-local-cluster (default true). */
  defaultLocalCluster?: boolean;
  /** Let the local host reach every endpoint (default true, as Cilium's allow-localhost). */
  allowLocalhost?: boolean;
}

/** A named container port of an endpoint. */
export interface NamedPort {
  name: string;
  port: number;
  protocol: 'TCP' | 'UDP' | 'SCTP';
}

/** A local endpoint the engine computes policy for. */
export interface PolicyEndpoint {
  id: number;
  identity: number;
  /** Its pod's named ports (resolve named ports of ingress rules; of egress rules, any endpoint's). */
  namedPorts?: NamedPort[];
}

/** Where an entry came from. */
export interface EntryOrigin {
  /** The policy, or undefined for built-in entries (`rule` says which). */
  policy?: PolicyRef;
  /** `spec.ingress[0]`, or `allow-localhost`, `not-enforced`, `enforcement=never`. */
  rule: string;
}

/** One policy map entry. */
export interface PolicyEntry extends PortPrefix {
  identity: number;
  deny: boolean;
  origin: EntryOrigin;
}

/** The policy of one endpoint in one direction. */
export interface DirectionPolicy {
  enforced: boolean;
  /** Entries keyed by `entryKey`. */
  entries: Map<string, PolicyEntry>;
  /** The policies selecting the endpoint with rules in this direction. */
  policies: PolicyRef[];
}

/** The computed policy of one endpoint. */
export interface EndpointPolicy {
  endpointId: number;
  identity: number;
  ingress: DirectionPolicy;
  egress: DirectionPolicy;
}

/** A verdict for one packet, computed as the datapath computes it. */
export interface Verdict {
  allowed: boolean;
  /** 'allow' / 'deny' by an entry; 'default-deny' when no entry matched. */
  reason: 'allow' | 'deny' | 'default-deny';
  entry?: PolicyEntry;
  enforced: boolean;
}

/** Key of an entry in a DirectionPolicy's map. */
export function entryKey(e: { identity: number } & PortPrefix): string {
  return `${e.identity}/${e.protocol}/${e.port}/${e.bits}`;
}

/** "identity 256 TCP/80 allow by CiliumNetworkPolicy default/x spec.ingress[0]". */
export function formatOrigin(o: EntryOrigin): string {
  return o.policy ? `${formatPolicyRef(o.policy)} ${o.rule}` : o.rule;
}

/** Human text of an entry. */
export function formatEntry(e: PolicyEntry): string {
  const who = e.identity === WILDCARD_IDENTITY ? 'any identity' : `identity ${e.identity}`;
  return `${who} ${formatPortPrefix(e)} ${e.deny ? 'DENY' : 'allow'} (${formatOrigin(e.origin)})`;
}

interface StoredPolicy {
  specs: PolicySpec[];
  /** rule -> selector keys acquired in the cache. */
  keys: Map<PolicyRule, string[]>;
}

/** Computes network policy for local endpoints. */
export class PolicyEngine {
  readonly cache: SelectorCache;
  private readonly policies = new Map<string, StoredPolicy>();
  private readonly endpoints = new Map<number, PolicyEndpoint>();
  private readonly opts: Required<PolicyEngineOptions>;

  constructor(options: PolicyEngineOptions) {
    this.opts = {
      enforcement: 'default',
      defaultLocalCluster: true,
      allowLocalhost: true,
      ...options,
    };
    this.cache = new SelectorCache({ clusterName: options.clusterName });
    for (const [name, id] of Object.entries(RESERVED_LABELS))
      this.cache.upsertIdentity(id, [{ source: 'reserved', key: name, value: '' }]);
  }

  /** The enforcement mode. */
  get enforcement(): EnforcementMode {
    return this.opts.enforcement;
  }

  /** Number of policy objects held. */
  get policyCount(): number {
    return this.policies.size;
  }

  /** Adds or replaces a policy object (CNP, CCNP or NetworkPolicy). @throws PolicyTranslateError */
  upsertPolicy(obj: KubeObject): void {
    const specs = translatePolicy(obj, {
      clusterName: this.opts.clusterName,
      defaultLocalCluster: this.opts.defaultLocalCluster,
    });
    const keys = new Map<PolicyRule, string[]>();
    for (const s of specs)
      for (const r of s.rules)
        keys.set(r, r.peers === 'all' ? [] : r.peers.map((p) => this.cache.acquire(p)));
    const k = policyKey(specs[0]?.policy ?? refOf(obj));
    this.dropPolicy(k);
    this.policies.set(k, { specs, keys });
  }

  /** Removes a policy object. Returns false if it was not held. */
  deletePolicy(ref: PolicyRef): boolean {
    return this.dropPolicy(policyKey(ref));
  }

  private dropPolicy(k: string): boolean {
    const old = this.policies.get(k);
    if (!old) return false;
    for (const list of old.keys.values()) for (const key of list) this.cache.release(key);
    this.policies.delete(k);
    return true;
  }

  /** The specs of every policy object held. */
  policySpecs(): PolicySpec[] {
    return [...this.policies.values()].flatMap((p) => p.specs);
  }

  /** The policy objects held. */
  listPolicies(): PolicyRef[] {
    return [...this.policies.values()].map((p) => p.specs[0]!.policy).filter(Boolean);
  }

  /** Adds or replaces an identity (local, remote cluster, or CIDR with a `cidr:` label). */
  upsertIdentity(id: number, labels: Labels): void {
    this.cache.upsertIdentity(id, labels);
  }

  /** Removes an identity. */
  deleteIdentity(id: number): void {
    this.cache.deleteIdentity(id);
  }

  /** Adds or replaces a local endpoint. */
  upsertEndpoint(ep: PolicyEndpoint): void {
    this.endpoints.set(ep.id, ep);
  }

  /** Removes a local endpoint. */
  deleteEndpoint(id: number): void {
    this.endpoints.delete(id);
  }

  /** The local endpoints. */
  listEndpoints(): PolicyEndpoint[] {
    return [...this.endpoints.values()];
  }

  /** Computes every local endpoint's policy. */
  computeAll(): Map<number, EndpointPolicy> {
    const out = new Map<number, EndpointPolicy>();
    const named = this.allNamedPorts();
    for (const ep of this.endpoints.values()) out.set(ep.id, this.compute(ep, named));
    return out;
  }

  /** Computes one endpoint's policy (it need not be registered). */
  computeEndpoint(ep: PolicyEndpoint): EndpointPolicy {
    return this.compute(ep, this.allNamedPorts());
  }

  private allNamedPorts(): Map<string, NamedPort[]> {
    const m = new Map<string, NamedPort[]>();
    for (const ep of this.endpoints.values())
      for (const np of ep.namedPorts ?? []) {
        const list = m.get(np.name) ?? [];
        if (!list.some((x) => x.port === np.port && x.protocol === np.protocol)) list.push(np);
        m.set(np.name, list);
      }
    return m;
  }

  private compute(ep: PolicyEndpoint, egressNamed: Map<string, NamedPort[]>): EndpointPolicy {
    const labels = this.cache.labelsOf(ep.identity) ?? indexLabels([]);
    const selecting: PolicySpec[] = [];
    for (const p of this.policies.values())
      for (const s of p.specs) if (requirementsMatch(s.subject, labels)) selecting.push(s);
    const ingressNamed = new Map<string, NamedPort[]>();
    for (const np of ep.namedPorts ?? [])
      ingressNamed.set(np.name, [...(ingressNamed.get(np.name) ?? []), np]);
    return {
      endpointId: ep.id,
      identity: ep.identity,
      ingress: this.direction('ingress', selecting, ingressNamed),
      egress: this.direction('egress', selecting, egressNamed),
    };
  }

  private direction(
    dir: Direction,
    selecting: PolicySpec[],
    named: Map<string, NamedPort[]>,
  ): DirectionPolicy {
    const entries = new Map<string, PolicyEntry>();
    const policies: PolicyRef[] = [];
    const mode = this.opts.enforcement;
    if (mode === 'never') {
      add(entries, allowAll({ rule: 'enforcement=never' }));
      return { enforced: false, entries, policies };
    }
    let enforced = mode === 'always';
    for (const s of selecting) {
      const rules = s.rules.filter((r) => r.direction === dir);
      if (rules.length === 0 && !s.enforces[dir]) continue;
      if (s.enforces[dir]) enforced = true;
      if (!policies.some((p) => policyKey(p) === policyKey(s.policy))) policies.push(s.policy);
      for (const r of rules) {
        const origin: EntryOrigin = { policy: r.policy, rule: r.path };
        const ports = expandPorts(r.ports, named);
        if (ports.length === 0) continue; // only unresolvable named ports
        const ids = this.ruleIdentities(r);
        for (const identity of ids)
          for (const p of ports) add(entries, { identity, ...p, deny: r.deny, origin });
      }
    }
    if (!enforced) add(entries, allowAll({ rule: 'not-enforced' }));
    else if (dir === 'ingress' && this.opts.allowLocalhost)
      add(entries, {
        identity: ReservedIdentity.host,
        protocol: PROTO.ANY,
        port: 0,
        bits: 0,
        deny: false,
        origin: { rule: 'allow-localhost' },
      });
    normalize(entries);
    return { enforced, entries, policies };
  }

  private ruleIdentities(r: PolicyRule): Iterable<number> {
    if (r.peers === 'all') return [WILDCARD_IDENTITY];
    const out = new Set<number>();
    for (const p of r.peers) {
      if (p.kind === 'entity' && p.entity === 'all') {
        out.add(WILDCARD_IDENTITY);
        continue;
      }
    }
    const stored = this.policies.get(policyKey(r.policy));
    for (const key of stored?.keys.get(r) ?? [])
      for (const id of this.cache.selections(key)) out.add(id);
    return out;
  }
}

const RESERVED_LABELS: Record<string, number> = {
  host: ReservedIdentity.host,
  world: ReservedIdentity.world,
  unmanaged: ReservedIdentity.unmanaged,
  health: ReservedIdentity.health,
  init: ReservedIdentity.init,
  'remote-node': ReservedIdentity.remoteNode,
  'kube-apiserver': ReservedIdentity.kubeAPIServer,
};

function refOf(o: KubeObject): PolicyRef {
  return {
    kind: o.kind as PolicyRef['kind'],
    namespace: o.kind === 'CiliumClusterwideNetworkPolicy' ? undefined : o.metadata.namespace,
    name: o.metadata.name ?? '',
  };
}

function allowAll(origin: EntryOrigin): PolicyEntry {
  return {
    identity: WILDCARD_IDENTITY,
    protocol: PROTO.ANY,
    port: 0,
    bits: 0,
    deny: false,
    origin,
  };
}

/** Adds an entry; at one key a deny replaces an allow, otherwise the first stays. */
function add(entries: Map<string, PolicyEntry>, e: PolicyEntry): void {
  const k = entryKey(e);
  const old = entries.get(k);
  if (!old || (e.deny && !old.deny)) entries.set(k, e);
}

/** Port specs -> protocol/port prefixes (named ports resolved; unresolvable ones dropped). */
export function expandPorts(ports: PortSpec[], named: Map<string, NamedPort[]>): PortPrefix[] {
  if (ports.length === 0) return [{ protocol: PROTO.ANY, port: 0, bits: 0 }];
  const out: PortPrefix[] = [];
  const seen = new Set<string>();
  const push = (p: PortPrefix) => {
    const k = `${p.protocol}/${p.port}/${p.bits}`;
    if (!seen.has(k)) {
      seen.add(k);
      out.push(p);
    }
  };
  for (const p of ports) {
    if (p.name !== undefined) {
      for (const np of named.get(p.name) ?? []) {
        if (p.protocol !== 'ANY' && p.protocol !== np.protocol) continue;
        push({ protocol: protocolNumbers(np.protocol, true)[0]!, port: np.port, bits: 16 });
      }
      continue;
    }
    const protos = protocolNumbers(p.protocol, p.port !== undefined);
    for (const protocol of protos) {
      if (p.port === undefined) push({ protocol, port: 0, bits: 0 });
      else for (const r of portRangePrefixes(p.port, p.endPort ?? p.port)) push({ protocol, ...r });
    }
  }
  return out;
}

/** Drops allows that a deny of the same or the wildcard identity covers (deny wins). */
function normalize(entries: Map<string, PolicyEntry>): void {
  const denies = new Map<number, PolicyEntry[]>();
  for (const e of entries.values()) {
    if (!e.deny) continue;
    const list = denies.get(e.identity) ?? [];
    list.push(e);
    denies.set(e.identity, list);
  }
  if (denies.size === 0) return;
  const wild = denies.get(WILDCARD_IDENTITY) ?? [];
  for (const [k, e] of entries) {
    if (e.deny) continue;
    const own = denies.get(e.identity) ?? [];
    if (own.some((d) => portPrefixCovers(d, e)) || wild.some((d) => portPrefixCovers(d, e)))
      entries.delete(k);
  }
}

function longestMatch(
  entries: Iterable<PolicyEntry>,
  identity: number,
  protocol: number,
  port: number,
): PolicyEntry | undefined {
  let best: PolicyEntry | undefined;
  const rank = (e: PolicyEntry) => (e.protocol === PROTO.ANY ? -1 : e.bits);
  for (const e of entries) {
    if (e.identity !== identity || !portPrefixMatches(e, protocol, port)) continue;
    if (!best || rank(e) > rank(best)) best = e;
  }
  return best;
}

/**
 * The verdict of a direction's policy for a packet from/to `identity`, as the
 * datapath computes it: the longest match for the identity and for the wildcard
 * identity; a deny in either denies; an allow in either allows; nothing: drop.
 */
export function lookupVerdict(
  policy: DirectionPolicy,
  identity: number,
  protocol: number,
  port: number,
): Verdict {
  const exact = longestMatch(policy.entries.values(), identity, protocol, port);
  const wild =
    identity === WILDCARD_IDENTITY
      ? undefined
      : longestMatch(policy.entries.values(), WILDCARD_IDENTITY, protocol, port);
  const deny = exact?.deny ? exact : wild?.deny ? wild : undefined;
  if (deny) return { allowed: false, reason: 'deny', entry: deny, enforced: policy.enforced };
  const allow = exact ?? wild;
  if (allow) return { allowed: true, reason: 'allow', entry: allow, enforced: policy.enforced };
  return { allowed: false, reason: 'default-deny', enforced: policy.enforced };
}

/** The datapath's form of an endpoint's policy (entries as arrays, origins as text). */
export function endpointPolicySpec(p: EndpointPolicy): EndpointPolicySpec {
  const dir = (d: DirectionPolicy) => ({
    enforced: d.enforced,
    entries: [...d.entries.values()]
      .map((e) => ({
        identity: e.identity,
        protocol: e.protocol,
        port: e.port,
        bits: e.bits,
        deny: e.deny,
        rule: formatOrigin(e.origin),
      }))
      .sort(
        (a, b) =>
          a.identity - b.identity || a.protocol - b.protocol || a.port - b.port || a.bits - b.bits,
      ),
  });
  return { endpointId: p.endpointId, ingress: dir(p.ingress), egress: dir(p.egress) };
}

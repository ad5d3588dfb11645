/**
 * Peer and subject selectors of network policy, matched against security
 * identities' labels (`source:key=value`, see src/identity/labels.ts), as Cilium's
 * EndpointSelector: a selector key may carry a source (`k8s:app`, `reserved:host`)
 * or not (`app` = any source). Besides label selectors, a peer may be an entity
 * (`world`, `cluster`, ...) or a CIDR with exceptions. Each selector has a
 * canonical string, the key of the selector cache.
 */
import type { Label, Labels } from '../identity/labels.js';
import { CLUSTER_LABEL } from '../identity/labels.js';
import { ReservedIdentity } from '../identity/numeric.js';

/** One requirement on an identity's labels. Source "any" matches every source. */
export interface Requirement {
  source: string;
  key: string;
  op: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values: string[];
}

/** What a rule's peer (or a policy's subject) selects. */
export type PeerSelector =
  | { kind: 'labels'; requirements: Requirement[] }
  | { kind: 'entity'; entity: string }
  | { kind: 'cidr'; cidr: string; except: string[] };

/** Label sources a selector key may name (`k8s:app`); other text before ':' is part of the key. */
const SOURCES = new Set([
  'k8s',
  'reserved',
  'any',
  'cidr',
  'unspec',
  'container',
  'cilium-generated',
]);

/** Splits a selector key into source and key: `k8s:app` -> (k8s, app); `app` -> (any, app). */
export function splitSelectorKey(key: string): { source: string; key: string } {
  const i = key.indexOf(':');
  if (i > 0 && SOURCES.has(key.slice(0, i)))
    return { source: key.slice(0, i), key: key.slice(i + 1) };
  return { source: 'any', key };
}

/** A Kubernetes LabelSelector object (validated beforehand). */
export interface LabelSelectorSpec {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}

/** Converts a LabelSelector to requirements (keys split into source and key). */
export function requirementsOf(
  ls: LabelSelectorSpec | undefined,
  defaultSource?: string,
): Requirement[] {
  const out: Requirement[] = [];
  const split = (k: string) => {
    const s = splitSelectorKey(k);
    return defaultSource && s.source === 'any' ? { source: defaultSource, key: s.key } : s;
  };
  for (const [k, v] of Object.entries(ls?.matchLabels ?? {}))
    out.push({ ...split(k), op: 'In', values: [v] });
  for (const e of ls?.matchExpressions ?? [])
    out.push({
      ...split(e.key),
      op: e.operator as Requirement['op'],
      values: [...(e.values ?? [])],
    });
  return out;
}

/** True if the requirements name `key` (with any source). */
export function namesKey(reqs: Requirement[], key: string): boolean {
  return reqs.some((r) => r.key === key);
}

/** Labels of one identity indexed by key, for matching. */
export type IndexedLabels = Map<string, Label[]>;

/** Indexes a label set by key. */
export function indexLabels(labels: Labels): IndexedLabels {
  const m: IndexedLabels = new Map();
  for (const l of labels) {
    const list = m.get(l.key);
    if (list) list.push(l);
    else m.set(l.key, [l]);
  }
  return m;
}

function requirementMatches(r: Requirement, labels: IndexedLabels): boolean {
  const found = (labels.get(r.key) ?? []).filter(
    (l) => r.source === 'any' || l.source === r.source,
  );
  switch (r.op) {
    case 'Exists':
      return found.length > 0;
    case 'DoesNotExist':
      return found.length === 0;
    case 'In':
      return found.some((l) => r.values.includes(l.value));
    case 'NotIn':
      return !found.some((l) => r.values.includes(l.value));
  }
}

/** True if every requirement holds for the labels (no requirements: everything). */
export function requirementsMatch(reqs: Requirement[], labels: IndexedLabels): boolean {
  for (const r of reqs) if (!requirementMatches(r, labels)) return false;
  return true;
}

/** Canonical text of a requirement list (sorted), e.g. `k8s:app In (a)`. */
export function formatRequirements(reqs: Requirement[]): string {
  return reqs
    .map(
      (r) =>
        `${r.source}:${r.key} ${r.op}${r.values.length ? ` (${[...r.values].sort().join(',')})` : ''}`,
    )
    .sort()
    .join(', ');
}

/** The canonical string of a selector: the key of the selector cache. */
export function selectorKey(s: PeerSelector): string {
  switch (s.kind) {
    case 'labels':
      return `labels{${formatRequirements(s.requirements)}}`;
    case 'entity':
      return `entity:${s.entity}`;
    case 'cidr':
      return `cidr:${s.cidr}${s.except.length ? ` except ${[...s.except].sort().join(',')}` : ''}`;
  }
}

// ---- CIDR helpers (IPv4) ----

/** Parsed IPv4 prefix. */
interface V4Prefix {
  net: number;
  len: number;
}

/** Parses "a.b.c.d/len" (or a bare address = /32); undefined for other forms (IPv6 is not matched). */
export function parseV4Prefix(s: string): V4Prefix | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/.exec(s);
  if (!m) return undefined;
  const octets = m.slice(1, 5).map(Number);
  if (octets.some((o) => o > 255)) return undefined;
  const len = m[5] === undefined ? 32 : Number(m[5]);
  if (len > 32) return undefined;
  const addr = octets.reduce((n, o) => n * 256 + o, 0);
  return { net: (addr & maskOf(len)) >>> 0, len };
}

function maskOf(len: number): number {
  return len === 0 ? 0 : (~0 << (32 - len)) >>> 0;
}

/** True if prefix `inner` lies inside `outer`. */
export function v4Within(inner: V4Prefix, outer: V4Prefix): boolean {
  return inner.len >= outer.len && (inner.net & maskOf(outer.len)) >>> 0 === outer.net;
}

/** Canonical "net/len" text of an IPv4 prefix string (host bits cleared). */
export function canonicalV4Prefix(s: string): string | undefined {
  const p = parseV4Prefix(s);
  if (!p) return undefined;
  const n = p.net;
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/${p.len}`;
}

/** Label source of CIDR identities: `cidr:10.0.0.0/8`. */
export const CIDR_SOURCE = 'cidr';

/** Context a selector is matched in. */
export interface MatchContext {
  /** This cluster's name (the `cluster` entity). */
  clusterName: string;
}

const RESERVED_BY_ENTITY: Record<string, number[]> = {
  host: [ReservedIdentity.host],
  'remote-node': [ReservedIdentity.remoteNode],
  'kube-apiserver': [ReservedIdentity.kubeAPIServer],
  health: [ReservedIdentity.health],
  init: [ReservedIdentity.init],
  unmanaged: [ReservedIdentity.unmanaged],
  world: [ReservedIdentity.world],
  'world-ipv4': [ReservedIdentity.world],
  'world-ipv6': [ReservedIdentity.world],
  ingress: [],
  cluster: [
    ReservedIdentity.host,
    ReservedIdentity.remoteNode,
    ReservedIdentity.kubeAPIServer,
    ReservedIdentity.health,
    ReservedIdentity.init,
    ReservedIdentity.unmanaged,
  ],
};

/**
 * Does selector `s` select identity `id` with labels `labels`? The entity `all`
 * is not matched here: it is the wildcard identity (0) of the policy map.
 */
export function selectorMatches(
  s: PeerSelector,
  id: number,
  labels: IndexedLabels,
  ctx: MatchContext,
): boolean {
  switch (s.kind) {
    case 'labels':
      return requirementsMatch(s.requirements, labels);
    case 'entity': {
      if (RESERVED_BY_ENTITY[s.entity]?.includes(id)) return true;
      if (s.entity === 'world' || s.entity === 'world-ipv4') return hasCidr(labels);
      if (s.entity === 'cluster')
        return (labels.get(CLUSTER_LABEL) ?? []).some(
          (l) => l.source === 'k8s' && l.value === ctx.clusterName,
        );
      return false;
    }
    case 'cidr': {
      const outer = parseV4Prefix(s.cidr);
      if (!outer) return false;
      if (outer.len === 0 && id === ReservedIdentity.world) return true;
      for (const p of cidrsOf(labels)) {
        if (!v4Within(p, outer)) continue;
        if (
          s.except.some((x) => {
            const ex = parseV4Prefix(x);
            return ex !== undefined && v4Within(p, ex);
          })
        )
          continue;
        return true;
      }
      return false;
    }
  }
}

function hasCidr(labels: IndexedLabels): boolean {
  for (const list of labels.values()) if (list.some((l) => l.source === CIDR_SOURCE)) return true;
  return false;
}

function cidrsOf(labels: IndexedLabels): V4Prefix[] {
  const out: V4Prefix[] = [];
  for (const list of labels.values())
    for (const l of list) {
      if (l.source !== CIDR_SOURCE) continue;
      const p = parseV4Prefix(l.key);
      if (p) out.push(p);
    }
  return out;
}

/**
 * CIDR identities, as Cilium's: every prefix a policy names as a peer
 * (`toCIDR`/`fromCIDR`/`toCIDRSet`, NetworkPolicy `ipBlock`, and their
 * `except` entries) gets a node-local identity in the local scope (bit 24
 * set, 16777217 and up, never allocated cluster-wide nor shared with other
 * nodes) with the label `cidr:<prefix>`. The agent writes each prefix to the
 * ipcache with its identity, so the datapath's longest-prefix lookup gives an
 * address outside the clusters the identity of the most specific policy
 * prefix containing it; a CIDR selector matches the identities of prefixes
 * inside it and not inside an `except` (src/policy/selector.ts).
 */
import type { Labels } from '../identity/labels.js';
import { CIDR_SOURCE, canonicalV4Prefix } from './selector.js';
import type { PolicySpec } from './translate.js';

/** The local identity scope (Cilium's LocalIdentityFlag): bit 24. */
export const LOCAL_IDENTITY_SCOPE = 1 << 24;
/** The largest local index (the identity map's value is a u32; Cilium keeps local identities below 1<<25). */
export const MAX_LOCAL_CIDR_INDEX = LOCAL_IDENTITY_SCOPE - 1;

/** A CIDR identity: the prefix (canonical "net/len") and its numeric identity. */
export interface CidrIdentity {
  prefix: string;
  identity: number;
}

/** The labels of a CIDR identity: `cidr:<prefix>`. */
export function cidrIdentityLabels(prefix: string): Labels {
  return [{ source: CIDR_SOURCE, key: prefix, value: '' }];
}

/**
 * The IPv4 prefixes the rules of SPECS name as CIDR peers (including
 * `except`), canonical and de-duplicated. `0.0.0.0/0` is left out: an
 * address no prefix covers is `world`, which a /0 selector matches.
 */
export function policyCidrPrefixes(specs: Iterable<PolicySpec>): string[] {
  const out = new Set<string>();
  const add = (s: string) => {
    const c = canonicalV4Prefix(s);
    if (c && !c.endsWith('/0')) out.add(c);
  };
  for (const spec of specs)
    for (const r of spec.rules) {
      if (r.peers === 'all') continue;
      for (const p of r.peers) {
        if (p.kind !== 'cidr') continue;
        add(p.cidr);
        for (const x of p.except) add(x);
      }
    }
  return [...out].sort();
}

/** Allocates node-local identities to prefixes; an identity stays with its prefix while it is in use. */
export class CidrIdentityAllocator {
  private readonly byPrefix = new Map<string, number>();
  private readonly free: number[] = [];
  private next = 1;

  /**
   * Makes the allocated set exactly PREFIXES (canonical). Returns what was
   * added and removed. @throws RangeError when the local range is exhausted.
   */
  sync(prefixes: Iterable<string>): { added: CidrIdentity[]; removed: CidrIdentity[] } {
    const want = new Set(prefixes);
    const removed: CidrIdentity[] = [];
    for (const [prefix, identity] of this.byPrefix) {
      if (want.has(prefix)) continue;
      this.byPrefix.delete(prefix);
      this.free.push(identity);
      removed.push({ prefix, identity });
    }
    const added: CidrIdentity[] = [];
    for (const prefix of want) {
      if (this.byPrefix.has(prefix)) continue;
      const identity = this.free.pop() ?? this.take();
      this.byPrefix.set(prefix, identity);
      added.push({ prefix, identity });
    }
    return { added, removed };
  }

  /**
   * Takes identities allocated by an earlier run (read back from the
   * ipcache): entries in the local scope whose prefix and identity are both
   * free here. Returns those taken. A later sync() drops those no policy names.
   */
  restore(entries: readonly CidrIdentity[]): CidrIdentity[] {
    const taken: CidrIdentity[] = [];
    const used = new Set(this.byPrefix.values());
    for (const e of entries) {
      const n = e.identity - LOCAL_IDENTITY_SCOPE;
      const prefix = canonicalV4Prefix(e.prefix);
      if (n < 1 || n > MAX_LOCAL_CIDR_INDEX || !prefix || prefix !== e.prefix) continue;
      if (this.byPrefix.has(prefix) || used.has(e.identity)) continue;
      this.byPrefix.set(prefix, e.identity);
      used.add(e.identity);
      taken.push({ prefix, identity: e.identity });
    }
    // identities below the highest restored one that are not in use go to the free list
    const top = Math.max(this.next - 1, ...taken.map((t) => t.identity - LOCAL_IDENTITY_SCOPE));
    for (let n = this.next; n <= top; n++)
      if (!used.has(LOCAL_IDENTITY_SCOPE + n)) this.free.push(LOCAL_IDENTITY_SCOPE + n);
    this.next = top + 1;
    return taken;
  }

  /** Every allocated CIDR identity. */
  list(): CidrIdentity[] {
    return [...this.byPrefix].map(([prefix, identity]) => ({ prefix, identity }));
  }

  private take(): number {
    if (this.next > MAX_LOCAL_CIDR_INDEX)
      throw new RangeError(`no local CIDR identity left (${MAX_LOCAL_CIDR_INDEX} in use)`);
    return (LOCAL_IDENTITY_SCOPE | this.next++) >>> 0;
  }
}

/**
 * The selector cache, as Cilium's SelectorCache: each distinct peer selector
 * (by its canonical string) keeps the set of identities it selects, updated
 * when identities come and go, so computing policy never scans every identity
 * for every rule. Selectors are reference-counted by the policies using them.
 * An equality requirement (`k8s:app=x`) finds its candidates through an index
 * of identities by label, so adding a selector costs the identities it could
 * match, not all of them.
 */
import type { Labels } from '../identity/labels.js';
import {
  indexLabels,
  selectorKey,
  selectorMatches,
  type IndexedLabels,
  type MatchContext,
  type PeerSelector,
} from './selector.js';

interface CachedSelector {
  selector: PeerSelector;
  ids: Set<number>;
  refs: number;
}

/** Identities and the selections of the selectors in use. */
export class SelectorCache {
  private readonly identities = new Map<number, IndexedLabels>();
  /** "key=value" -> identities with a label of that key and value (any source). */
  private readonly byLabel = new Map<string, Set<number>>();
  private readonly selectors = new Map<string, CachedSelector>();
  /** Bumped on every change of any selection; lets callers skip recomputation. */
  version = 0;

  constructor(private readonly ctx: MatchContext) {}

  /** Number of identities known. */
  get identityCount(): number {
    return this.identities.size;
  }

  /** Number of distinct selectors in use. */
  get selectorCount(): number {
    return this.selectors.size;
  }

  /** Labels of an identity, indexed (undefined if unknown). */
  labelsOf(id: number): IndexedLabels | undefined {
    return this.identities.get(id);
  }

  /** Adds or replaces an identity; returns true if some selection changed. */
  upsertIdentity(id: number, labels: Labels): boolean {
    let changed = false;
    if (this.identities.has(id)) changed = this.deleteIdentity(id);
    const idx = indexLabels(labels);
    this.identities.set(id, idx);
    for (const l of labels) {
      const k = `${l.key}=${l.value}`;
      let set = this.byLabel.get(k);
      if (!set) this.byLabel.set(k, (set = new Set()));
      set.add(id);
    }
    for (const c of this.selectors.values()) {
      if (selectorMatches(c.selector, id, idx, this.ctx)) {
        c.ids.add(id);
        changed = true;
      }
    }
    if (changed) this.version++;
    return changed;
  }

  /** Removes an identity; returns true if some selection changed. */
  deleteIdentity(id: number): boolean {
    const idx = this.identities.get(id);
    if (!idx) return false;
    this.identities.delete(id);
    for (const list of idx.values())
      for (const l of list) {
        const k = `${l.key}=${l.value}`;
        const set = this.byLabel.get(k);
        set?.delete(id);
        if (set?.size === 0) this.byLabel.delete(k);
      }
    let changed = false;
    for (const c of this.selectors.values()) if (c.ids.delete(id)) changed = true;
    if (changed) this.version++;
    return changed;
  }

  /** Starts using a selector (computing its selection if new); returns its key. */
  acquire(selector: PeerSelector): string {
    const key = selectorKey(selector);
    const c = this.selectors.get(key);
    if (c) {
      c.refs++;
      return key;
    }
    const ids = new Set<number>();
    for (const id of this.candidates(selector)) {
      const idx = this.identities.get(id);
      if (idx && selectorMatches(selector, id, idx, this.ctx)) ids.add(id);
    }
    this.selectors.set(key, { selector, ids, refs: 1 });
    return key;
  }

  /** Stops using a selector (dropped at the last reference). */
  release(key: string): void {
    const c = this.selectors.get(key);
    if (!c) return;
    if (--c.refs <= 0) this.selectors.delete(key);
  }

  /** The identities a selector (by key) selects (empty if not acquired). */
  selections(key: string): ReadonlySet<number> {
    return this.selectors.get(key)?.ids ?? EMPTY;
  }

  private candidates(s: PeerSelector): Iterable<number> {
    if (s.kind !== 'labels') return this.identities.keys();
    let best: Set<number> | undefined;
    for (const r of s.requirements) {
      if (r.op !== 'In' || r.values.length !== 1) continue;
      const set = this.byLabel.get(`${r.key}=${r.values[0]}`) ?? EMPTY_SET;
      if (!best || set.size < best.size) best = set;
    }
    return best ?? this.identities.keys();
  }
}

const EMPTY: ReadonlySet<number> = new Set();
const EMPTY_SET = new Set<number>();

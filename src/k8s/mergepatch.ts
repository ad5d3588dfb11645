/**
 * JSON merge patch (RFC 7386): objects merge key by key, `null` deletes a key,
 * anything else (arrays included) replaces. Kubernetes' strategic merge patch
 * differs for lists with a merge key (containers by name, ports by
 * containerPort, ...): Tendril treats strategic patches as merge patches, so a
 * list in such a patch replaces the whole list (see docs/lab-apiserver.md).
 */

/** Applies a merge patch to `target`; returns a new value (inputs are not modified). */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return clone(patch);
  const out: Record<string, unknown> = isPlainObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** Computes a merge patch that turns `from` into `to` (undefined if they are equal). */
export function createMergePatch(from: unknown, to: unknown): unknown {
  if (!isPlainObject(from) || !isPlainObject(to)) return deepEqual(from, to) ? undefined : clone(to);
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(from)) if (!(k in to)) out[k] = null;
  for (const [k, v] of Object.entries(to)) {
    if (!(k in from)) out[k] = clone(v);
    else {
      const d = createMergePatch(from[k], v);
      if (d !== undefined) out[k] = d;
    }
  }
  return Object.keys(out).length ? out : undefined;
}

/** True for `{...}` (not arrays, not null). */
export function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Structural equality of JSON values. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => deepEqual(x, bb[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao);
  if (ak.length !== Object.keys(bo).length) return false;
  return ak.every((k) => Object.prototype.hasOwnProperty.call(bo, k) && deepEqual(ao[k], bo[k]));
}

/** Deep copy of a JSON value. */
export function clone<T>(x: T): T {
  return x === undefined ? x : (JSON.parse(JSON.stringify(x)) as T);
}

/**
 * JSON merge patch (RFC 7386): objects merge key by key, `null` deletes a key,
 * anything else (arrays included) replaces; and RFC 6902 JSON patch, bounded.
 * Kubernetes' strategic merge patch (lists merged by key) is in strategicpatch.ts.
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
  if (!isPlainObject(from) || !isPlainObject(to))
    return deepEqual(from, to) ? undefined : clone(to);
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

/** One RFC 6902 JSON patch operation. */
export interface JsonPatchOp {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  value?: unknown;
  from?: string;
}

/**
 * Thrown by applyJsonPatch for a bad operation or a failed test; the message
 * names the operation. `tooLarge` marks a patch over its bounds (too many
 * operations, copies growing the document past the limit): the server answers 413.
 */
export class JsonPatchError extends Error {
  constructor(
    message: string,
    readonly tooLarge = false,
  ) {
    super(message);
  }
}

/** Bounds of applyJsonPatch. */
export interface JsonPatchLimits {
  /** Most operations in one patch. Default 1000. */
  maxOperations?: number;
  /**
   * Most bytes (of JSON) that `copy` operations may add in total. Default 3 MiB.
   * A chain of copies doubles a document with each operation; this stops it
   * before it is built.
   */
  maxCopyBytes?: number;
}

/** Default bound on the operations of a JSON patch. */
export const MAX_JSON_PATCH_OPERATIONS = 1000;

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/'))
    throw new JsonPatchError(`invalid JSON pointer "${path}": must start with "/"`);
  return path
    .slice(1)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- walks arbitrary JSON
function parentOf(doc: unknown, parts: string[], path: string): { parent: any; key: string } {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- walks arbitrary JSON
  let cur: any = doc;
  for (const p of parts.slice(0, -1)) {
    cur = Array.isArray(cur) ? cur[Number(p)] : isPlainObject(cur) ? cur[p] : undefined;
    if (cur === undefined) throw new JsonPatchError(`path "${path}" does not exist`);
  }
  return { parent: cur, key: parts[parts.length - 1]! };
}

function getAt(doc: unknown, path: string): unknown {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- walks arbitrary JSON
  let cur: any = doc;
  for (const p of pointer(path)) {
    cur = Array.isArray(cur) ? cur[Number(p)] : isPlainObject(cur) ? cur[p] : undefined;
    if (cur === undefined) throw new JsonPatchError(`path "${path}" does not exist`);
  }
  return cur;
}

/**
 * Applies an RFC 6902 JSON patch; returns a new document.
 * @throws JsonPatchError naming the failing operation.
 */
export function applyJsonPatch(
  doc: unknown,
  ops: JsonPatchOp[],
  limits: JsonPatchLimits = {},
): unknown {
  const maxOps = limits.maxOperations ?? MAX_JSON_PATCH_OPERATIONS;
  const maxCopy = limits.maxCopyBytes ?? 3 * 1024 * 1024;
  if (ops.length > maxOps)
    throw new JsonPatchError(
      `the JSON patch has ${ops.length} operations; at most ${maxOps} are allowed`,
      true,
    );
  let copied = 0;
  let out = clone(doc);
  ops.forEach((o, i) => {
    if (!isPlainObject(o))
      throw new JsonPatchError(
        `operation ${i}: must be an object like {"op": "add", "path": "/a", "value": 1}`,
      );
    const where = `operation ${i} (${o.op} ${o.path})`;
    try {
      const parts = pointer(o.path);
      const put = (value: unknown, insert: boolean) => {
        if (parts.length === 0) {
          out = value;
          return;
        }
        const { parent, key } = parentOf(out, parts, o.path);
        if (Array.isArray(parent)) {
          const idx = key === '-' ? parent.length : Number(key);
          if (
            !Number.isInteger(idx) ||
            idx < 0 ||
            idx > parent.length ||
            (!insert && idx >= parent.length)
          )
            throw new JsonPatchError(`index ${key} out of range`);
          if (insert) parent.splice(idx, 0, value);
          else parent[idx] = value;
        } else if (isPlainObject(parent)) {
          if (!insert && !(key in parent))
            throw new JsonPatchError(`path "${o.path}" does not exist`);
          parent[key] = value;
        } else throw new JsonPatchError(`path "${o.path}" does not exist`);
      };
      const remove = (path: string): unknown => {
        const ps = pointer(path);
        const { parent, key } = parentOf(out, ps, path);
        if (Array.isArray(parent)) {
          const idx = Number(key);
          if (!(idx >= 0 && idx < parent.length))
            throw new JsonPatchError(`index ${key} out of range`);
          return parent.splice(idx, 1)[0];
        }
        if (!isPlainObject(parent) || !(key in parent))
          throw new JsonPatchError(`path "${path}" does not exist`);
        const v = parent[key];
        delete parent[key];
        return v;
      };
      switch (o.op) {
        case 'add':
          put(clone(o.value), true);
          break;
        case 'replace':
          put(clone(o.value), false);
          break;
        case 'remove':
          remove(o.path);
          break;
        case 'move': {
          const v = remove(o.from ?? '');
          put(v, true);
          break;
        }
        case 'copy': {
          const text = JSON.stringify(getAt(out, o.from ?? '')) ?? 'null';
          copied += Buffer.byteLength(text);
          if (copied > maxCopy)
            throw new JsonPatchError(
              `the copies of this patch add ${copied} bytes, more than the limit of ${maxCopy}`,
              true,
            );
          put(JSON.parse(text), true);
          break;
        }
        case 'test':
          if (!deepEqual(getAt(out, o.path), o.value)) throw new JsonPatchError('test failed');
          break;
        default:
          throw new JsonPatchError(`unknown op "${String((o as { op: unknown }).op)}"`);
      }
    } catch (err) {
      throw new JsonPatchError(
        `${where}: ${(err as Error).message}`,
        err instanceof JsonPatchError && err.tooLarge,
      );
    }
  });
  return out;
}

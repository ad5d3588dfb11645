/**
 * Kubernetes strategic merge patch for the kinds Tendril serves. It is a JSON
 * merge patch (RFC 7386) except for the lists the Kubernetes types mark with a
 * patch strategy: those merge element by element on their patch merge key
 * (containers by `name`, container ports by `containerPort`, Service ports by
 * `port`, ...) instead of being replaced, and primitive lists marked `merge`
 * (`metadata.finalizers`) are unioned. Directives understood: `$patch:
 * replace|delete|merge` in a map or a list element, `$deleteFromPrimitiveList/F`,
 * and `$setElementOrder/F` / `$retainKeys` (accepted and dropped, as kubectl
 * only sends them from `apply`). The merge keys are written once in
 * PATCH_MERGE_KEYS, per kind, as paths from the object root.
 */
import { clone, isPlainObject } from './mergepatch.js';

/** Thrown for a patch that cannot be applied; the message names the field. */
export class StrategicPatchError extends Error {
  readonly code = 'K8S_STRATEGIC_PATCH';
}

/** A list field's patch strategy: merge elements by `key`, or union a primitive list (`key` undefined). */
interface ListStrategy {
  key?: string;
}

/** Paths (field names, list indexes left out) of the pod spec's merge-keyed lists, relative to a PodSpec. */
const POD_SPEC_LISTS: Record<string, ListStrategy> = {
  containers: { key: 'name' },
  initContainers: { key: 'name' },
  ephemeralContainers: { key: 'name' },
  'containers.ports': { key: 'containerPort' },
  'initContainers.ports': { key: 'containerPort' },
  'containers.env': { key: 'name' },
  'initContainers.env': { key: 'name' },
  'containers.volumeMounts': { key: 'mountPath' },
  'initContainers.volumeMounts': { key: 'mountPath' },
  'containers.volumeDevices': { key: 'devicePath' },
  'initContainers.volumeDevices': { key: 'devicePath' },
  volumes: { key: 'name' },
  imagePullSecrets: { key: 'name' },
  hostAliases: { key: 'ip' },
  topologySpreadConstraints: { key: 'topologyKey' },
  resourceClaims: { key: 'name' },
  schedulingGates: { key: 'name' },
};

const METADATA_LISTS: Record<string, ListStrategy> = {
  'metadata.ownerReferences': { key: 'uid' },
  'metadata.finalizers': {},
};

function prefixed(
  prefix: string,
  table: Record<string, ListStrategy>,
): Record<string, ListStrategy> {
  return Object.fromEntries(Object.entries(table).map(([k, v]) => [`${prefix}.${k}`, v]));
}

/**
 * Merge-keyed lists per kind, as the Kubernetes Go types declare them
 * (`patchStrategy:"merge" patchMergeKey:"..."`). Lists not named here are
 * replaced whole by a patch, as Kubernetes does for atomic lists.
 */
export const PATCH_MERGE_KEYS: Record<string, Record<string, ListStrategy>> = {
  Pod: {
    ...METADATA_LISTS,
    ...prefixed('spec', POD_SPEC_LISTS),
    'status.conditions': { key: 'type' },
    'status.podIPs': { key: 'ip' },
    'status.hostIPs': { key: 'ip' },
  },
  Deployment: {
    ...METADATA_LISTS,
    ...prefixed('spec.template', METADATA_LISTS),
    ...prefixed('spec.template.spec', POD_SPEC_LISTS),
    'status.conditions': { key: 'type' },
  },
  DaemonSet: {
    ...METADATA_LISTS,
    ...prefixed('spec.template', METADATA_LISTS),
    ...prefixed('spec.template.spec', POD_SPEC_LISTS),
    'status.conditions': { key: 'type' },
  },
  Service: { ...METADATA_LISTS, 'spec.ports': { key: 'port' } },
  Node: {
    ...METADATA_LISTS,
    'spec.podCIDRs': {},
    'status.conditions': { key: 'type' },
    'status.addresses': { key: 'type' },
  },
  Namespace: { ...METADATA_LISTS, 'status.conditions': { key: 'type' } },
  EndpointSlice: { ...METADATA_LISTS },
};

/** Kinds a strategic merge patch is defined for (the built-in ones; custom resources take merge/json patches). */
export function supportsStrategicPatch(kind: string): boolean {
  return kind in PATCH_MERGE_KEYS;
}

/** Deepest nesting a patch may have (a guard against stack exhaustion). */
const MAX_DEPTH = 200;

/**
 * Applies a strategic merge patch to `target` of the given kind; returns a new
 * value (inputs are not modified).
 * @throws StrategicPatchError for an element without its merge key, a bad directive, or a too deep patch.
 */
export function strategicMergePatch(kind: string, target: unknown, patch: unknown): unknown {
  const table = PATCH_MERGE_KEYS[kind] ?? METADATA_LISTS;
  return mergeValue(table, [], target, patch, 0);
}

function mergeValue(
  table: Record<string, ListStrategy>,
  path: string[],
  target: unknown,
  patch: unknown,
  depth: number,
): unknown {
  if (depth > MAX_DEPTH)
    throw new StrategicPatchError(`the patch is nested deeper than ${MAX_DEPTH} levels`);
  if (!isPlainObject(patch)) return clone(patch);
  return mergeMap(table, path, isPlainObject(target) ? target : {}, patch, depth);
}

function mergeMap(
  table: Record<string, ListStrategy>,
  path: string[],
  target: Record<string, unknown>,
  patch: Record<string, unknown>,
  depth: number,
): Record<string, unknown> | undefined {
  if (depth > MAX_DEPTH)
    throw new StrategicPatchError(`the patch is nested deeper than ${MAX_DEPTH} levels`);
  const directive = patch.$patch;
  if (directive === 'delete') return undefined;
  if (directive === 'replace') return stripDirectives(patch);
  if (directive !== undefined && directive !== 'merge')
    throw new StrategicPatchError(
      `${where(path)}: unknown $patch directive "${String(directive)}" (replace, delete or merge)`,
    );
  const out: Record<string, unknown> = { ...target };
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys' || k.startsWith('$setElementOrder/')) continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      if (!Array.isArray(v))
        throw new StrategicPatchError(`${where([...path, k])}: must be a list`);
      if (Array.isArray(out[field]))
        out[field] = (out[field] as unknown[]).filter((x) => !v.some((d) => d === x));
      continue;
    }
    const childPath = [...path, k];
    if (v === null) {
      delete out[k];
      continue;
    }
    const strategy = table[childPath.join('.')];
    if (Array.isArray(v) && strategy) {
      out[k] = mergeList(table, childPath, strategy, out[k], v, depth + 1);
      continue;
    }
    if (isPlainObject(v)) {
      const merged = mergeMap(
        table,
        childPath,
        isPlainObject(out[k]) ? (out[k] as Record<string, unknown>) : {},
        v,
        depth + 1,
      );
      if (merged === undefined) delete out[k];
      else out[k] = merged;
      continue;
    }
    out[k] = clone(v);
  }
  return out;
}

function mergeList(
  table: Record<string, ListStrategy>,
  path: string[],
  strategy: ListStrategy,
  target: unknown,
  patch: unknown[],
  depth: number,
): unknown[] {
  const original = Array.isArray(target) ? target : [];
  if (patch.some((e) => isPlainObject(e) && e.$patch === 'replace'))
    return patch.filter((e) => !(isPlainObject(e) && e.$patch === 'replace')).map(stripAny);
  if (strategy.key === undefined) {
    // A primitive list with the merge strategy (finalizers): union, original order first.
    const out = [...original];
    for (const e of patch) if (!out.includes(e)) out.push(clone(e));
    return out;
  }
  const key = strategy.key;
  const out: unknown[] = original.map((e) => clone(e));
  for (const [i, e] of patch.entries()) {
    if (!isPlainObject(e))
      throw new StrategicPatchError(
        `${where(path)}[${i}]: must be an object with the merge key "${key}"`,
      );
    if (!(key in e))
      throw new StrategicPatchError(
        `${where(path)}[${i}]: map: ${JSON.stringify(e)} does not contain declared merge key: ${key}`,
      );
    const idx = out.findIndex((o) => isPlainObject(o) && o[key] === e[key]);
    if (e.$patch === 'delete') {
      if (idx >= 0) out.splice(idx, 1);
      continue;
    }
    if (idx >= 0) {
      const merged = mergeMap(table, path, out[idx] as Record<string, unknown>, e, depth + 1);
      if (merged === undefined) out.splice(idx, 1);
      else out[idx] = merged;
    } else {
      out.push(mergeMap(table, path, {}, e, depth + 1));
    }
  }
  return out;
}

function stripAny(x: unknown): unknown {
  return isPlainObject(x) ? stripDirectives(x) : clone(x);
}

function stripDirectives(x: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(x)) if (!k.startsWith('$')) out[k] = clone(v);
  return out;
}

function where(path: string[]): string {
  return path.length ? path.join('.') : '(root)';
}

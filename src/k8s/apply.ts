/**
 * `apply` as kubectl does it (client-side apply): create what is missing;
 * otherwise send a three-way merge patch computed from the last applied
 * configuration (kept in the `kubectl.kubernetes.io/last-applied-configuration`
 * annotation), the new manifest and the live object, so fields removed from
 * the manifest are removed and fields set by others are kept. Lists are
 * replaced whole (merge patch semantics; see docs/lab-apiserver.md).
 * Everything is first checked with a server-side dry run, so an object the
 * server would refuse stops the whole apply before anything is written.
 */
import type { KubeClient } from './client.js';
import { clone, deepEqual, isPlainObject } from './mergepatch.js';
import type { KubeObject } from './objects.js';
import { resourcePath, type ResourceInfo } from './resources.js';
import type { ManifestObject } from './manifest.js';
import { ApiError } from './status.js';

/** The annotation kubectl keeps the last applied manifest in. */
export const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/** What happened to one object. */
export interface ApplyResult {
  info: ResourceInfo;
  name: string;
  namespace?: string;
  action: 'created' | 'configured' | 'unchanged';
  object: KubeObject;
}

/**
 * The three-way merge patch: fields of `desired` that differ from `live`, and
 * `null` for fields that were in `lastApplied` but are no longer in `desired`.
 */
export function threeWayMergePatch(
  lastApplied: unknown,
  desired: unknown,
  live: unknown,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const d = isPlainObject(desired) ? desired : {};
  const l = isPlainObject(live) ? live : {};
  const la = isPlainObject(lastApplied) ? lastApplied : {};
  for (const [k, v] of Object.entries(d)) {
    if (isPlainObject(v) && isPlainObject(l[k])) {
      const sub = threeWayMergePatch(la[k], v, l[k]);
      if (Object.keys(sub).length) out[k] = sub;
    } else if (!deepEqual(v, l[k])) out[k] = clone(v);
  }
  for (const k of Object.keys(la)) if (!(k in d) && k in l) out[k] = null;
  return out;
}

function withNamespace(m: ManifestObject, namespace: string): KubeObject {
  const o = clone(m.object);
  if (m.info.namespaced) o.metadata.namespace ??= namespace;
  else delete o.metadata.namespace;
  return o;
}

function annotate(o: KubeObject): KubeObject {
  const copy = clone(o);
  if (copy.metadata.annotations) delete copy.metadata.annotations[LAST_APPLIED];
  if (copy.metadata.annotations && Object.keys(copy.metadata.annotations).length === 0)
    delete copy.metadata.annotations;
  const out = clone(o);
  out.metadata.annotations = {
    ...(out.metadata.annotations ?? {}),
    [LAST_APPLIED]: JSON.stringify(copy) + '\n',
  };
  return out;
}

/**
 * Applies validated manifest objects in order (after a dry run of all of them).
 * @param namespace namespace for namespaced objects that name none
 * @throws ApiError from the dry run (nothing written) or from the write that failed.
 */
export async function applyObjects(
  client: KubeClient,
  objects: ManifestObject[],
  options: { namespace: string; dryRun?: boolean },
): Promise<ApplyResult[]> {
  const plans: Array<{
    m: ManifestObject;
    desired: KubeObject;
    live?: KubeObject;
    patch?: Record<string, unknown>;
  }> = [];
  const namespacesInFile = new Set(
    objects.filter((m) => m.info.kind === 'Namespace').map((m) => m.object.metadata.name),
  );
  for (const m of objects) {
    const desired = annotate(withNamespace(m, options.namespace));
    const ns = desired.metadata.namespace;
    const name = desired.metadata.name;
    let live: KubeObject | undefined;
    if (name)
      live = await client.getOrUndefined(desired.apiVersion, desired.kind, name, { namespace: ns });
    const path = resourcePath(m.info, { namespace: ns, name: live ? name : undefined });
    try {
      if (live) {
        const lastText = live.metadata.annotations?.[LAST_APPLIED];
        let last: unknown = {};
        if (lastText) {
          try {
            last = JSON.parse(lastText);
          } catch {
            last = {};
          }
        }
        const patch = threeWayMergePatch(last, desired, live);
        plans.push({ m, desired, live, patch });
        if (Object.keys(patch).length)
          await client.request('PATCH', `${path}?dryRun=All`, {
            body: patch,
            contentType: 'application/merge-patch+json',
          });
      } else {
        plans.push({ m, desired });
        await client.request('POST', `${path}?dryRun=All`, { body: desired });
      }
    } catch (err) {
      // A namespace created earlier in the same file does not exist yet during the dry run.
      if (
        err instanceof ApiError &&
        err.httpCode === 404 &&
        !live &&
        ns &&
        namespacesInFile.has(ns)
      )
        continue;
      throw err;
    }
  }
  if (options.dryRun) {
    return plans.map((p) => ({
      info: p.m.info,
      name: p.desired.metadata.name ?? '',
      namespace: p.desired.metadata.namespace,
      action: p.live
        ? p.patch && Object.keys(p.patch).length
          ? 'configured'
          : 'unchanged'
        : 'created',
      object: p.desired,
    }));
  }
  const results: ApplyResult[] = [];
  for (const p of plans) {
    const { info } = p.m;
    if (!p.live) {
      const created = await client.create(p.desired);
      results.push({
        info,
        name: created.metadata.name!,
        namespace: created.metadata.namespace,
        action: 'created',
        object: created,
      });
      continue;
    }
    if (!p.patch || Object.keys(p.patch).length === 0) {
      results.push({
        info,
        name: p.live.metadata.name!,
        namespace: p.live.metadata.namespace,
        action: 'unchanged',
        object: p.live,
      });
      continue;
    }
    const path = resourcePath(info, {
      namespace: p.live.metadata.namespace,
      name: p.live.metadata.name,
    });
    const updated = await client.request<KubeObject>('PATCH', path, {
      body: p.patch,
      contentType: 'application/merge-patch+json',
    });
    const changed = updated.metadata.resourceVersion !== p.live.metadata.resourceVersion;
    results.push({
      info,
      name: updated.metadata.name!,
      namespace: updated.metadata.namespace,
      action: changed ? 'configured' : 'unchanged',
      object: updated,
    });
  }
  return results;
}

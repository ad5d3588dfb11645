/**
 * The identity allocator's CRD backend: identities as cluster-scoped
 * CiliumIdentity objects (cilium.io/v2), named by the numeric ID, with the
 * label set in the top-level `security-labels` map ("k8s:app" -> "echo"), as
 * Cilium stores them. Creating an object whose name is taken fails with 409,
 * which makes binding an ID atomic. Two writers racing to bind one label set
 * to two IDs both see both objects after their create: the lowest ID wins
 * and the other writer deletes its object. (The operator is the only writer
 * in practice; agents only read.)
 */
import type { KubeObject } from '../k8s/objects.js';
import type { KubeClient } from '../k8s/client.js';
import type { AllocateResult, IdentityBackend, IdentityRecord } from './backend.js';
import { labelsString, makeLabel, makeLabels, parseLabels } from './labels.js';
import { isNotFound, isConflict } from '../util/errors.js';

export const CILIUM_V2 = 'cilium.io/v2';

/** The canonical label string of a CiliumIdentity object (undefined when it has none). */
export function identityObjectLabels(obj: KubeObject): string | undefined {
  const sec = (obj['security-labels'] ??
    (obj.spec as Record<string, unknown> | undefined)?.['security-labels']) as
    Record<string, string> | undefined;
  if (!sec || Object.keys(sec).length === 0) return undefined;
  const labels = Object.entries(sec).map(([k, v]) => {
    const i = k.indexOf(':');
    return i > 0 ? makeLabel(k.slice(0, i), k.slice(i + 1), v ?? '') : makeLabel('k8s', k, v ?? '');
  });
  return labelsString(makeLabels(labels));
}

/** Builds the CiliumIdentity object of an ID and canonical label string. */
export function identityObject(id: number, labels: string): KubeObject {
  const sec: Record<string, string> = {};
  const k8sLabels: Record<string, string> = {};
  for (const l of parseLabels(labels)) {
    sec[`${l.source}:${l.key}`] = l.value;
    // metadata.labels carry the k8s-source labels that are valid label keys/values (for selectors)
    if (
      l.source === 'k8s' &&
      /^([a-z0-9.-]{1,253}\/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/.test(l.key) &&
      /^(|[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)$/.test(l.value)
    ) {
      k8sLabels[l.key] = l.value;
    }
  }
  return {
    apiVersion: CILIUM_V2,
    kind: 'CiliumIdentity',
    metadata: { name: String(id), labels: k8sLabels },
    'security-labels': sec,
  } as KubeObject;
}

/** IdentityBackend over CiliumIdentity objects. */
export class CrdIdentityBackend implements IdentityBackend {
  constructor(private readonly kube: KubeClient) {}

  async list(): Promise<IdentityRecord[]> {
    const l = await this.kube.list(CILIUM_V2, 'CiliumIdentity');
    const out: IdentityRecord[] = [];
    for (const o of l.items) {
      const id = Number(o.metadata.name);
      const labels = identityObjectLabels(o);
      if (Number.isInteger(id) && id > 0 && labels) out.push({ id, labels });
    }
    return out.sort((a, b) => a.id - b.id);
  }

  async lookup(labels: string): Promise<number | undefined> {
    return (await this.list()).find((r) => r.labels === labels)?.id;
  }

  async get(id: number): Promise<string | undefined> {
    const o = await this.kube.getOrUndefined(CILIUM_V2, 'CiliumIdentity', String(id));
    return o ? identityObjectLabels(o) : undefined;
  }

  async allocate(id: number, labels: string): Promise<AllocateResult> {
    const existing = await this.lookup(labels);
    if (existing !== undefined) return { id: existing, created: false };
    try {
      await this.kube.create(identityObject(id, labels));
    } catch (err) {
      if (isConflict(err)) {
        const other = await this.get(id);
        return other === labels ? { id, created: false } : { taken: true };
      }
      throw err;
    }
    // Two writers may have bound the same label set to two IDs at once: the
    // lowest ID wins, the others remove their object and return the winner.
    const same = (await this.list()).filter((r) => r.labels === labels).map((r) => r.id);
    const winner = Math.min(...same, id);
    if (winner !== id) {
      await this.kube.delete(CILIUM_V2, 'CiliumIdentity', String(id)).catch((err) => {
        if (!isNotFound(err)) throw err;
      });
      return { id: winner, created: false };
    }
    return { id, created: true };
  }

  async release(id: number, labels: string): Promise<void> {
    const o = await this.kube.getOrUndefined(CILIUM_V2, 'CiliumIdentity', String(id));
    if (!o || identityObjectLabels(o) !== labels) return;
    try {
      await this.kube.delete(CILIUM_V2, 'CiliumIdentity', String(id));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

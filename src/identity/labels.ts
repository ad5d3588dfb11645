/**
 * Security labels, as Cilium writes them: `source:key=value` (e.g.
 * `k8s:app=echo`, `reserved:host`). A label set's identity is decided by its
 * canonical string: labels sorted by source, then key, joined with ';' —
 * "k8s:app=echo;k8s:io.kubernetes.pod.namespace=default". In etcd the value
 * of an identity key is Cilium's form of the same list, with a ';' after
 * every label ("k8s:app=echo;k8s:io.kubernetes.pod.namespace=default;").
 */
import { TendrilError } from '../util/errors.js';

/** One label. `source` is where it came from: k8s, reserved, cidr, unspec, ... */
export interface Label {
  source: string;
  key: string;
  value: string;
}

/** A label set: sorted, no duplicate source:key. Build with `makeLabels` or `parseLabels`. */
export type Labels = readonly Label[];

/** Pod label keys that say nothing about identity (Cilium's default label filter drops them). */
const IGNORED_K8S_KEYS = [
  /^pod-template-hash$/,
  /^controller-revision-hash$/,
  /^pod-template-generation$/,
  /^statefulset\.kubernetes\.io\/pod-name$/,
  /^batch\.kubernetes\.io\/controller-uid$/,
  /^controller-uid$/,
  /^job-name$/,
  /^batch\.kubernetes\.io\/job-name$/,
];

export const NAMESPACE_LABEL = 'io.kubernetes.pod.namespace';
export const SERVICE_ACCOUNT_LABEL = 'io.cilium.k8s.policy.serviceaccount';
export const CLUSTER_LABEL = 'io.cilium.k8s.policy.cluster';
export const NAMESPACE_LABELS_PREFIX = 'io.cilium.k8s.namespace.labels.';

/** Bad label text or set; code IDENTITY_INVALID_LABELS. */
export class LabelError extends TendrilError {
  constructor(message: string) {
    super('IDENTITY_INVALID_LABELS', message, {
      hint: 'labels are source:key=value, e.g. k8s:app=echo; sources and keys may not contain ";" or "="',
    });
    this.name = 'LabelError';
  }
}

/**
 * Parses one label: `source:key=value`, `source:key` (empty value), or
 * `key=value` (source "unspec").
 * @throws LabelError for an empty key or a ';' anywhere.
 */
export function parseLabel(text: string): Label {
  if (text.includes(';')) throw new LabelError(`label ${JSON.stringify(text)} contains ';'`);
  const eq = text.indexOf('=');
  const head = eq < 0 ? text : text.slice(0, eq);
  const value = eq < 0 ? '' : text.slice(eq + 1);
  const colon = head.indexOf(':');
  const source = colon < 0 ? 'unspec' : head.slice(0, colon);
  const key = colon < 0 ? head : head.slice(colon + 1);
  return makeLabel(source, key, value);
}

/** Builds one label, validated. @throws LabelError */
export function makeLabel(source: string, key: string, value = ''): Label {
  if (!/^[A-Za-z0-9_.-]+$/.test(source))
    throw new LabelError(
      `label source ${JSON.stringify(source)} must be letters, digits, '.', '_' or '-'`,
    );
  if (key.length === 0) throw new LabelError(`label ${source}:${key}=${value}: the key is empty`);
  if (/[;=]/.test(key))
    throw new LabelError(`label key ${JSON.stringify(key)} contains ';' or '='`);
  if (value.includes(';'))
    throw new LabelError(`label value ${JSON.stringify(value)} contains ';'`);
  return { source, key, value };
}

/**
 * Sorts labels into a set. The same source:key twice with different values
 * is an error; exact duplicates collapse.
 * @throws LabelError
 */
export function makeLabels(labels: Iterable<Label>): Labels {
  const byKey = new Map<string, Label>();
  for (const l of labels) {
    const k = `${l.source}:${l.key}`;
    const prev = byKey.get(k);
    if (prev && prev.value !== l.value)
      throw new LabelError(
        `label ${k} given twice, with values ${JSON.stringify(prev.value)} and ${JSON.stringify(l.value)}`,
      );
    byKey.set(k, makeLabel(l.source, l.key, l.value));
  }
  return [...byKey.values()].sort(compareLabels);
}

/**
 * Parses a label list: "a;b;c", with or without a trailing ';' (Cilium's
 * etcd form), or an array of label strings. Empty input is the empty set.
 * @throws LabelError
 */
export function parseLabels(text: string | readonly string[]): Labels {
  const parts = typeof text === 'string' ? text.split(';') : [...text];
  return makeLabels(parts.filter((p) => p.length > 0).map(parseLabel));
}

/** One label as text: "source:key=value" (or "source:key" when the value is empty). */
export function formatLabel(l: Label): string {
  return l.value === '' ? `${l.source}:${l.key}` : `${l.source}:${l.key}=${l.value}`;
}

/** The canonical string of a label set (sorted, ';'-joined, no trailing ';'); equal sets give equal strings. */
export function labelsString(labels: Labels): string {
  return [...labels].sort(compareLabels).map(formatLabel).join(';');
}

/** Cilium's etcd value form: every label followed by ';'. */
export function labelsKVValue(labels: Labels): string {
  return [...labels]
    .sort(compareLabels)
    .map((l) => formatLabel(l) + ';')
    .join('');
}

/** Normalizes any accepted label-list text to the canonical string. @throws LabelError */
export function canonicalLabels(text: string | Labels): string {
  return labelsString(typeof text === 'string' ? parseLabels(text) : makeLabels(text));
}

export interface PodLabelOptions {
  namespace: string;
  /** Labels of the pod's namespace (become io.cilium.k8s.namespace.labels.<k>). */
  namespaceLabels?: Record<string, string>;
  serviceAccount?: string;
  /** Cluster name (io.cilium.k8s.policy.cluster), as Cilium adds it. */
  cluster?: string;
}

/**
 * The identity-relevant labels of a pod, as Cilium derives them: its k8s
 * labels (minus ones that only vary per rollout, like pod-template-hash),
 * the namespace, the namespace's labels, the service account and the cluster.
 * @throws LabelError if a label cannot be represented.
 */
export function podIdentityLabels(
  podLabels: Record<string, string> | undefined,
  options: PodLabelOptions,
): Labels {
  const out: Label[] = [];
  for (const [k, v] of Object.entries(podLabels ?? {})) {
    if (IGNORED_K8S_KEYS.some((re) => re.test(k))) continue;
    out.push(makeLabel('k8s', k, v));
  }
  out.push(makeLabel('k8s', NAMESPACE_LABEL, options.namespace));
  for (const [k, v] of Object.entries(options.namespaceLabels ?? {}))
    out.push(makeLabel('k8s', NAMESPACE_LABELS_PREFIX + k, v));
  if (options.serviceAccount)
    out.push(makeLabel('k8s', SERVICE_ACCOUNT_LABEL, options.serviceAccount));
  if (options.cluster) out.push(makeLabel('k8s', CLUSTER_LABEL, options.cluster));
  return makeLabels(out);
}

/** Does `labels` contain every label of `selector` (same source, key and value)? */
export function labelsContain(labels: Labels, selector: Labels): boolean {
  return selector.every((s) =>
    labels.some((l) => l.source === s.source && l.key === s.key && l.value === s.value),
  );
}

function compareLabels(a: Label, b: Label): number {
  if (a.source !== b.source) return a.source < b.source ? -1 : 1;
  if (a.key !== b.key) return a.key < b.key ? -1 : 1;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

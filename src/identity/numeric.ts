/**
 * Numeric security identities, laid out as Cilium lays them out. STABLE:
 * identities travel between clusters and into BPF maps.
 *
 *   1..255                      reserved identities (host, world, ...), the same in every cluster
 *   (clusterID << 16) | n       cluster-local identities, n in 256..65535, cluster ID 1..255 in bits 16-23
 *
 * So an identity says which cluster allocated it: clusterIdOf(0x0102a3) === 1.
 */
import { TendrilError } from '../util/errors.js';
import { makeLabel, makeLabels, labelsString, type Labels } from './labels.js';

/** Smallest cluster-local index (below it: reserved identities). */
export const MIN_LOCAL_INDEX = 256;
/** Largest cluster-local index. */
export const MAX_LOCAL_INDEX = 65535;
/** Valid cluster IDs. */
export const MIN_CLUSTER_ID = 1;
export const MAX_CLUSTER_ID = 255;
/** The bit position of the cluster ID. */
export const CLUSTER_ID_SHIFT = 16;

/** The reserved identities, as Cilium numbers them. */
export const ReservedIdentity = {
  host: 1,
  world: 2,
  unmanaged: 3,
  health: 4,
  init: 5,
  remoteNode: 6,
  kubeAPIServer: 7,
} as const;

export type ReservedIdentityName = keyof typeof ReservedIdentity;

/** Reserved identity -> its label ("reserved:host", ...). */
const reservedLabelNames: Record<number, string> = {
  1: 'host',
  2: 'world',
  3: 'unmanaged',
  4: 'health',
  5: 'init',
  6: 'remote-node',
  7: 'kube-apiserver',
};

/** A bad cluster ID or identity; code IDENTITY_INVALID. */
export class IdentityError extends TendrilError {
  constructor(code: string, message: string, hint?: string) {
    super(code, message, hint === undefined ? {} : { hint });
    this.name = 'IdentityError';
  }
}

/**
 * Checks a cluster ID (1..255).
 * @throws IdentityError IDENTITY_INVALID_CLUSTER_ID
 */
export function validateClusterId(clusterId: number): number {
  if (!Number.isInteger(clusterId) || clusterId < MIN_CLUSTER_ID || clusterId > MAX_CLUSTER_ID) {
    throw new IdentityError(
      'IDENTITY_INVALID_CLUSTER_ID',
      `cluster ID ${clusterId} is out of range`,
      `a cluster ID is a whole number from ${MIN_CLUSTER_ID} to ${MAX_CLUSTER_ID}, unique in the mesh`,
    );
  }
  return clusterId;
}

/**
 * The identity for local index `n` of cluster `clusterId`.
 * @throws IdentityError for a bad cluster ID or an index outside 256..65535.
 */
export function clusterIdentity(clusterId: number, n: number): number {
  validateClusterId(clusterId);
  if (!Number.isInteger(n) || n < MIN_LOCAL_INDEX || n > MAX_LOCAL_INDEX) {
    throw new IdentityError(
      'IDENTITY_INVALID',
      `identity index ${n} is outside ${MIN_LOCAL_INDEX}..${MAX_LOCAL_INDEX}`,
    );
  }
  return (clusterId << CLUSTER_ID_SHIFT) | n;
}

/** The cluster ID in bits 16-23 (0 for reserved identities). */
export function clusterIdOf(identity: number): number {
  return (identity >>> CLUSTER_ID_SHIFT) & 0xff;
}

/** The local index (low 16 bits). */
export function localIndexOf(identity: number): number {
  return identity & 0xffff;
}

/** True for identities 1..255. */
export function isReservedIdentity(identity: number): boolean {
  return Number.isInteger(identity) && identity >= 1 && identity < MIN_LOCAL_INDEX;
}

/** True if `identity` is a well-formed cluster-local identity (of `clusterId`, when given). */
export function isClusterIdentity(identity: number, clusterId?: number): boolean {
  if (!Number.isInteger(identity) || identity < 0 || identity > 0xffffff) return false;
  const c = clusterIdOf(identity);
  const n = localIndexOf(identity);
  return (
    c >= MIN_CLUSTER_ID && n >= MIN_LOCAL_INDEX && (clusterId === undefined || c === clusterId)
  );
}

/** The label set of a reserved identity ("reserved:host"), or undefined for an unknown number. */
export function reservedIdentityLabels(identity: number): Labels | undefined {
  const name = reservedLabelNames[identity];
  return name ? makeLabels([makeLabel('reserved', name)]) : undefined;
}

/** The reserved identity of a label set that consists of one reserved label, or undefined. */
export function reservedIdentityOf(labels: Labels): number | undefined {
  if (labels.length !== 1 || labels[0]!.source !== 'reserved') return undefined;
  const name = labels[0]!.key;
  for (const [id, n] of Object.entries(reservedLabelNames)) if (n === name) return Number(id);
  return undefined;
}

/** Human form: "host (1)", "65792 (cluster 1, index 256)". */
export function describeIdentity(identity: number): string {
  const r = reservedIdentityLabels(identity);
  if (r) return `${labelsString(r).slice('reserved:'.length)} (${identity})`;
  if (isClusterIdentity(identity))
    return `${identity} (cluster ${clusterIdOf(identity)}, index ${localIndexOf(identity)})`;
  return String(identity);
}

/**
 * Numeric security identities, laid out as Cilium lays them out. STABLE:
 * identities travel between clusters and into BPF maps. Identities have 24
 * bits; the cluster ID takes the top ones, as many as `max-connected-clusters`
 * needs (Cilium's `--max-connected-clusters`, 255 or 511):
 *
 *   1..255                      reserved identities (host, world, ...), the same in every cluster
 *   255 (default):  (clusterID << 16) | n   cluster ID 1..255 in bits 16-23, n in 256..65535
 *   511:            (clusterID << 15) | n   cluster ID 1..511 in bits 15-23, n in 256..32767
 *
 * So an identity says which cluster allocated it: clusterIdOf(0x0102a3) === 1.
 * The layout is process-wide (every cluster in a mesh must use the same one):
 * daemons call {@link setMaxConnectedClusters} once at start from their config.
 */
import { TendrilError } from '../util/errors.js';
import { makeLabel, makeLabels, labelsString, type Labels } from './labels.js';

/** Smallest cluster-local index (below it: reserved identities). */
export const MIN_LOCAL_INDEX = 256;
/** Largest cluster-local index in the default layout (255 clusters). */
export const MAX_LOCAL_INDEX = 65535;
/** Valid cluster IDs (MAX_CLUSTER_ID: of the default layout). */
export const MIN_CLUSTER_ID = 1;
export const MAX_CLUSTER_ID = 255;
/** The bit position of the cluster ID in the default layout. */
export const CLUSTER_ID_SHIFT = 16;
/** The bits of an identity. */
export const IDENTITY_BITS = 24;
/** The values `max-connected-clusters` accepts (Cilium's). */
export const MAX_CONNECTED_CLUSTERS_VALUES = [255, 511] as const;
export type MaxConnectedClusters = (typeof MAX_CONNECTED_CLUSTERS_VALUES)[number];

/** Where the cluster ID sits in an identity, for one `max-connected-clusters`. */
export interface IdentityLayout {
  maxConnectedClusters: MaxConnectedClusters;
  /** Largest cluster ID (= maxConnectedClusters). */
  maxClusterId: number;
  /** Bits of the cluster ID (8 or 9). */
  clusterIdBits: number;
  /** Bit position of the cluster ID (16 or 15). */
  clusterIdShift: number;
  /** Largest cluster-local index (65535 or 32767). */
  maxLocalIndex: number;
}

/**
 * The identity layout for a `max-connected-clusters` value.
 * @throws IdentityError IDENTITY_INVALID_MAX_CONNECTED_CLUSTERS for anything but 255 or 511.
 */
export function identityLayout(maxConnectedClusters: number): IdentityLayout {
  if (!(MAX_CONNECTED_CLUSTERS_VALUES as readonly number[]).includes(maxConnectedClusters)) {
    throw new IdentityError(
      'IDENTITY_INVALID_MAX_CONNECTED_CLUSTERS',
      `max-connected-clusters ${maxConnectedClusters} is not supported`,
      'use 255 (the default) or 511, the same in every cluster of the mesh',
    );
  }
  const clusterIdBits = maxConnectedClusters === 511 ? 9 : 8;
  const clusterIdShift = IDENTITY_BITS - clusterIdBits;
  return {
    maxConnectedClusters: maxConnectedClusters as MaxConnectedClusters,
    maxClusterId: maxConnectedClusters,
    clusterIdBits,
    clusterIdShift,
    maxLocalIndex: (1 << clusterIdShift) - 1,
  };
}

let current: IdentityLayout = identityLayout(255);

/**
 * Sets this process's identity layout (a daemon, once, from its
 * `max-connected-clusters` config). Returns the layout.
 * @throws IdentityError IDENTITY_INVALID_MAX_CONNECTED_CLUSTERS
 */
export function setMaxConnectedClusters(maxConnectedClusters: number): IdentityLayout {
  current = identityLayout(maxConnectedClusters);
  return current;
}

/** This process's identity layout (255 clusters unless set). */
export function currentIdentityLayout(): IdentityLayout {
  return current;
}

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
 * Checks a cluster ID (1..255, or 1..511 with max-connected-clusters=511).
 * @throws IdentityError IDENTITY_INVALID_CLUSTER_ID
 */
export function validateClusterId(clusterId: number, layout: IdentityLayout = current): number {
  const max = layout.maxClusterId;
  if (!Number.isInteger(clusterId) || clusterId < MIN_CLUSTER_ID || clusterId > max) {
    throw new IdentityError(
      'IDENTITY_INVALID_CLUSTER_ID',
      `cluster ID ${clusterId} is out of range`,
      `a cluster ID is a whole number from ${MIN_CLUSTER_ID} to ${max}, unique in the mesh` +
        (max === 255 && clusterId > 255 && clusterId <= 511
          ? ' (IDs up to 511 need max-connected-clusters=511 in every cluster)'
          : ''),
    );
  }
  return clusterId;
}

/**
 * The identity for local index `n` of cluster `clusterId`.
 * @throws IdentityError for a bad cluster ID or an index outside 256..maxLocalIndex.
 */
export function clusterIdentity(
  clusterId: number,
  n: number,
  layout: IdentityLayout = current,
): number {
  validateClusterId(clusterId, layout);
  if (!Number.isInteger(n) || n < MIN_LOCAL_INDEX || n > layout.maxLocalIndex) {
    throw new IdentityError(
      'IDENTITY_INVALID',
      `identity index ${n} is outside ${MIN_LOCAL_INDEX}..${layout.maxLocalIndex}`,
    );
  }
  return ((clusterId << layout.clusterIdShift) | n) >>> 0;
}

/** The cluster ID (bits 16-23, or 15-23 with 511 clusters; 0 for reserved identities). */
export function clusterIdOf(identity: number, layout: IdentityLayout = current): number {
  return (identity >>> layout.clusterIdShift) & layout.maxClusterId;
}

/** The local index (the bits below the cluster ID). */
export function localIndexOf(identity: number, layout: IdentityLayout = current): number {
  return identity & layout.maxLocalIndex;
}

/** True for identities 1..255. */
export function isReservedIdentity(identity: number): boolean {
  return Number.isInteger(identity) && identity >= 1 && identity < MIN_LOCAL_INDEX;
}

/** True if `identity` is a well-formed cluster-local identity (of `clusterId`, when given). */
export function isClusterIdentity(
  identity: number,
  clusterId?: number,
  layout: IdentityLayout = current,
): boolean {
  if (!Number.isInteger(identity) || identity < 0 || identity > 0xffffff) return false;
  const c = clusterIdOf(identity, layout);
  const n = localIndexOf(identity, layout);
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

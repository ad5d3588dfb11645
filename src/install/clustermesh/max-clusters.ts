/**
 * The mesh-wide `max-connected-clusters` setting (255 or 511, Cilium's
 * `--max-connected-clusters`): it decides how many bits of an identity carry
 * the cluster ID, so every cluster of a mesh must use the same value.
 */
import { DEFAULT_MAX_CONNECTED_CLUSTERS } from '../../clustermesh/keys.js';
import type { MeshConfig } from '../../clustermesh/mesh-files.js';
import type { InstallState } from '../install-state.js';

/** What the check needs of one side of a connect. */
export interface MaxClustersSide {
  context: string;
  install: Pick<InstallState, 'clusterName' | 'settings'>;
  mesh?: Pick<MeshConfig, 'maxConnectedClusters'> | undefined;
}

/** A cluster's max-connected-clusters: its mesh config's, else its install setting's, else 255. */
export function maxConnectedClustersOf(side: MaxClustersSide): number {
  return (
    side.mesh?.maxConnectedClusters ??
    (side.install.settings?.['max-connected-clusters'] !== undefined
      ? Number(side.install.settings['max-connected-clusters'])
      : DEFAULT_MAX_CONNECTED_CLUSTERS)
  );
}

/**
 * Why two clusters may not be meshed because their max-connected-clusters
 * differ (naming both clusters and values, and the fix), or undefined when they agree.
 */
export function maxConnectedClustersMismatch(
  a: MaxClustersSide,
  b: MaxClustersSide,
): { message: string; hint: string } | undefined {
  const ma = maxConnectedClustersOf(a);
  const mb = maxConnectedClustersOf(b);
  if (ma === mb) return undefined;
  const [lo, hi] = ma < mb ? [a, b] : [b, a];
  return {
    message: `cannot connect ${a.context} and ${b.context}: max-connected-clusters differs (cluster "${a.install.clusterName}" has ${ma}, cluster "${b.install.clusterName}" has ${mb}); identities carry the cluster ID in a different number of bits, so every cluster of a mesh must use the same value`,
    hint: `reinstall cluster "${lo.install.clusterName}" with \`tendril install --context ${lo.context} --set max-connected-clusters=${maxConnectedClustersOf(hi)}\` and re-enable its mesh (or use ${maxConnectedClustersOf(lo)} in "${hi.install.clusterName}")`,
  };
}

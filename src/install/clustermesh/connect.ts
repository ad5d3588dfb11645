/**
 * `clustermesh connect` / `disconnect` on lab clusters: the checks that make
 * a mesh valid, enabling a side that is not enabled yet (the seed enables
 * only cluster1), and the exchange of endpoints and client certificates
 * (setup.ts connectDirection). Connection modes:
 *
 *   bidirectional (default)  source <-> each destination
 *   unicast                  source  -> each destination (the source reads them; they do not read it)
 *   mesh                     every pair of {source, destinations}, both ways
 */
import { TendrilError } from '../../util/errors.js';
import { resolveCluster, type ResolvedCluster } from '../target.js';
import { cidrsOverlap, parseCIDR } from '../../util/ipv4.js';
import { maxConnectedClustersMismatch } from './max-clusters.js';
import { type ServiceType } from '../../clustermesh/mesh-files.js';
import { connectResolved, disconnectDirection } from './setup.js';
import { enableClusterMesh, requireInstall, sayWaiting } from './enable.js';
import { withClusterLocks } from '../install-lock.js';
import type { InstallState } from '../install-state.js';

export type ConnectionMode = 'bidirectional' | 'unicast' | 'mesh';

export interface ConnectOptions {
  context?: string;
  destinationContexts: string[];
  mode?: ConnectionMode;
  /** Accepted for Cilium's CLI compatibility; every cluster has its own CA and connect exchanges them. */
  allowMismatchingCA?: boolean;
  /** Service type for a side that connect has to enable (default NodePort). */
  serviceType?: ServiceType;
  say?: (line: string) => void;
  /** Passed to enable for sides it enables (default true). */
  wait?: boolean;
}

/** One side of a connection: resolved once (context, lab cluster, install, mesh, its files). */
export type Side = Pick<ResolvedCluster, 'context' | 'cluster' | 'mesh' | 'meshFiles'> & {
  install: InstallState;
};

/** Raised when two clusters cannot be meshed; code CLUSTERMESH_CONNECT_REFUSED. */
export class ConnectRefusedError extends TendrilError {
  constructor(message: string, hint: string) {
    super('CLUSTERMESH_CONNECT_REFUSED', message, { hint });
    this.name = 'ConnectRefusedError';
  }
}

/** The ordered pairs (from reads to) a mode connects. */
export function connectionPairs<T>(source: T, destinations: T[], mode: ConnectionMode): [T, T][] {
  const out: [T, T][] = [];
  if (mode === 'mesh') {
    const all = [source, ...destinations];
    for (const a of all) for (const b of all) if (a !== b) out.push([a, b]);
    return out;
  }
  for (const d of destinations) {
    out.push([source, d]);
    if (mode === 'bidirectional') out.push([d, source]);
  }
  return out;
}

/**
 * Checks that two clusters may be meshed. @throws ConnectRefusedError with the reason.
 * Every cluster has its own CA and connect hands each side the other's CA
 * certificate, so different CAs are the normal case: `allowMismatchingCA`
 * (Cilium's flag) is accepted and changes nothing.
 */
export function checkPair(a: Side, b: Side, _allowMismatchingCA = false): void {
  if (a.cluster.name === b.cluster.name) {
    throw new ConnectRefusedError(
      `${a.context} and ${b.context} are the same cluster`,
      'pass the other cluster with --destination-context',
    );
  }
  if (a.install.clusterName === b.install.clusterName) {
    throw new ConnectRefusedError(
      `cannot connect ${a.context} and ${b.context}: both are named "${a.install.clusterName}"; cluster names must be unique in a mesh`,
      `reinstall one of them with another name: \`tendril install --context ${b.context} --cluster-name NAME --cluster-id N\``,
    );
  }
  if (a.install.clusterId === b.install.clusterId) {
    throw new ConnectRefusedError(
      `cannot connect ${a.context} and ${b.context}: both have cluster ID ${a.install.clusterId}; cluster IDs must be unique in a mesh (identities carry them)`,
      `reinstall one of them with another ID: \`tendril install --context ${b.context} --cluster-name ${b.install.clusterName} --cluster-id N\``,
    );
  }
  const pa = parseCIDR(a.cluster.podCIDR, 'pod CIDR');
  const pb = parseCIDR(b.cluster.podCIDR, 'pod CIDR');
  if (cidrsOverlap(pa, pb)) {
    throw new ConnectRefusedError(
      `cannot connect ${a.context} and ${b.context}: their pod CIDRs overlap (${a.cluster.podCIDR} and ${b.cluster.podCIDR}); pods of one cluster would be unreachable from the other`,
      'recreate one of the clusters with a distinct pod CIDR (`tendril lab create NAME --pod-cidr CIDR`)',
    );
  }
  const clusters = maxConnectedClustersMismatch(a, b);
  if (clusters) throw new ConnectRefusedError(clusters.message, clusters.hint);
}

function resolveSide(context: string | undefined): Side {
  const r = resolveCluster(context);
  r.target.close(); // connect works on the mesh files; the API client is not needed
  return { ...r, install: requireInstall(r.cluster, r.context) };
}

/**
 * Connects clusters. Every pair is checked before anything changes; sides
 * whose mesh is not enabled are enabled first (and the user is told).
 * @throws ConnectRefusedError, TendrilError (not installed, not a lab cluster, enable failed)
 */
export async function connectClusters(
  o: ConnectOptions,
): Promise<{ pairs: [string, string][]; enabled: string[] }> {
  const say = o.say ?? (() => {});
  const mode = o.mode ?? 'bidirectional';
  if (!['bidirectional', 'unicast', 'mesh'].includes(mode)) {
    throw new TendrilError('CLUSTERMESH_BAD_MODE', `connection mode "${mode}" is not known`, {
      hint: 'use bidirectional, unicast or mesh',
    });
  }
  if (o.destinationContexts.length === 0) {
    throw new TendrilError('CLUSTERMESH_NO_DESTINATION', 'no destination given', {
      hint: 'pass --destination-context CONTEXT[,CONTEXT...]',
    });
  }
  // each side is resolved once; the values carry their paths, install and mesh down
  const labs = [o.context, ...o.destinationContexts].map((ctx) => resolveSide(ctx).cluster.name);
  return withClusterLocks(labs, 'clustermesh connect', () => connectLocked(o, mode, say), {
    onWait: sayWaiting(say),
  });
}

async function connectLocked(
  o: ConnectOptions,
  mode: ConnectionMode,
  say: (line: string) => void,
): Promise<{ pairs: [string, string][]; enabled: string[] }> {
  // resolved under the lock: what another command changed meanwhile is seen
  let source = resolveSide(o.context);
  let dests = o.destinationContexts.map((d) => resolveSide(d));
  let pairs = connectionPairs(source, dests, mode);
  for (const [a, b] of pairs) checkPair(a, b, o.allowMismatchingCA === true);
  const enabled: string[] = [];
  for (const side of [source, ...dests]) {
    if (side.mesh) continue;
    say(
      `ℹ️  Cluster mesh is not enabled on ${side.context} yet: enabling it (service type ${o.serviceType ?? 'NodePort'})`,
    );
    await enableClusterMesh({
      context: side.context,
      serviceType: o.serviceType,
      say,
      wait: o.wait,
    });
    enabled.push(side.context);
  }
  if (enabled.length > 0) {
    // enabling wrote those sides' mesh: resolve them again, once
    const again = (s: Side) => (enabled.includes(s.context) ? resolveSide(s.context) : s);
    source = again(source);
    dests = dests.map(again);
    pairs = connectionPairs(source, dests, mode);
  }
  for (const [a, b] of pairs) {
    await connectResolved(a, b);
    say(
      `🔑 ${a.install.clusterName} (${a.context}) can now read ${b.install.clusterName} at ${b.mesh!.accessEndpoints.join(', ')}`,
    );
  }
  say(
    `✅ Connected ${source.install.clusterName} with ${dests.map((d) => d.install.clusterName).join(', ')} (${mode}); check with \`tendril clustermesh status --context ${source.context} --wait\``,
  );
  return { pairs: pairs.map(([a, b]) => [a.context, b.context]), enabled };
}

/** Disconnects clusters (the same pairs connect would make). Absent connections are fine. */
export async function disconnectClusters(
  o: Omit<ConnectOptions, 'allowMismatchingCA' | 'serviceType'>,
): Promise<{ pairs: [string, string][] }> {
  const say = o.say ?? (() => {});
  const mode = o.mode ?? 'bidirectional';
  const src = resolveCluster(o.context);
  const dests = o.destinationContexts.map((d) => resolveCluster(d));
  for (const r of [src, ...dests]) r.target.close();
  const pairs = connectionPairs(src, dests, mode);
  return withClusterLocks(
    [src, ...dests].map((r) => r.cluster.name),
    'clustermesh disconnect',
    () => disconnectPairs(pairs, say),
    { onWait: sayWaiting(say) },
  );
}

async function disconnectPairs(
  pairs: [ResolvedCluster, ResolvedCluster][],
  say: (line: string) => void,
): Promise<{ pairs: [string, string][] }> {
  for (const [a, b] of pairs) {
    const { revoked } = await disconnectDirection(a.cluster.name, b.cluster.name);
    say(
      `🔌 ${a.context} no longer reads ${b.context}${revoked ? ` (its etcd user on ${b.context} is deleted: the certificate opens nothing)` : ` (${b.context}'s clustermesh-apiserver is not answering: it deletes the etcd user when it starts)`}`,
    );
  }
  return { pairs: pairs.map(([a, b]) => [a.context, b.context]) };
}

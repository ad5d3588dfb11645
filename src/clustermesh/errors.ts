/**
 * Why talking to a cluster's etcd failed, in the words `clustermesh status`
 * prints: certificate rejected, endpoint unreachable, permission denied, ...
 * Every mesh component classifies errors through `classifyMeshError` so the
 * status and the logs agree.
 */
import { TendrilError } from '../util/errors.js';
import { classifyTLSError } from './certs.js';

/** A reason a remote cluster is not (fully) usable. */
export type MeshErrorReason =
  | 'certificate-rejected'
  | 'endpoint-unreachable'
  | 'permission-denied'
  | 'invalid-cluster-config'
  | 'cluster-id-conflict'
  | 'cluster-id-changed'
  | 'not-synced'
  | 'error';

/** A mesh error with a reason. code is CLUSTERMESH_<REASON>. */
export class MeshError extends TendrilError {
  readonly reason: MeshErrorReason;
  constructor(
    reason: MeshErrorReason,
    message: string,
    options: { hint?: string; cause?: unknown } = {},
  ) {
    super(`CLUSTERMESH_${reason.toUpperCase().replace(/-/g, '_')}`, message, options);
    this.name = 'MeshError';
    this.reason = reason;
  }
}

/** Maps any error (KVStoreError, TLS, socket errors) to a reason. */
export function classifyMeshError(err: unknown): MeshErrorReason {
  if (err instanceof MeshError) return err.reason;
  const code = (err as { code?: unknown })?.code;
  if (code === 'KVSTORE_TLS' || classifyTLSError(err) !== undefined) return 'certificate-rejected';
  if (code === 'KVSTORE_PERMISSION_DENIED' || code === 'KVSTORE_AUTH_FAILED')
    return 'permission-denied';
  if (code === 'KVSTORE_UNREACHABLE') return 'endpoint-unreachable';
  const text = describeChain(err);
  if (
    /ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|deadline|timed? ?out|UNAVAILABLE|No connection established|unreachable/i.test(
      text,
    )
  ) {
    return 'endpoint-unreachable';
  }
  if (
    /permission denied|PERMISSION_DENIED|authentication failed|invalid auth token|user name not found/i.test(
      text,
    )
  )
    return 'permission-denied';
  return 'error';
}

/** What to tell the user to do about a reason. */
export function hintForReason(reason: MeshErrorReason, remote: string): string {
  switch (reason) {
    case 'certificate-rejected':
      return `the TLS handshake with ${remote}'s clustermesh-apiserver failed: re-run \`tendril clustermesh connect\` to re-issue the client certificate (signed by 's own CA)`;
    case 'endpoint-unreachable':
      return `${remote}'s clustermesh-apiserver is not reachable: check \`tendril clustermesh status --context <${remote}'s context>\` and that its access endpoint is reachable from this cluster's nodes`;
    case 'permission-denied':
      return `${remote}'s etcd refused this cluster's user: re-run \`tendril clustermesh connect\` so ${remote} admits this cluster`;
    case 'invalid-cluster-config':
      return `${remote} publishes no valid cluster config yet: check its clustermesh-apiserver log (\`tendril lab logs <lab cluster> clustermesh-apiserver\`) and \`tendril clustermesh status\` there`;
    case 'cluster-id-conflict':
      return `give ${remote} a cluster ID not used by any other cluster of the mesh (\`tendril install --cluster-id N\`), then connect again`;
    case 'cluster-id-changed':
      return `${remote} was reinstalled with another cluster ID; its old state was removed. Run \`tendril clustermesh connect\` again to confirm the new ID`;
    case 'not-synced':
      return `${remote} has not finished its initial sync; wait with \`tendril clustermesh status --wait\``;
    default:
      return `see the clustermesh-apiserver log of this cluster`;
  }
}

/** All messages of an error's cause chain, joined (for classification). */
export function describeChain(err: unknown): string {
  const parts: string[] = [];
  for (
    let e: unknown = err, i = 0;
    e !== undefined && e !== null && i < 6;
    e = (e as { cause?: unknown }).cause, i++
  ) {
    parts.push(
      e instanceof Error ? `${(e as { code?: unknown }).code ?? ''} ${e.message}` : String(e),
    );
  }
  return parts.join(' <- ');
}

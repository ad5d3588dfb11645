/**
 * Errors raised by the KVStore backends. Every one is a TendrilError with a
 * stable code, so callers branch on `err.code`, never on message text.
 *
 *   KVSTORE_UNREACHABLE        no etcd answered at the endpoint(s)
 *   KVSTORE_TLS                the TLS handshake failed (certificate rejected, wrong CA)
 *   KVSTORE_PERMISSION_DENIED  etcd auth: the user/role may not do this
 *   KVSTORE_AUTH_FAILED        etcd auth: wrong user name or password
 *   KVSTORE_COMPACTED          a watch asked for revisions already compacted away
 *   KVSTORE_LEASE_NOT_FOUND    the lease expired or was revoked
 *   KVSTORE_CLOSED             the store was closed
 *   KVSTORE_INVALID            bad argument (empty key, bad TTL, foreign lease)
 *   KVSTORE_ERROR              anything else the server said
 */
import { TendrilError } from '../util/errors.js';

export type KVStoreErrorCode =
  | 'KVSTORE_UNREACHABLE'
  | 'KVSTORE_TLS'
  | 'KVSTORE_PERMISSION_DENIED'
  | 'KVSTORE_AUTH_FAILED'
  | 'KVSTORE_COMPACTED'
  | 'KVSTORE_LEASE_NOT_FOUND'
  | 'KVSTORE_CLOSED'
  | 'KVSTORE_INVALID'
  | 'KVSTORE_ERROR';

/** An error from a KVStore backend. `code` is one of KVStoreErrorCode. */
export class KVStoreError extends TendrilError {
  declare readonly code: KVStoreErrorCode;
  /** For KVSTORE_COMPACTED: the oldest revision still available. */
  readonly compactRevision: number | undefined;

  constructor(
    code: KVStoreErrorCode,
    message: string,
    options: { hint?: string; cause?: unknown; compactRevision?: number } = {},
  ) {
    super(code, message, options);
    this.name = 'KVStoreError';
    this.compactRevision = options.compactRevision;
  }
}

/** True if `err` is a KVStoreError with this code. */
export function isKVStoreError(err: unknown, code?: KVStoreErrorCode): err is KVStoreError {
  return err instanceof KVStoreError && (code === undefined || err.code === code);
}

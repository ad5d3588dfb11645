/**
 * Tendril's error base class. Every error the project raises on purpose is a
 * TendrilError (or a subclass) with a stable SCREAMING_SNAKE `code` (prefixed
 * by its area where that helps: `K8S_NOT_FOUND`, `INSTALL_LOCKED`), a message
 * that says what was being done, an optional `hint` (the next step for the
 * user) and a `cause`.
 */
export class TendrilError extends Error {
  readonly code: string;
  readonly hint: string | undefined;

  constructor(code: string, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TendrilError';
    this.code = code;
    this.hint = options.hint;
  }
}

/** Formats an error for a person: message, then the hint on its own line. */
export function describeError(err: unknown): string {
  if (err instanceof TendrilError) {
    return err.hint ? `${err.message}\n  hint: ${err.hint}` : err.message;
  }
  if (err instanceof Error) return err.message;
  return String(err);
}

/** "NotFound" -> "NOT_FOUND", "InvalidCIDR" -> "INVALID_CIDR". */
export function screamingSnake(camel: string): string {
  return camel.replace(/(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])/g, '_').toUpperCase();
}

function httpCodeOf(err: unknown): number | undefined {
  const c = (err as { httpCode?: unknown } | null)?.httpCode;
  return typeof c === 'number' ? c : undefined;
}

function codeOf(err: unknown): string | undefined {
  return err instanceof TendrilError ? err.code : undefined;
}

/** True for a Kubernetes "not found" answer (HTTP 404, code K8S_NOT_FOUND). */
export function isNotFound(err: unknown): boolean {
  return httpCodeOf(err) === 404 || codeOf(err) === 'K8S_NOT_FOUND';
}

/**
 * True for a Kubernetes conflict answer (HTTP 409: a stale resourceVersion,
 * K8S_CONFLICT, or a create of an existing object, K8S_ALREADY_EXISTS).
 */
export function isConflict(err: unknown): boolean {
  const c = codeOf(err);
  return httpCodeOf(err) === 409 || c === 'K8S_CONFLICT' || c === 'K8S_ALREADY_EXISTS';
}

/** True for HTTP 401: the credential is missing, expired or wrong (K8S_UNAUTHORIZED). */
export function isUnauthorized(err: unknown): boolean {
  return httpCodeOf(err) === 401 || codeOf(err) === 'K8S_UNAUTHORIZED';
}

/** True for HTTP 403: the identity may not do this (K8S_FORBIDDEN). */
export function isForbidden(err: unknown): boolean {
  return httpCodeOf(err) === 403 || codeOf(err) === 'K8S_FORBIDDEN';
}

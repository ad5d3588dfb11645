/**
 * Kubernetes `Status` objects and the error that carries one. The API server
 * answers every failure with a Status (kind Status, apiVersion v1) and the HTTP
 * code Kubernetes uses for that reason; the client turns such answers back into
 * an ApiError, so callers can test `err.reason === 'NotFound'` the same way on
 * both sides.
 */
import { TendrilError, screamingSnake } from '../util/errors.js';

/** Reasons used by Kubernetes (metav1.StatusReason) that Tendril produces. */
export type StatusReason =
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Invalid'
  | 'BadRequest'
  | 'MethodNotAllowed'
  | 'NotAcceptable'
  | 'UnsupportedMediaType'
  | 'RequestEntityTooLarge'
  | 'Expired'
  | 'Gone'
  | 'InternalError'
  | 'ServiceUnavailable'
  | 'Timeout'
  | 'Forbidden'
  | 'Unauthorized'
  | 'RequestEntityTooLarge'
  | 'TooManyRequests'
  | 'Unknown';

/** One field error inside a Status (metav1.StatusCause). */
export interface StatusCause {
  reason: string;
  message: string;
  field?: string;
}

/** The Kubernetes Status object. */
export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, unknown>;
  status: 'Success' | 'Failure';
  message: string;
  reason?: StatusReason;
  details?: { name?: string; group?: string; kind?: string; uid?: string; causes?: StatusCause[] };
  code: number;
}

/**
 * An error that is (or came from) a Kubernetes Status. `code` (TendrilError's
 * stable code) is `K8S_<REASON>` (K8S_NOT_FOUND, K8S_CONFLICT, ...); `httpCode` is the HTTP status.
 */
export class ApiError extends TendrilError {
  readonly httpCode: number;
  readonly reason: StatusReason;
  readonly status: Status;

  constructor(status: Status, options: { hint?: string; cause?: unknown } = {}) {
    super(`K8S_${screamingSnake(status.reason ?? 'Unknown')}`, status.message, options);
    this.name = 'ApiError';
    this.httpCode = status.code;
    this.reason = status.reason ?? 'Unknown';
    this.status = status;
  }
}

/** Builds a failure Status. */
export function failure(
  code: number,
  reason: StatusReason,
  message: string,
  details?: Status['details'],
): Status {
  const s: Status = {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    code,
  };
  if (details) s.details = details;
  return s;
}

/** Builds a success Status (e.g. the answer to a delete of a kind that returns no object). */
export function success(details?: Status['details']): Status {
  const s: Status = {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Success',
    message: '',
    code: 200,
  };
  if (details) s.details = details;
  return s;
}

/** What the error helpers need to name the object: `kind` is the resource plural with its group ("deployments.apps"). */
export interface QualifiedResource {
  plural: string;
  group: string;
}

function qualified(r: QualifiedResource): string {
  return r.group ? `${r.plural}.${r.group}` : r.plural;
}

/** 404: `pods "x" not found`. */
export function notFound(r: QualifiedResource, name: string): ApiError {
  return new ApiError(
    failure(404, 'NotFound', `${qualified(r)} "${name}" not found`, {
      name,
      group: r.group,
      kind: r.plural,
    }),
  );
}

/** 409: `pods "x" already exists`. */
export function alreadyExists(r: QualifiedResource, name: string): ApiError {
  return new ApiError(
    failure(409, 'AlreadyExists', `${qualified(r)} "${name}" already exists`, {
      name,
      group: r.group,
      kind: r.plural,
    }),
  );
}

/** 409 Conflict for a stale resourceVersion, with Kubernetes' wording. */
export function conflict(r: QualifiedResource, name: string, why: string): ApiError {
  return new ApiError(
    failure(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(r)} "${name}": ${why}`, {
      name,
      group: r.group,
      kind: r.plural,
    }),
  );
}

/** 400 BadRequest. */
export function badRequest(message: string): ApiError {
  return new ApiError(failure(400, 'BadRequest', message));
}

/** 410 Gone with reason Expired, as a watch from a compacted resourceVersion gets. */
export function expired(message: string): ApiError {
  return new ApiError(failure(410, 'Expired', message));
}

/** 500 InternalError. */
export function internalError(message: string, cause?: unknown): ApiError {
  return new ApiError(failure(500, 'InternalError', message), { cause });
}

/** A field error, as field.ErrorList entries. */
export interface FieldError {
  /** `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`, `FieldValueDuplicate`, `FieldValueForbidden`. */
  type:
    | 'FieldValueInvalid'
    | 'FieldValueRequired'
    | 'FieldValueNotSupported'
    | 'FieldValueDuplicate'
    | 'FieldValueForbidden';
  field: string;
  /** The offending value (omitted for Required). */
  value?: unknown;
  detail: string;
}

/** Renders one field error as Kubernetes does: `spec.ports[0].port: Invalid value: 0: must be ...`. */
export function formatFieldError(e: FieldError): string {
  switch (e.type) {
    case 'FieldValueRequired':
      return `${e.field}: Required value${e.detail ? `: ${e.detail}` : ''}`;
    case 'FieldValueNotSupported':
      return `${e.field}: Unsupported value: ${JSON.stringify(e.value)}${e.detail ? `: ${e.detail}` : ''}`;
    case 'FieldValueDuplicate':
      return `${e.field}: Duplicate value: ${JSON.stringify(e.value)}`;
    case 'FieldValueForbidden':
      return `${e.field}: Forbidden: ${e.detail}`;
    default:
      return `${e.field}: Invalid value: ${formatValue(e.value)}: ${e.detail}`;
  }
}

function formatValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === undefined) return 'null';
  if (typeof v === 'object' && v !== null) return JSON.stringify(v);
  return String(v);
}

/**
 * 422 Invalid: `Service "x" is invalid: spec.ports[0].port: Invalid value: 0: ...`
 * (several errors are joined as `[a, b]`, as Kubernetes does).
 */
export function invalid(kind: string, group: string, name: string, errors: FieldError[]): ApiError {
  const msgs = errors.map(formatFieldError);
  const joined = msgs.length === 1 ? msgs[0]! : `[${msgs.join(', ')}]`;
  const kindQ = group ? `${kind}.${group}` : kind;
  return new ApiError(
    failure(422, 'Invalid', `${kindQ} "${name}" is invalid: ${joined}`, {
      name,
      group,
      kind,
      causes: errors.map((e) => ({
        reason: e.type,
        message: formatFieldError(e).slice(e.field.length + 2),
        field: e.field,
      })),
    }),
  );
}

/** True if `x` looks like a Kubernetes Status object. */
export function isStatus(x: unknown): x is Status {
  return typeof x === 'object' && x !== null && (x as { kind?: unknown }).kind === 'Status';
}

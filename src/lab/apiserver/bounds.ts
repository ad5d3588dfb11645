/**
 * Limits of the lab API server on what clients send: query parameters,
 * selector lengths, request body size, watches per client. Each check throws
 * a 4xx ApiError that names the parameter and the bound, so no client input
 * reaches the handlers in a shape that could end in a 5xx.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError, badRequest, failure } from '../../k8s/status.js';

/**
 * Longest labelSelector or fieldSelector accepted, characters (the whole
 * request head is limited to 16 KiB by Node's http server, which answers 431).
 */
export const MAX_SELECTOR_LENGTH = 8 * 1024;

/** Longest watch timeout accepted (timeoutSeconds), seconds: one day. */
export const MAX_TIMEOUT_SECONDS = 86_400;

/** Integer query parameters and their inclusive bounds. */
const INTEGER_PARAMS: Record<string, { min: number; max: number }> = {
  limit: { min: 0, max: 2 ** 31 - 1 },
  timeoutSeconds: { min: 0, max: MAX_TIMEOUT_SECONDS },
  gracePeriodSeconds: { min: 0, max: 2 ** 31 - 1 },
  resourceVersion: { min: 0, max: Number.MAX_SAFE_INTEGER },
};

/**
 * Parses a decimal integer query value inside [min, max].
 * @throws ApiError 400 naming the parameter and the bound.
 */
export function integerParam(name: string, text: string, min: number, max: number): number {
  if (!/^\d{1,16}$/.test(text)) {
    throw badRequest(
      `invalid value for ${name}: "${text.slice(0, 64)}": must be a whole number from ${min} to ${max}`,
    );
  }
  const n = Number(text);
  if (n < min || n > max)
    throw badRequest(`invalid value for ${name}: ${n}: must be from ${min} to ${max}`);
  return n;
}

/**
 * Validates every bounded query parameter of a request (numbers, selector lengths).
 * `resourceVersion` may be empty (any version).
 * @throws ApiError 400 naming the parameter.
 */
export function checkQuery(q: URLSearchParams): void {
  for (const [name, { min, max }] of Object.entries(INTEGER_PARAMS)) {
    for (const v of q.getAll(name)) {
      if (name === 'resourceVersion' && v === '') continue;
      integerParam(name, v, min, max);
    }
  }
  for (const name of ['labelSelector', 'fieldSelector']) {
    for (const v of q.getAll(name)) {
      if (v.length > MAX_SELECTOR_LENGTH)
        throw badRequest(
          `${name} is longer than ${MAX_SELECTOR_LENGTH} characters (${v.length}): select by fewer labels or fields`,
        );
    }
  }
}

/** Decodes one URL path segment. @throws ApiError 400 for a malformed escape. */
export function decodeSegment(seg: string): string {
  try {
    return decodeURIComponent(seg);
  } catch {
    throw badRequest(`malformed URL path segment "${seg.slice(0, 64)}": bad %-escape`);
  }
}

/** 413 for a body over `limit` bytes, as Kubernetes answers. */
export function tooLarge(limit: number): ApiError {
  return new ApiError(
    failure(413, 'RequestEntityTooLarge', `request entity too large: limit is ${limit} bytes`),
  );
}

/**
 * Refuses a request whose declared Content-Length is over the limit, before
 * any of the body is read.
 * @throws ApiError 413.
 */
export function checkDeclaredLength(req: IncomingMessage, limit: number): void {
  const len = req.headers['content-length'];
  if (len !== undefined && Number(len) > limit) throw tooLarge(limit);
}

/** Counts open watches per client address and refuses those over the cap. */
export class WatchLimiter {
  private readonly open = new Map<string, number>();

  constructor(private readonly maxPerClient: number) {}

  /**
   * Takes a watch slot for the client of `req`; returns its release function.
   * @throws ApiError 429 TooManyRequests when the client holds the maximum.
   */
  acquire(req: IncomingMessage): () => void {
    const client = req.socket.remoteAddress ?? 'unix';
    const n = this.open.get(client) ?? 0;
    if (n >= this.maxPerClient) {
      throw new ApiError(
        failure(
          429,
          'TooManyRequests',
          `too many open watches from ${client}: at most ${this.maxPerClient}; close some or share an informer`,
        ),
      );
    }
    this.open.set(client, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(client) ?? 1) - 1;
      if (left <= 0) this.open.delete(client);
      else this.open.set(client, left);
    };
  }
}

/** The writer of a log answer that limitedLogWriter started. */
export interface LimitedLogWriter {
  /** Sends D, cut to what the limit leaves; whether more may be sent. */
  write(d: Buffer): boolean;
  /** Whether the limit is reached. */
  readonly full: boolean;
}

/**
 * Starts a log answer on RES (200, chunked text/plain, not cached) whose
 * writer sends at most LIMIT bytes in all (limitBytes; the last piece is cut
 * to fit).
 */
export function limitedLogWriter(res: ServerResponse, limit: number): LimitedLogWriter {
  res.writeHead(200, {
    'Content-Type': 'text/plain',
    'Transfer-Encoding': 'chunked',
    'Cache-Control': 'no-cache, private',
  });
  let sent = 0;
  return {
    write(d) {
      if (sent >= limit) return false;
      const part = sent + d.length > limit ? d.subarray(0, limit - sent) : d;
      sent += part.length;
      if (part.length) res.write(part);
      return sent < limit;
    },
    get full() {
      return sent >= limit;
    },
  };
}

/**
 * Tendril's error base class. Every error the project raises on purpose is a
 * TendrilError (or a subclass) with a stable `code`, a message that says what
 * was being done, an optional `hint` (the next step for the user) and a `cause`.
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

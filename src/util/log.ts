/**
 * One logger interface for the whole project. Library code takes a Logger
 * (never prints on its own); daemons create one with `createLogger`, which
 * writes one line per record to stderr (logfmt-like, or JSON with
 * TENDRIL_LOG_FORMAT=json). Level from TENDRIL_LOG_LEVEL (debug|info|warn|error).
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** A logger whose records carry `subsys` (and any other fixed fields). */
  child(fields: Record<string, unknown>): Logger;
}

const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Creates a logger writing to `sink` (default stderr). */
export function createLogger(
  fields: Record<string, unknown> = {},
  options: { level?: LogLevel; sink?: (line: string) => void; json?: boolean } = {},
): Logger {
  const level = options.level ?? (process.env.TENDRIL_LOG_LEVEL as LogLevel | undefined) ?? 'info';
  const min = order[level] ?? order.info;
  const json = options.json ?? process.env.TENDRIL_LOG_FORMAT === 'json';
  const sink = options.sink ?? ((line: string) => process.stderr.write(line + '\n'));
  const emit = (lvl: LogLevel, msg: string, extra?: Record<string, unknown>) => {
    if (order[lvl] < min) return;
    const rec = { time: new Date().toISOString(), level: lvl, msg, ...fields, ...extra };
    if (json) {
      sink(JSON.stringify(rec, errorReplacer));
      return;
    }
    // a field left undefined is left out, as JSON.stringify leaves it out
    const kv = Object.entries({ ...fields, ...extra })
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${fmt(v)}`)
      .join(' ');
    sink(`${rec.time} ${lvl.toUpperCase().padEnd(5)} ${msg}${kv ? ' ' + kv : ''}`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (f) => createLogger({ ...fields, ...f }, { level, sink, json }),
  };
}

/** A logger that drops everything (for tests and libraries used quietly). */
export const nopLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return nopLogger;
  },
};

function fmt(v: unknown): string {
  if (v instanceof Error) return JSON.stringify(v.message);
  if (typeof v === 'string') return /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  return JSON.stringify(v, errorReplacer);
}

function errorReplacer(_k: string, v: unknown): unknown {
  return v instanceof Error ? { message: v.message, code: (v as { code?: unknown }).code } : v;
}

/**
 * The one duration parser for every flag and config key that takes a time.
 * Accepts Go's `time.Duration` spellings that matter here ("500ms", "30s",
 * "5m", "1h", "1m30s", "1.5s", "0") and, unlike Go, a bare number as
 * seconds ("90" = 90s): cilium-cli's `--wait-duration` rejects "90"
 * (missing unit), but Tendril's older flags (`install --wait-duration`,
 * `delete --timeout`, `lab --timeout`) took seconds, so "90" keeps meaning
 * 90 seconds everywhere.
 */
import { TendrilError } from './errors.js';

const UNIT: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Options of {@link parseDuration}. */
export interface ParseDurationOptions {
  /** What the text is, for the error message (e.g. "--wait-duration"). */
  what?: string;
}

/**
 * Parses a duration to milliseconds.
 * @throws TendrilError INVALID_DURATION naming `what` and how to write one.
 */
export function parseDuration(text: string, options: ParseDurationOptions = {}): number {
  const t = String(text).trim();
  if (/^\d+(?:\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let m: RegExpExecArray | null;
  let pos = 0;
  while ((m = re.exec(t))) {
    total += Number(m[1]) * UNIT[m[2]!]!;
    pos = re.lastIndex;
  }
  if (t.length === 0 || pos !== t.length) {
    const what = options.what ? `${options.what}: ` : '';
    throw new TendrilError('INVALID_DURATION', `${what}invalid duration "${text}"`, {
      hint: 'use a duration like 500ms, 30s, 5m, 1h or 1m30s (a bare number is seconds)',
    });
  }
  return Math.round(total);
}

/** Formats milliseconds as the shortest duration text parseDuration reads back ("1m30s", "500ms"). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms % 1000 !== 0) return `${ms}ms`;
  let s = ms / 1000;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}`;
}

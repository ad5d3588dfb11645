/**
 * Durations as the CLI and settings spell them: "500ms", "30s", "5m", "1h",
 * or combinations ("1m30s").
 */
import { TendrilError } from '../util/errors.js';

const UNIT: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses a duration to milliseconds. @throws TendrilError INVALID_DURATION */
export function parseDuration(text: string): number {
  const t = text.trim();
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let m: RegExpExecArray | null;
  let pos = 0;
  while ((m = re.exec(t))) {
    total += Number(m[1]) * UNIT[m[2]!]!;
    pos = re.lastIndex;
  }
  if (t.length === 0 || pos !== t.length) {
    throw new TendrilError('INVALID_DURATION', `invalid duration "${text}"`, {
      hint: 'use a duration like 500ms, 30s, 5m, 1h or 1m30s',
    });
  }
  return total;
}

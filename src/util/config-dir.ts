/**
 * Daemon settings as a directory of files, one file per key, the way
 * Kubernetes mounts a ConfigMap (Cilium's `cilium-config`):
 *
 *   /etc/tendril/config/cluster-name      "cluster1"
 *   /etc/tendril/config/cluster-id        "1"
 *   /etc/tendril/config/routing-mode      "native"
 *
 * Names starting with "." are skipped (a ConfigMap volume's `..data` links).
 * A value is the file's text with surrounding whitespace trimmed.
 *
 *   const cfg = readConfigDir('/etc/tendril/config');
 *   cfg.string('cluster-name'); cfg.int('cluster-id', { min: 1, max: 255 });
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from './atomic-write.js';
import { TendrilError } from './errors.js';

/** The settings of one config directory, with typed getters that name the bad key. */
export class ConfigDir {
  constructor(
    /** Where the settings came from (for messages). */
    readonly dir: string,
    /** Every key -> its trimmed value. */
    readonly values: ReadonlyMap<string, string>,
  ) {}

  /** The value of `key`, or undefined. */
  get(key: string): string | undefined {
    return this.values.get(key);
  }

  /** A required string. @throws TendrilError CONFIG_MISSING_KEY */
  string(key: string): string;
  /** An optional string with a default. */
  string(key: string, fallback: string): string;
  string(key: string, fallback?: string): string {
    const v = this.values.get(key);
    if (v !== undefined && v !== '') return v;
    if (fallback !== undefined) return fallback;
    throw new TendrilError('CONFIG_MISSING_KEY', `config ${this.dir}: key "${key}" is missing`, {
      hint: `write the setting to ${join(this.dir, key)} (one file per key, as a ConfigMap mounts)`,
    });
  }

  /** An integer in [min, max]. @throws TendrilError CONFIG_MISSING_KEY, CONFIG_BAD_VALUE */
  int(key: string, o: { min?: number; max?: number; fallback?: number } = {}): number {
    const text = o.fallback === undefined ? this.string(key) : this.string(key, String(o.fallback));
    const n = /^-?\d+$/.test(text) ? Number(text) : NaN;
    const min = o.min ?? Number.MIN_SAFE_INTEGER;
    const max = o.max ?? Number.MAX_SAFE_INTEGER;
    if (!Number.isSafeInteger(n) || n < min || n > max)
      throw this.bad(key, text, `an integer from ${min} to ${max}`);
    return n;
  }

  /** One of `allowed`. @throws TendrilError CONFIG_MISSING_KEY, CONFIG_BAD_VALUE */
  oneOf<T extends string>(key: string, allowed: readonly T[], fallback?: T): T {
    const text = fallback === undefined ? this.string(key) : this.string(key, fallback);
    if (!allowed.includes(text as T)) throw this.bad(key, text, `one of ${allowed.join(', ')}`);
    return text as T;
  }

  /** "true" or "false". @throws TendrilError CONFIG_BAD_VALUE */
  bool(key: string, fallback: boolean): boolean {
    return this.oneOf(key, ['true', 'false'], fallback ? 'true' : 'false') === 'true';
  }

  private bad(key: string, value: string, want: string): TendrilError {
    return new TendrilError(
      'CONFIG_BAD_VALUE',
      `config ${this.dir}: key "${key}" is "${value}", expected ${want}`,
      { hint: `fix ${join(this.dir, key)}` },
    );
  }
}

/**
 * Reads a config directory.
 * @throws TendrilError CONFIG_DIR_UNREADABLE when it is missing or not a directory.
 */
export function readConfigDir(dir: string): ConfigDir {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new TendrilError(
      'CONFIG_DIR_UNREADABLE',
      `read config directory ${dir}: ${(err as Error).message}`,
      {
        hint: 'pass --config-dir DIR naming a directory with one file per setting',
        cause: err,
      },
    );
  }
  const values = new Map<string, string>();
  for (const name of names.sort()) {
    if (name.startsWith('.')) continue;
    const p = join(dir, name);
    if (!statSync(p).isFile()) continue;
    values.set(name, readFileSync(p, 'utf8').trim());
  }
  return new ConfigDir(dir, values);
}

/**
 * Writes `settings` as a config directory: one file per key (each written
 * atomically), and removes keys it no longer has.
 */
export function writeConfigDir(dir: string, settings: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  for (const name of readdirSync(dir)) {
    if (!name.startsWith('.') && !(name in settings)) rmSync(join(dir, name), { force: true });
  }
  for (const [k, v] of Object.entries(settings)) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(k)) throw new Error(`bad config key "${k}"`);
    writeFileAtomicSync(join(dir, k), v + '\n');
  }
}

/**
 * Argument parsing for the busybox image's applets, as busybox's getopt32
 * reads them: short flags combine (`-vz`, `-qO-`), a flag's value follows
 * attached or as the next word (`-w5`, `-w 5`), long options take `=VALUE` or
 * the next word, `--` ends the options.
 */

/** One option: its short letter and/or long name, and whether it takes a value. */
export interface OptionSpec {
  short?: string;
  long?: string;
  value?: boolean;
  /** The key in the result (default: long, else short). */
  key?: string;
}

/** Parsed options: flags count their repeats, valued options keep every value. */
export interface ParsedArgs {
  flags: Map<string, number>;
  values: Map<string, string[]>;
  rest: string[];
}

/** Thrown for an unknown option or a missing value; the message is busybox's. */
export class AppletUsageError extends Error {
  readonly code = 'APPLET_USAGE';
}

/**
 * Parses ARGS by SPECS.
 * @throws AppletUsageError `invalid option -- 'x'` / `option requires an argument -- 'x'`.
 */
export function parseArgs(args: string[], specs: OptionSpec[]): ParsedArgs {
  const out: ParsedArgs = { flags: new Map(), values: new Map(), rest: [] };
  const keyOf = (s: OptionSpec) => s.key ?? s.long ?? s.short!;
  const add = (s: OptionSpec, v?: string) => {
    const k = keyOf(s);
    if (s.value) out.values.set(k, [...(out.values.get(k) ?? []), v!]);
    else out.flags.set(k, (out.flags.get(k) ?? 0) + 1);
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      out.rest.push(...args.slice(i + 1));
      break;
    }
    if (a.startsWith('--') && a.length > 2) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const s = specs.find((x) => x.long === name);
      if (!s) throw new AppletUsageError(`unrecognized option '${a}'`);
      if (s.value) {
        const v = eq >= 0 ? a.slice(eq + 1) : args[++i];
        if (v === undefined) throw new AppletUsageError(`option '--${name}' requires an argument`);
        add(s, v);
      } else add(s);
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const c = a[j]!;
        const s = specs.find((x) => x.short === c);
        if (!s) throw new AppletUsageError(`invalid option -- '${c}'`);
        if (s.value) {
          const attached = a.slice(j + 1);
          const v = attached !== '' ? attached : args[++i];
          if (v === undefined) throw new AppletUsageError(`option requires an argument -- '${c}'`);
          add(s, v);
          break;
        }
        add(s);
      }
      continue;
    }
    out.rest.push(a);
  }
  return out;
}

/** The last value of a valued option. */
export function last(p: ParsedArgs, key: string): string | undefined {
  return p.values.get(key)?.at(-1);
}

/** Seconds as busybox reads them (`5`, `1.5`); throws for anything else. */
export function seconds(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0)
    throw new AppletUsageError(`invalid number '${text}' for ${what}`);
  return n;
}

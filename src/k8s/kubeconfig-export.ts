/**
 * The user's own kubeconfig (the one kubectl reads: `$KUBECONFIG`'s first
 * file, else `~/.kube/config`), into which `tendril lab create` merges the
 * `lab-NAME` context as `kind create cluster` merges `kind-NAME`, and from
 * which `lab delete` removes it again.
 *
 * Merging keeps everything else in the file: other clusters, users and
 * contexts, `preferences`, extensions, unknown fields. Entries of the same
 * name as the exported ones are replaced (they are this context's). Writes go
 * to a temporary file in the same directory, fsynced, then renamed over the
 * file (a symlinked kubeconfig is written through its target); a new file
 * gets mode 0600, an existing one keeps its mode. `<file>.lock` is taken while
 * writing, as kubectl and kind do, so concurrent writers do not lose entries.
 *
 *   exportContext('lab-c1')   -> '/root/.kube/config' (entries copied from Tendril's config)
 *   unexportContext('lab-c1') -> true if something was removed
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { TendrilError } from '../util/errors.js';
import { configPath } from '../util/paths.js';
import { readKubeConfig } from './kubeconfig.js';

/** The kubeconfig kubectl uses: the first file of `$KUBECONFIG`, else `~/.kube/config`. */
export function userKubeconfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const first = (env.KUBECONFIG ?? '').split(delimiter).find((p) => p !== '');
  return first ?? join(env.HOME || homedir(), '.kube', 'config');
}

/** A named entry of a kubeconfig list. */
interface Named {
  name?: unknown;
  [k: string]: unknown;
}

/** A kubeconfig document as read, with every field kept. */
type RawConfig = Record<string, unknown> & {
  clusters?: Named[] | null;
  users?: Named[] | null;
  contexts?: Named[] | null;
};

function readRaw(file: string): RawConfig | undefined {
  if (!existsSync(file)) return undefined;
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new TendrilError(
      'KUBECONFIG_INVALID',
      `read kubeconfig ${file}: ${(err as Error).message}`,
      { hint: `fix the YAML of ${file}, or pass --no-kubeconfig`, cause: err },
    );
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc))
    throw new TendrilError(
      'KUBECONFIG_INVALID',
      `read kubeconfig ${file}: not a kubeconfig (a YAML map)`,
      {
        hint: `fix ${file}, or pass --no-kubeconfig`,
      },
    );
  for (const k of ['clusters', 'users', 'contexts'])
    if ((doc as RawConfig)[k] != null && !Array.isArray((doc as RawConfig)[k]))
      throw new TendrilError(
        'KUBECONFIG_INVALID',
        `read kubeconfig ${file}: "${k}" is not a list`,
        {
          hint: `fix ${file}, or pass --no-kubeconfig`,
        },
      );
  return doc as RawConfig;
}

/** Writes `text` to `file` atomically: temp file in the same directory, fsync, rename, fsync the directory. */
function writeAtomic(file: string, text: string): void {
  const target = existsSync(file) ? realpathSync(file) : file;
  const dir = dirname(target);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const mode = existsSync(target) ? statSync(target).mode & 0o777 : 0o600;
  const tmp = join(dir, `.${process.pid}.${Date.now()}.kubeconfig.tmp`);
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

/** Runs `fn` holding `<file>.lock` (created exclusively, as kubectl's lock). */
function withFileLock<T>(file: string, fn: () => T, timeoutMs = 10_000): T {
  const lock = `${file}.lock`;
  mkdirSync(dirname(lock), { recursive: true, mode: 0o700 });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx', 0o600));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (Date.now() > deadline)
        throw new TendrilError('KUBECONFIG_LOCKED', `kubeconfig ${file} is locked by ${lock}`, {
          hint: `if no kubectl or tendril is writing it, remove ${lock}`,
        });
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

function upsert(list: Named[] | null | undefined, entry: Named): Named[] {
  const out = [...(list ?? [])];
  const i = out.findIndex((e) => e?.name === entry.name);
  if (i >= 0) out[i] = entry;
  else out.push(entry);
  return out;
}

/** Options of exportContext. */
export interface ExportOptions {
  /** The kubeconfig to write (default userKubeconfigPath()). */
  file?: string;
  /** Make it the current context (default true, as kind does). */
  makeCurrent?: boolean;
  /** Tendril's config to copy from (default configPath()). */
  from?: string;
}

/**
 * Merges context `name`, with its cluster and user entries exactly as in
 * Tendril's config (what `tendril config write-kubeconfig` writes), into the
 * user's kubeconfig. Returns the file written.
 * @throws TendrilError CONFIG_UNKNOWN_CONTEXT (not in Tendril's config), KUBECONFIG_INVALID, KUBECONFIG_LOCKED.
 */
export function exportContext(name: string, options: ExportOptions = {}): string {
  const file = options.file ?? userKubeconfigPath();
  const from = options.from ?? configPath();
  const src = readKubeConfig(from);
  const ctx = src.contexts.find((c) => c.name === name);
  if (!ctx)
    throw new TendrilError('CONFIG_UNKNOWN_CONTEXT', `context "${name}" does not exist in ${from}`, {
      hint: 'create the cluster first: `tendril lab create NAME`',
    });
  const cluster = src.clusters.find((c) => c.name === ctx.context.cluster);
  const user = src.users.find((u) => u.name === ctx.context.user) ?? {
    name: ctx.context.user,
    user: {},
  };
  withFileLock(file, () => {
    const doc: RawConfig = readRaw(file) ?? {
      apiVersion: 'v1',
      kind: 'Config',
      preferences: {},
    };
    doc.apiVersion ??= 'v1';
    doc.kind ??= 'Config';
    if (cluster) doc.clusters = upsert(doc.clusters, structuredClone(cluster));
    doc.users = upsert(doc.users, structuredClone(user));
    doc.contexts = upsert(doc.contexts, structuredClone(ctx));
    if (options.makeCurrent ?? true) doc['current-context'] = name;
    writeAtomic(file, stringify(doc));
  });
  return file;
}

/**
 * Removes context `name` from the user's kubeconfig, with the cluster and user
 * entries it names when no other context uses them (the entries
 * exportContext wrote); clears current-context only if it named this context.
 * Nothing else changes; an absent file or entry is a no-op. Returns true if
 * the file changed.
 * @throws TendrilError KUBECONFIG_INVALID, KUBECONFIG_LOCKED.
 */
export function unexportContext(name: string, options: { file?: string } = {}): boolean {
  const file = options.file ?? userKubeconfigPath();
  if (!existsSync(file)) return false;
  return withFileLock(file, () => {
    const doc = readRaw(file);
    const contexts = doc?.contexts ?? [];
    const ctx = contexts.find((c) => c?.name === name);
    if (!doc || !ctx) return false;
    const refs = (ctx.context ?? {}) as { cluster?: unknown; user?: unknown };
    const rest = contexts.filter((c) => c !== ctx);
    const usedBy = (field: 'cluster' | 'user', v: unknown) =>
      rest.some((c) => (c?.context as Record<string, unknown> | undefined)?.[field] === v);
    doc.contexts = rest;
    if (Array.isArray(doc.clusters) && !usedBy('cluster', refs.cluster))
      doc.clusters = doc.clusters.filter((c) => c?.name !== refs.cluster);
    if (Array.isArray(doc.users) && !usedBy('user', refs.user))
      doc.users = doc.users.filter((u) => u?.name !== refs.user);
    // as kind: the current context goes only when it was this one
    if (doc['current-context'] === name) doc['current-context'] = '';
    writeAtomic(file, stringify(doc));
    return true;
  });
}

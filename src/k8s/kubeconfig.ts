/**
 * Tendril's config file (configPath(), default $TENDRIL_HOME/config), in
 * kubeconfig format: `clusters`, `contexts`, `users`, `current-context`, so
 * `kubectl --kubeconfig $(configPath())` can read it as is. This module adds,
 * removes and resolves contexts, and writes standalone kubeconfigs for kubectl.
 *
 *   setContext({ name: 'lab-c1', cluster: 'c1', server: 'http://127.0.0.1:PORT' })
 *   resolveContext('lab-c1')   -> { contextName, clusterName, server, namespace }
 *   resolveContext()           -> the current context (TENDRIL_CONTEXT, then current-context)
 */
import { existsSync, readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { TendrilError } from '../util/errors.js';
import { configPath } from '../util/paths.js';
import { writeFileAtomicSync } from '../util/atomic-write.js';

/** A kubeconfig document (the fields Tendril reads and writes; others are kept). */
export interface KubeConfigDoc {
  apiVersion: string;
  kind: string;
  preferences?: Record<string, unknown>;
  'current-context'?: string;
  clusters: Array<{ name: string; cluster: { server: string; [k: string]: unknown } }>;
  contexts: Array<{ name: string; context: { cluster: string; user: string; namespace?: string } }>;
  users: Array<{ name: string; user: Record<string, unknown> }>;
  [k: string]: unknown;
}

/** A context resolved to where its API server is. */
export interface ResolvedContext {
  contextName: string;
  /** The kubeconfig cluster entry's name. */
  clusterName: string;
  /** http://127.0.0.1:PORT (or unix:/path). */
  server: string;
  /** The context's default namespace ("default" if unset). */
  namespace: string;
}

/** What setContext records. */
export interface ContextSpec {
  /** Context name, e.g. "lab-cluster1". */
  name: string;
  /** Cluster entry name (default: the context name, as kind does). */
  cluster?: string;
  /** API server URL. */
  server: string;
  /** User entry name (default: the context name). */
  user?: string;
  /** The CA that verifies an https server (PEM; written as certificate-authority-data). */
  caPEM?: string;
  /** The user's bearer token. */
  token?: string;
  namespace?: string;
  /** Make it the current context (default true, as kind does). */
  makeCurrent?: boolean;
}

function empty(): KubeConfigDoc {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    preferences: {},
    clusters: [],
    contexts: [],
    users: [],
  };
}

/**
 * Reads a kubeconfig file (an absent file is an empty config).
 * @throws TendrilError `CONFIG_INVALID` for unparsable YAML.
 */
export function readKubeConfig(path = configPath()): KubeConfigDoc {
  if (!existsSync(path)) return empty();
  let doc: Partial<KubeConfigDoc> | null;
  try {
    doc = parse(readFileSync(path, 'utf8')) as Partial<KubeConfigDoc> | null;
  } catch (err) {
    throw new TendrilError(
      'CONFIG_INVALID',
      `read Tendril config ${path}: ${(err as Error).message}`,
      {
        hint: 'fix the YAML, or move the file away and recreate contexts with `tendril lab create`',
        cause: err,
      },
    );
  }
  const base = empty();
  return {
    ...base,
    ...(doc ?? {}),
    clusters: doc?.clusters ?? [],
    contexts: doc?.contexts ?? [],
    users: doc?.users ?? [],
  };
}

/** Writes a kubeconfig file atomically (mode 0600). */
export function writeKubeConfig(doc: KubeConfigDoc, path = configPath()): void {
  writeFileAtomicSync(path, stringify(doc), { mode: 0o600 });
}

/**
 * Adds or replaces a context with its cluster and user entries in Tendril's config.
 * Returns the context name.
 */
export function setContext(spec: ContextSpec, path = configPath()): string {
  const doc = readKubeConfig(path);
  const cluster = spec.cluster ?? spec.name;
  const user = spec.user ?? spec.name;
  doc.clusters = [
    ...doc.clusters.filter((c) => c.name !== cluster),
    {
      name: cluster,
      cluster: {
        server: spec.server,
        ...(spec.caPEM
          ? { 'certificate-authority-data': Buffer.from(spec.caPEM).toString('base64') }
          : {}),
      },
    },
  ];
  doc.users = [
    ...doc.users.filter((u) => u.name !== user),
    { name: user, user: spec.token ? { token: spec.token } : {} },
  ];
  doc.contexts = [
    ...doc.contexts.filter((c) => c.name !== spec.name),
    {
      name: spec.name,
      context: { cluster, user, ...(spec.namespace ? { namespace: spec.namespace } : {}) },
    },
  ];
  if (spec.makeCurrent ?? true) doc['current-context'] = spec.name;
  writeKubeConfig(doc, path);
  return spec.name;
}

/**
 * Removes a context, and its cluster and user entries when no other context
 * uses them; clears current-context if it named it. Absent: no-op.
 */
export function removeContext(name: string, path = configPath()): void {
  if (!existsSync(path)) return;
  const doc = readKubeConfig(path);
  const ctx = doc.contexts.find((c) => c.name === name);
  if (!ctx) return;
  doc.contexts = doc.contexts.filter((c) => c.name !== name);
  if (!doc.contexts.some((c) => c.context.cluster === ctx.context.cluster))
    doc.clusters = doc.clusters.filter((c) => c.name !== ctx.context.cluster);
  if (!doc.contexts.some((c) => c.context.user === ctx.context.user))
    doc.users = doc.users.filter((u) => u.name !== ctx.context.user);
  if (doc['current-context'] === name) delete doc['current-context'];
  writeKubeConfig(doc, path);
}

/**
 * Makes a context current.
 * @throws TendrilError `CONFIG_UNKNOWN_CONTEXT` listing the known contexts.
 */
export function useContext(name: string, path = configPath()): void {
  const doc = readKubeConfig(path);
  if (!doc.contexts.some((c) => c.name === name)) throw unknownContext(name, doc, path);
  doc['current-context'] = name;
  writeKubeConfig(doc, path);
}

function unknownContext(name: string, doc: KubeConfigDoc, path: string): TendrilError {
  const known = doc.contexts.map((c) => c.name);
  return new TendrilError('CONFIG_UNKNOWN_CONTEXT', `context "${name}" does not exist in ${path}`, {
    hint: known.length
      ? `known contexts: ${known.join(', ')}`
      : 'there are no contexts yet: create a cluster with `tendril lab create NAME`',
  });
}

/**
 * Resolves a context name (or, when omitted, $TENDRIL_CONTEXT, then the
 * current context) to its server.
 * @throws TendrilError `CONFIG_UNKNOWN_CONTEXT` (listing known contexts), `CONFIG_NO_CONTEXT`, `CONFIG_INVALID`.
 */
export function resolveContext(name?: string, path = configPath()): ResolvedContext {
  const doc = readKubeConfig(path);
  const wanted = name ?? process.env.TENDRIL_CONTEXT ?? doc['current-context'];
  if (!wanted) {
    const known = doc.contexts.map((c) => c.name);
    throw new TendrilError('CONFIG_NO_CONTEXT', 'no context given and no current context set', {
      hint: known.length
        ? `pass --context NAME or run \`tendril config use-context NAME\` (known: ${known.join(', ')})`
        : 'create a cluster first: `tendril lab create NAME`',
    });
  }
  const ctx = doc.contexts.find((c) => c.name === wanted);
  if (!ctx) throw unknownContext(wanted, doc, path);
  const cluster = doc.clusters.find((c) => c.name === ctx.context.cluster);
  if (!cluster?.cluster?.server) {
    throw new TendrilError(
      'CONFIG_INVALID',
      `context "${wanted}" names cluster "${ctx.context.cluster}", which has no server in ${path}`,
      {
        hint: 'recreate the context (e.g. `tendril lab delete NAME && tendril lab create NAME`)',
      },
    );
  }
  return {
    contextName: wanted,
    clusterName: ctx.context.cluster,
    server: cluster.cluster.server,
    namespace: ctx.context.namespace ?? 'default',
  };
}

/** Every context with its cluster, user, namespace and whether it is current. */
export function listContexts(
  path = configPath(),
): Array<{ name: string; cluster: string; user: string; namespace: string; current: boolean }> {
  const doc = readKubeConfig(path);
  return doc.contexts.map((c) => ({
    name: c.name,
    cluster: c.context.cluster,
    user: c.context.user,
    namespace: c.context.namespace ?? '',
    current: doc['current-context'] === c.name,
  }));
}

/** The current context's name, or undefined. */
export function currentContext(path = configPath()): string | undefined {
  return readKubeConfig(path)['current-context'];
}

/**
 * Writes a standalone kubeconfig for real kubectl (`kubectl --kubeconfig FILE`)
 * holding the given contexts (default: all), current context first choice.
 * @throws TendrilError `CONFIG_UNKNOWN_CONTEXT`.
 */
export function writeStandaloneKubeConfig(
  file: string,
  options: { contexts?: string[]; current?: string } = {},
  path = configPath(),
): void {
  const doc = readKubeConfig(path);
  const names = options.contexts ?? doc.contexts.map((c) => c.name);
  const out = empty();
  for (const n of names) {
    const ctx = doc.contexts.find((c) => c.name === n);
    if (!ctx) throw unknownContext(n, doc, path);
    out.contexts.push(ctx);
    const cl = doc.clusters.find((c) => c.name === ctx.context.cluster);
    if (cl && !out.clusters.some((c) => c.name === cl.name)) out.clusters.push(cl);
    const u = doc.users.find((x) => x.name === ctx.context.user) ?? {
      name: ctx.context.user,
      user: {},
    };
    if (!out.users.some((x) => x.name === u.name)) out.users.push(u);
  }
  const cur =
    options.current ??
    (names.includes(doc['current-context'] ?? '') ? doc['current-context'] : names[0]);
  if (cur) out['current-context'] = cur;
  writeKubeConfig(out, file);
}

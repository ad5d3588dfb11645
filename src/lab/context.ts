/**
 * Records and forgets a lab cluster's context (`lab-<name>`) in Tendril's
 * kubeconfig-style config file. A thin layer, so the lab does not depend on
 * the config file's details.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parse, stringify } from 'yaml';
import { TendrilError } from '../util/errors.js';
import { configPath } from '../util/paths.js';

/** The context name of a lab cluster. */
export function labContextName(cluster: string): string {
  return `lab-${cluster}`;
}

interface Named<T> {
  name: string;
  [k: string]: unknown;
  value?: T;
}

interface ConfigDoc {
  apiVersion: string;
  kind: string;
  'current-context'?: string;
  clusters: Named<unknown>[];
  contexts: Named<unknown>[];
  users: Named<unknown>[];
  [k: string]: unknown;
}

function read(): ConfigDoc {
  const path = configPath();
  const doc = existsSync(path) ? ((parse(readFileSync(path, 'utf8')) ?? {}) as Partial<ConfigDoc>) : {};
  return {
    ...doc,
    apiVersion: doc.apiVersion ?? 'v1',
    kind: doc.kind ?? 'Config',
    clusters: doc.clusters ?? [],
    contexts: doc.contexts ?? [],
    users: doc.users ?? [],
  };
}

function write(doc: ConfigDoc): void {
  const path = configPath();
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp${process.pid}`;
  writeFileSync(tmp, stringify(doc), { mode: 0o600 });
  renameSync(tmp, path);
}

function upsert(list: Named<unknown>[], item: Named<unknown>): Named<unknown>[] {
  return [...list.filter((x) => x.name !== item.name), item];
}

/**
 * Records context lab-<cluster> pointing at `server` and makes it current
 * (as kind does). The cluster, context and user entries all carry the same name.
 */
export function recordLabContext(cluster: string, server: string): string {
  const name = labContextName(cluster);
  const doc = read();
  doc.clusters = upsert(doc.clusters, { name, cluster: { server } });
  doc.users = upsert(doc.users, { name, user: {} });
  doc.contexts = upsert(doc.contexts, { name, context: { cluster: name, user: name } });
  doc['current-context'] = name;
  write(doc);
  return name;
}

/** Removes context lab-<cluster> (and its cluster and user entries); clears current-context if it was that one. */
export function forgetLabContext(cluster: string): void {
  if (!existsSync(configPath())) return;
  const name = labContextName(cluster);
  const doc = read();
  const before = JSON.stringify(doc);
  doc.clusters = doc.clusters.filter((x) => x.name !== name);
  doc.users = doc.users.filter((x) => x.name !== name);
  doc.contexts = doc.contexts.filter((x) => x.name !== name);
  if (doc['current-context'] === name) delete doc['current-context'];
  if (JSON.stringify(doc) !== before) write(doc);
}

/** The server URL and name of a context (the given one, or the current one). Throws LAB_NO_CONTEXT. */
export function resolveContext(context?: string): { name: string; server: string; namespace: string } {
  const doc = read();
  const name = context ?? doc['current-context'];
  if (!name) {
    throw new TendrilError('LAB_NO_CONTEXT', 'no context given and no current context set', {
      hint: 'pass --context NAME (see `tendril config get-contexts`), or create a lab cluster with `tendril lab create NAME`',
    });
  }
  const ctx = doc.contexts.find((c) => c.name === name) as { context?: { cluster?: string; namespace?: string } } | undefined;
  if (!ctx) {
    throw new TendrilError('LAB_NO_CONTEXT', `context "${name}" does not exist in ${configPath()}`, {
      hint: `known contexts: ${doc.contexts.map((c) => c.name).join(', ') || '(none)'}`,
    });
  }
  const cl = doc.clusters.find((c) => c.name === ctx.context?.cluster) as { cluster?: { server?: string } } | undefined;
  const server = cl?.cluster?.server;
  if (!server) throw new TendrilError('LAB_NO_CONTEXT', `context "${name}" names no cluster with a server`, { hint: `check ${configPath()}` });
  return { name, server, namespace: ctx.context?.namespace ?? 'default' };
}

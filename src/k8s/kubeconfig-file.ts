/**
 * A daemon's kubeconfig (`--kubeconfig FILE`): where its API server is and
 * the bearer token it presents. A small reader (the `yaml` package only, no
 * @kubernetes/client-node in daemons).
 *
 * Interim: `tls` gives src/k8s/kubeconfig.ts a full `loadKubeconfig` (https
 * with a CA, client certificates, token files re-read, in-cluster config);
 * this one has the same name and reads `server`, `token` and `tokenFile`, so
 * the lead can swap the import.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { TendrilError } from '../util/errors.js';

/** What a daemon needs to reach its API server. */
export interface LoadedKubeconfig {
  /** The context used. */
  context: string;
  /** The cluster's `server` URL. */
  server: string;
  /** Request headers (Authorization for a token). */
  headers: Record<string, string>;
}

interface Doc {
  'current-context'?: string;
  clusters?: Array<{ name: string; cluster?: { server?: string } }>;
  contexts?: Array<{ name: string; context?: { cluster?: string; user?: string } }>;
  users?: Array<{ name: string; user?: { token?: string; tokenFile?: string } }>;
}

/**
 * Reads a kubeconfig file and resolves its current context (or `context`).
 * @throws TendrilError KUBECONFIG_INVALID naming the file and what is wrong.
 */
export function loadKubeconfig(path: string, context?: string): LoadedKubeconfig {
  const bad = (why: string, cause?: unknown) =>
    new TendrilError('KUBECONFIG_INVALID', `kubeconfig ${path}: ${why}`, {
      hint: 'pass --kubeconfig FILE naming a kubeconfig with a context, its cluster and user',
      ...(cause ? { cause } : {}),
    });
  let doc: Doc;
  try {
    doc = (parse(readFileSync(path, 'utf8')) ?? {}) as Doc;
  } catch (err) {
    throw bad((err as Error).message, err);
  }
  const name = context ?? doc['current-context'];
  if (!name) throw bad('no current-context (and no context named)');
  const ctx = doc.contexts?.find((c) => c.name === name)?.context;
  if (!ctx) throw bad(`no context "${name}"`);
  const server = doc.clusters?.find((c) => c.name === ctx.cluster)?.cluster?.server;
  if (!server) throw bad(`context "${name}" names cluster "${ctx.cluster}", which has no server`);
  const user = doc.users?.find((u) => u.name === ctx.user)?.user ?? {};
  const headers: Record<string, string> = {};
  let token = user.token;
  if (!token && user.tokenFile) {
    try {
      token = readFileSync(user.tokenFile, 'utf8').trim();
    } catch (err) {
      throw bad(`read tokenFile ${user.tokenFile}: ${(err as Error).message}`, err);
    }
  }
  if (token) headers.Authorization = `Bearer ${token}`;
  return { context: name, server, headers };
}

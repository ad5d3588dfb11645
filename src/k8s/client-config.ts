/**
 * Where a KubeClient's server and credentials come from, as kubectl and
 * client-go find them:
 *
 * - a kubeconfig file (`--kubeconfig FILE`, a context in it or its
 *   current-context): the cluster's `server`, `certificate-authority(-data)`,
 *   `insecure-skip-tls-verify`, `tls-server-name`; the user's
 *   `client-certificate(-data)`, `client-key(-data)`, `token`, `tokenFile`.
 *   Relative file paths are relative to the kubeconfig's directory, as
 *   kubectl reads them. `exec` and `auth-provider` users are refused with a
 *   clear error (Tendril's daemons do not run credential plugins);
 * - in-cluster config: `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT` and
 *   the service account's token (re-read as it is rotated), `ca.crt` and
 *   `namespace` under /var/run/secrets/kubernetes.io/serviceaccount.
 *
 *   new KubeClient(kubeconfigClientOptions({ path: '/etc/tendril/kubeconfig' }))
 *   new KubeClient(inClusterClientOptions())
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parse } from 'yaml';
import { TendrilError } from '../util/errors.js';
import type { KubeClientOptions } from './client.js';

/** The service account directory Kubernetes mounts into pods. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** Client options plus the namespace the config points at. */
export interface ResolvedClientOptions extends KubeClientOptions {
  /** The context's namespace, or the service account's; "default" when unset. */
  namespace: string;
  /** The context used (kubeconfig only). */
  contextName?: string;
}

/** Options of {@link kubeconfigClientOptions}. */
export interface KubeconfigClientOptions {
  /** The kubeconfig file. */
  path: string;
  /** Context to use (default: the file's current-context). */
  context?: string;
}

interface RawKubeconfig {
  'current-context'?: string;
  clusters?: Array<{ name?: string; cluster?: Record<string, unknown> }>;
  contexts?: Array<{ name?: string; context?: Record<string, unknown> }>;
  users?: Array<{ name?: string; user?: Record<string, unknown> }>;
}

function invalid(path: string, what: string, hint: string): TendrilError {
  return new TendrilError('CONFIG_INVALID', `kubeconfig ${path}: ${what}`, { hint });
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function b64(path: string, field: string, v: unknown): string | undefined {
  const s = str(v);
  if (s === undefined) return undefined;
  const text = Buffer.from(s, 'base64').toString('utf8');
  if (!text.includes('-----BEGIN'))
    throw invalid(
      path,
      `${field} is not base64 of a PEM block`,
      `put base64 of the PEM file in ${field}`,
    );
  return text;
}

/**
 * Reads a kubeconfig and turns one of its contexts into KubeClient options.
 * @throws TendrilError CONFIG_INVALID (unreadable YAML, unknown context, missing
 * cluster/user/server), K8S_AUTH_UNSUPPORTED (exec, auth-provider, username/password).
 */
export function kubeconfigClientOptions(options: KubeconfigClientOptions): ResolvedClientOptions {
  const path = resolve(options.path);
  if (!existsSync(path))
    throw new TendrilError('CONFIG_INVALID', `kubeconfig ${path} does not exist`, {
      hint: 'pass --kubeconfig with the path of an existing kubeconfig file',
    });
  let doc: RawKubeconfig;
  try {
    doc = (parse(readFileSync(path, 'utf8')) ?? {}) as RawKubeconfig;
  } catch (err) {
    throw new TendrilError('CONFIG_INVALID', `kubeconfig ${path}: ${(err as Error).message}`, {
      hint: 'fix the YAML',
      cause: err,
    });
  }
  return clientOptionsFromKubeconfig(doc, { path, context: options.context });
}

/**
 * Turns a parsed kubeconfig document into KubeClient options (for a document
 * already in memory; `path` names it in errors and anchors relative paths).
 * @throws TendrilError as {@link kubeconfigClientOptions}.
 */
export function clientOptionsFromKubeconfig(
  doc: RawKubeconfig | object,
  options: { path: string; context?: string },
): ResolvedClientOptions {
  const d = doc as RawKubeconfig;
  const { path } = options;
  const base = dirname(path);
  const file = (v: unknown): string | undefined => {
    const s = str(v);
    return s === undefined ? undefined : isAbsolute(s) ? s : join(base, s);
  };
  const known = (d.contexts ?? []).map((c) => c.name).filter(Boolean);
  const wanted = options.context ?? str(d['current-context']);
  if (!wanted)
    throw invalid(
      path,
      'no context given and no current-context set',
      known.length ? `pass a context (known: ${known.join(', ')})` : 'add a context',
    );
  const ctx = (d.contexts ?? []).find((c) => c.name === wanted)?.context;
  if (!ctx)
    throw invalid(
      path,
      `no context "${wanted}"`,
      known.length ? `known contexts: ${known.join(', ')}` : 'the file has no contexts',
    );
  const clusterName = str(ctx.cluster);
  const cluster = (d.clusters ?? []).find((c) => c.name === clusterName)?.cluster;
  if (!cluster || !str(cluster.server))
    throw invalid(
      path,
      `context "${wanted}" names cluster "${clusterName ?? ''}", which is missing or has no server`,
      'add the cluster with its server: https://HOST:PORT',
    );
  const userName = str(ctx.user);
  const user = userName
    ? ((d.users ?? []).find((u) => u.name === userName)?.user ?? undefined)
    : {};
  if (userName && user === undefined)
    throw invalid(
      path,
      `context "${wanted}" names user "${userName}", which is missing`,
      'add the user',
    );
  const u = user ?? {};
  for (const plugin of ['exec', 'auth-provider'] as const) {
    if (u[plugin] !== undefined && u[plugin] !== null)
      throw new TendrilError(
        'K8S_AUTH_UNSUPPORTED',
        `kubeconfig ${path}: user "${userName}" authenticates with ${plugin}, which Tendril's client does not support`,
        {
          hint: 'give the user a token, tokenFile or client-certificate/client-key (e.g. a service-account token)',
        },
      );
  }
  if (str(u.username) || str(u.password))
    throw new TendrilError(
      'K8S_AUTH_UNSUPPORTED',
      `kubeconfig ${path}: user "${userName}" uses username/password (basic auth), which Tendril's client does not support`,
      { hint: 'use a token, tokenFile or client certificate instead' },
    );
  const caData = b64(path, 'certificate-authority-data', cluster['certificate-authority-data']);
  const caFile = file(cluster['certificate-authority']);
  const certData = b64(path, 'client-certificate-data', u['client-certificate-data']);
  const keyData = b64(path, 'client-key-data', u['client-key-data']);
  const tls: NonNullable<KubeClientOptions['tls']> = {};
  if (caData !== undefined) tls.ca = caData;
  else if (caFile) tls.caFile = caFile;
  if (certData !== undefined) tls.cert = certData;
  else if (file(u['client-certificate'])) tls.certFile = file(u['client-certificate'])!;
  if (keyData !== undefined) tls.key = keyData;
  else if (file(u['client-key'])) tls.keyFile = file(u['client-key'])!;
  if (cluster['insecure-skip-tls-verify'] === true) tls.insecureSkipVerify = true;
  if (str(cluster['tls-server-name'])) tls.serverName = str(cluster['tls-server-name'])!;
  const out: ResolvedClientOptions = {
    server: str(cluster.server)!,
    namespace: str(ctx.namespace) ?? 'default',
    contextName: wanted,
    credential: `user "${userName ?? ''}" of context "${wanted}" in ${path}`,
    caSource:
      caData !== undefined
        ? `certificate-authority-data of cluster "${clusterName}" in ${path}`
        : caFile
          ? `the CA ${caFile} (certificate-authority of cluster "${clusterName}")`
          : "the system's CAs (cluster has no certificate-authority)",
  };
  if (Object.keys(tls).length) out.tls = tls;
  const token = str(u.token);
  const tokenFile = file(u.tokenFile);
  if (token) out.token = token;
  else if (tokenFile) out.tokenFile = tokenFile;
  return out;
}

/** Options of {@link inClusterClientOptions}. */
export interface InClusterOptions {
  /** The service account directory (default SERVICE_ACCOUNT_DIR; tests point it elsewhere). */
  dir?: string;
  /** Environment to read KUBERNETES_SERVICE_HOST/PORT from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** True when KUBERNETES_SERVICE_HOST and _PORT are set (running in a pod). */
export function isInCluster(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT);
}

/**
 * Client options from inside a pod, as client-go's rest.InClusterConfig:
 * https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, the service
 * account's ca.crt, its token file (re-read as the kubelet rotates it) and
 * namespace.
 * @throws TendrilError K8S_NOT_IN_CLUSTER without the variables, K8S_BAD_CREDENTIAL without the token.
 */
export function inClusterClientOptions(options: InClusterOptions = {}): ResolvedClientOptions {
  const env = options.env ?? process.env;
  const dir = options.dir ?? SERVICE_ACCOUNT_DIR;
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port)
    throw new TendrilError(
      'K8S_NOT_IN_CLUSTER',
      'unable to load in-cluster configuration: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set',
      { hint: 'run inside a pod, or pass --kubeconfig FILE' },
    );
  const tokenFile = join(dir, 'token');
  if (!existsSync(tokenFile))
    throw new TendrilError(
      'K8S_BAD_CREDENTIAL',
      `in-cluster config: no service account token at ${tokenFile}`,
      {
        hint: 'mount the service account token (automountServiceAccountToken: true)',
      },
    );
  const caFile = join(dir, 'ca.crt');
  let namespace = 'default';
  try {
    namespace = readFileSync(join(dir, 'namespace'), 'utf8').trim() || 'default';
  } catch {
    // as client-go: no namespace file means "default"
  }
  const h = host.includes(':') ? `[${host}]` : host;
  return {
    server: `https://${h}:${port}`,
    tokenFile,
    ...(existsSync(caFile) ? { tls: { caFile } } : {}),
    namespace,
    credential: `the service account token ${tokenFile}`,
    caSource: `the service account CA ${caFile}`,
  };
}

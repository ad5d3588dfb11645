/**
 * The mesh's remote clusters as a daemon sees them: a directory in the shape
 * of Cilium's `clustermesh-config` Secret mounted as a volume, one file per
 * remote cluster, named for it, holding an etcd client config:
 *
 *   /var/lib/tendril/clustermesh/cluster2:
 *     endpoints:
 *     - https://172.30.1.10:2379
 *     trusted-ca-file: /var/lib/tendril/clustermesh/ca.crt
 *     cert-file: /var/lib/tendril/clustermesh/agent.crt
 *     key-file: /var/lib/tendril/clustermesh/agent.key
 *
 * With kvstoremesh (Tendril's default) every file names the cluster's own
 * clustermesh etcd, which caches every remote: an agent then keeps one
 * connection and follows the clusters the directory names. Names starting
 * with "." (a Secret volume's `..data` links) and files not named like a
 * cluster are skipped.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { writeFileAtomicSync } from '../util/atomic-write.js';
import { TendrilError } from '../util/errors.js';
import type { EtcdKVStoreOptions } from '../kvstore/etcd.js';

/** One remote cluster's etcd client config (one file of the directory). */
export interface RemoteEtcdConfig {
  /** The remote cluster's name (the file name). */
  name: string;
  endpoints: string[];
  trustedCAFile: string;
  certFile: string;
  keyFile: string;
}

const NAME_RE = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/**
 * Reads every remote's etcd config; a missing directory means no remotes.
 * @throws TendrilError CLUSTERMESH_BAD_CONFIG naming the file and the field.
 */
export function readClusterMeshConfig(dir: string): RemoteEtcdConfig[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: RemoteEtcdConfig[] = [];
  for (const name of names.sort()) {
    if (name.startsWith('.') || !NAME_RE.test(name)) continue;
    const p = join(dir, name);
    const st = statSync(p);
    if (!st.isFile()) continue;
    // daemons read the directory every second or two, and it may name 250 remotes:
    // a file unchanged since the last read (same inode, size, times) is not parsed again
    const stamp = `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
    let c = parsedFiles.get(p);
    if (c?.stamp !== stamp) {
      c = { stamp, config: parseRemoteEtcdConfig(name, readFileSync(p, 'utf8'), p) };
      parsedFiles.set(p, c);
    }
    // a relative file name (`tendril clustermesh connect` on Kubernetes writes the
    // Secret's own key names) is a file beside the config, wherever the Secret is mounted
    const { config } = c;
    out.push({
      ...config,
      endpoints: [...config.endpoints],
      trustedCAFile: resolve(dir, config.trustedCAFile),
      certFile: resolve(dir, config.certFile),
      keyFile: resolve(dir, config.keyFile),
    });
  }
  if (parsedFiles.size > 4096) parsedFiles.clear(); // files of directories read long ago
  return out;
}

/** readClusterMeshConfig's parsed files: path -> the file's stat stamp and its config. */
const parsedFiles = new Map<string, { stamp: string; config: RemoteEtcdConfig }>();

/** Parses one file. @throws TendrilError CLUSTERMESH_BAD_CONFIG */
export function parseRemoteEtcdConfig(name: string, text: string, where = name): RemoteEtcdConfig {
  const bad = (why: string) =>
    new TendrilError('CLUSTERMESH_BAD_CONFIG', `clustermesh config ${where}: ${why}`, {
      hint: 'each file is an etcd config: endpoints (a list), trusted-ca-file, cert-file, key-file',
    });
  let doc: Record<string, unknown>;
  try {
    doc = (parse(text) ?? {}) as Record<string, unknown>;
  } catch (err) {
    throw bad((err as Error).message);
  }
  const endpoints = doc.endpoints;
  if (
    !Array.isArray(endpoints) ||
    endpoints.length === 0 ||
    !endpoints.every((e) => typeof e === 'string' && /^https?:\/\//.test(e))
  )
    throw bad('"endpoints" must be a list of http(s) URLs');
  const file = (k: string): string => {
    const v = doc[k];
    if (typeof v !== 'string' || !v) throw bad(`"${k}" is required`);
    return v;
  };
  return {
    name,
    endpoints: endpoints as string[],
    trustedCAFile: file('trusted-ca-file'),
    certFile: file('cert-file'),
    keyFile: file('key-file'),
  };
}

/** Renders one remote's file (the inverse of parseRemoteEtcdConfig). */
export function renderRemoteEtcdConfig(c: RemoteEtcdConfig): string {
  return stringify({
    endpoints: c.endpoints,
    'trusted-ca-file': c.trustedCAFile,
    'cert-file': c.certFile,
    'key-file': c.keyFile,
  });
}

/**
 * Writes the directory so it holds exactly `remotes` (files of other
 * clusters are removed). Each file is written to a temporary name and renamed.
 */
export function writeClusterMeshConfig(dir: string, remotes: RemoteEtcdConfig[]): void {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const keep = new Set(remotes.map((r) => r.name));
  for (const n of readdirSync(dir))
    if (!n.startsWith('.') && !keep.has(n)) rmSync(join(dir, n), { force: true });
  for (const r of remotes) {
    if (!NAME_RE.test(r.name)) throw new Error(`bad cluster name "${r.name}"`);
    writeFileAtomicSync(join(dir, r.name), renderRemoteEtcdConfig(r));
  }
}

/**
 * The etcd client options for a set of remotes that share one etcd (the
 * kvstoremesh case), and a fingerprint of configs and certificates (it
 * changes when any file does, e.g. after certificates are reissued).
 * @throws TendrilError CLUSTERMESH_BAD_CONFIG when the remotes name different etcds.
 */
export async function sharedEtcdOptions(
  remotes: RemoteEtcdConfig[],
): Promise<{ options: EtcdKVStoreOptions; fingerprint: string }> {
  const first = remotes[0];
  if (!first) throw new Error('no remotes');
  const key = (r: RemoteEtcdConfig) =>
    JSON.stringify([r.endpoints, r.trustedCAFile, r.certFile, r.keyFile]);
  const other = remotes.find((r) => key(r) !== key(first));
  if (other) {
    throw new TendrilError(
      'CLUSTERMESH_BAD_CONFIG',
      `clustermesh config: ${first.name} and ${other.name} name different etcds; ` +
        "a Tendril agent reads one etcd, its own cluster's clustermesh-apiserver (kvstoremesh)",
      {
        hint: 'point every remote at the local clustermesh etcd (tendril clustermesh connect does)',
      },
    );
  }
  const [ca, cert, key2] = await Promise.all([
    readFile(first.trustedCAFile, 'utf8'),
    readFile(first.certFile, 'utf8'),
    readFile(first.keyFile, 'utf8'),
  ]);
  const fingerprint = createHash('sha256')
    .update(key(first))
    .update(ca)
    .update(cert)
    .update(key2)
    .digest('hex');
  return {
    options: {
      endpoints: first.endpoints,
      tls: { ca, cert, key: key2 },
      dialTimeoutMs: 3000,
      requestTimeoutMs: 5000,
    },
    fingerprint,
  };
}

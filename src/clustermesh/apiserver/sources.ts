/**
 * Where the clustermesh-apiserver's settings, its own etcd credential, the
 * remote clusters it mirrors and the clusters allowed to read it come from.
 * Two forms, one daemon:
 *
 * - {@link meshDirSource}: the lab's mesh directory (mesh.json, certificates,
 *   remotes/, readers/; see ../mesh-files.ts), `--mesh-dir DIR`.
 * - {@link configDirSource}: what a real cluster mounts into the pod, in
 *   Cilium's shapes: `--config-dir` (the `tendril-config` ConfigMap, one key
 *   per setting), `--etcd-config` (an etcd client config for its own etcd,
 *   whose files come from the admin-cert Secret), `--clustermesh-config` (one
 *   etcd config per remote cluster, from the kvstoremesh Secret) and
 *   optionally `--cluster-users-config` (Cilium's users.yaml: which remote
 *   clusters may read this etcd).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parse } from 'yaml';
import { EtcdKVStore } from '../../kvstore/etcd.js';
import type { KVStore } from '../../kvstore/types.js';
import { readConfigDir } from '../../util/config-dir.js';
import { parseDuration } from '../../util/duration.js';
import { TendrilError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { kubeconfigClientOptions } from '../../k8s/client-config.js';
import { parseRemoteEtcdConfig, readClusterMeshConfig } from '../clustermesh-config.js';
import { remoteClientCN } from '../certs.js';
import type { RemoteClusterConfig, RemoteDialer } from '../kvstoremesh.js';
import {
  listReaders,
  listRemotes,
  meshPaths,
  readMeshConfig,
  remotePaths,
  type MeshConfig,
} from '../mesh-files.js';

/** The daemon's settings (mesh.json's fields the daemon uses). */
export type MeshDaemonSettings = Pick<
  MeshConfig,
  | 'clusterName'
  | 'clusterId'
  | 'maxConnectedClusters'
  | 'serviceType'
  | 'accessEndpoints'
  | 'localEndpoint'
  | 'apiServerURL'
  | 'kvstoremesh'
  | 'cacheTTL'
> & {
  /** The lab cluster (lab only; "" on a real cluster). */
  labCluster: string;
};

/** PEM texts of a mutual-TLS etcd client. */
export interface EtcdTLS {
  ca: string;
  cert: string;
  key: string;
}

/** What the daemon reads, from files of one form or the other. */
export interface MeshDaemonSource {
  /** Names the source in messages (a directory). */
  readonly where: string;
  /**
   * Reads the settings; undefined when the mesh is not enabled (lab: no mesh.json).
   * @throws TendrilError naming the bad file or key.
   */
  settings(): MeshDaemonSettings | undefined;
  /** The client credential for the daemon's own etcd (as root). */
  localTLS(): Promise<EtcdTLS>;
  /** Where the status endpoint listens (its directory is created). */
  statusSocket(): string;
  /** The remote clusters to mirror; unreadable entries are reported in `errors`. */
  remotes(): Promise<{ remotes: RemoteClusterConfig[]; errors: string[] }>;
  /** Opens a client to a remote's etcd with the credential its entry names. */
  dialRemote: RemoteDialer;
  /**
   * The remote clusters allowed to read this etcd, each with the etcd user
   * its client certificate authenticates as (the certificate's CN).
   */
  readers(): Promise<{ name: string; user: string }[]>;
}

function etcdClient(endpoints: string[], tls: EtcdTLS, logger?: Logger): KVStore {
  return new EtcdKVStore({
    endpoints,
    tls,
    dialTimeoutMs: 3000,
    requestTimeoutMs: 3000,
    logger,
  });
}

async function readTLS(files: { ca: string; cert: string; key: string }): Promise<EtcdTLS> {
  const [ca, cert, key] = await Promise.all([
    readFile(files.ca, 'utf8'),
    readFile(files.cert, 'utf8'),
    readFile(files.key, 'utf8'),
  ]);
  return { ca, cert, key };
}

/** The lab form: everything from one mesh directory (see ../mesh-files.ts). */
export function meshDirSource(
  meshDir: string,
  options: { logger?: Logger } = {},
): MeshDaemonSource {
  const ref = { meshDir };
  return {
    where: meshDir,
    settings: () => {
      const c = readMeshConfig(ref);
      return c ? { ...c } : undefined;
    },
    localTLS: () => {
      const p = meshPaths(ref);
      return readTLS({ ca: p.caCert, cert: p.rootCert, key: p.rootKey });
    },
    statusSocket: () => meshPaths(ref).statusSocket,
    remotes: async () => {
      const { remotes, errors } = await listRemotes(ref);
      return {
        errors,
        remotes: remotes.map((r) => ({
          name: r.name,
          clusterId: r.clusterId,
          endpoints: r.endpoints,
          version: r.connectedAt,
          ...(r.podCIDRs ? { podCIDRs: r.podCIDRs } : {}),
          ...(r.nodeCIDRs ? { nodeCIDRs: r.nodeCIDRs } : {}),
        })),
      };
    },
    dialRemote: async (remote) => {
      const p = remotePaths(ref, remote.name);
      const tls = await readTLS({ ca: p.caCert, cert: p.clientCert, key: p.clientKey });
      return etcdClient(remote.endpoints, tls, options.logger);
    },
    readers: async () =>
      (await listReaders(ref))
        .map((r) => ({ name: r.name, user: r.commonName || remoteClientCN(r.name) }))
        .sort((a, b) => a.name.localeCompare(b.name)),
  };
}

/** Flags of the real-cluster form (as the rendered manifest passes them). */
export interface ConfigDirSourceOptions {
  /** `--config-dir`: one file per setting (cluster-name, cluster-id, ...). */
  configDir: string;
  /** `--kubeconfig`: the API server the syncer reads. */
  kubeconfig: string;
  /** `--etcd-config`: an etcd client config (endpoints, trusted-ca-file, cert-file, key-file) for its own etcd. */
  etcdConfig: string;
  /** `--clustermesh-config`: one etcd config per remote cluster (missing: no remotes). */
  clustermeshConfig?: string;
  /** `--cluster-users-config`: Cilium's users.yaml (missing: no remote may read). */
  usersConfig?: string;
  /** `--status-socket` (default {@link DEFAULT_STATUS_SOCKET}). */
  statusSocket?: string;
  logger?: Logger;
}

/** Where the status endpoint listens on a real cluster unless `--status-socket` says otherwise. */
export const DEFAULT_STATUS_SOCKET = '/var/run/tendril/clustermesh-apiserver/status.sock';

/**
 * Config-dir keys the clustermesh-apiserver reads besides `cluster-name` and
 * `cluster-id`. STABLE names.
 */
export const MESH_CONFIG_KEYS = {
  maxConnectedClusters: 'max-connected-clusters',
  serviceType: 'clustermesh-service-type',
  accessEndpoints: 'clustermesh-access-endpoints',
  kvstoremesh: 'clustermesh-enable-kvstoremesh',
  cacheTTL: 'clustermesh-cache-ttl',
} as const;

/**
 * Parses Cilium's clustermesh users config: `users: [{name, role}]`, where
 * `name` is the etcd user a remote cluster's client certificate names (its
 * CN): `remote-<cluster>`, or `remote-<cluster>.<grant>` for a per-connect
 * grant (see docs/clustermesh.md). Returns each cluster with its user,
 * sorted by cluster.
 * @throws TendrilError CLUSTERMESH_BAD_CONFIG naming the file.
 */
export function parseClusterUsers(text: string, where: string): { name: string; user: string }[] {
  const bad = (why: string) =>
    new TendrilError('CLUSTERMESH_BAD_CONFIG', `cluster users config ${where}: ${why}`, {
      hint: 'the file is YAML: users: [{name: remote-<cluster>[.<grant>], role: remote}]',
    });
  let doc: unknown;
  try {
    doc = parse(text) ?? {};
  } catch (err) {
    throw bad((err as Error).message);
  }
  const users = (doc as { users?: unknown }).users ?? [];
  if (!Array.isArray(users)) throw bad('"users" must be a list');
  const out = new Map<string, { name: string; user: string }>();
  for (const u of users) {
    const user = (u as { name?: unknown } | null)?.name;
    const m =
      typeof user === 'string'
        ? /^remote-([a-z0-9]([a-z0-9-]*[a-z0-9])?)(\.[a-z0-9]+)?$/.exec(user)
        : null;
    if (!m || typeof user !== 'string')
      throw bad(`user ${JSON.stringify(user)} is not named remote-<cluster>[.<grant>]`);
    out.set(user, { name: m[1]!, user });
  }
  return [...out.values()].sort(
    (a, b) => a.name.localeCompare(b.name) || a.user.localeCompare(b.user),
  );
}

/**
 * The real-cluster form. Settings are read once per {@link MeshDaemonSource.settings}
 * call; remotes and users are re-read at every scan (a Secret/ConfigMap
 * volume update changes the files in place, no restart needed).
 */
export function configDirSource(o: ConfigDirSourceOptions): MeshDaemonSource {
  const socket = o.statusSocket ?? DEFAULT_STATUS_SOCKET;
  const readEtcdConfig = () => {
    let text: string;
    try {
      text = readFileSync(o.etcdConfig, 'utf8');
    } catch (err) {
      throw new TendrilError(
        'CONFIG_INVALID',
        `read etcd config ${o.etcdConfig}: ${(err as Error).message}`,
        {
          hint: 'pass --etcd-config naming an etcd client config (endpoints, trusted-ca-file, cert-file, key-file)',
          cause: err,
        },
      );
    }
    return parseRemoteEtcdConfig('local', text, o.etcdConfig);
  };
  return {
    where: o.configDir,
    settings: () => {
      const dir = readConfigDir(o.configDir);
      const local = readEtcdConfig();
      const api = kubeconfigClientOptions({ path: o.kubeconfig });
      const cacheTTL = dir.get(MESH_CONFIG_KEYS.cacheTTL) || undefined;
      if (cacheTTL !== undefined) parseDuration(cacheTTL);
      const endpoints = dir.get(MESH_CONFIG_KEYS.accessEndpoints);
      return {
        labCluster: '',
        clusterName: dir.string('cluster-name'),
        clusterId: dir.int('cluster-id', { min: 1, max: 511 }),
        maxConnectedClusters: dir.int(MESH_CONFIG_KEYS.maxConnectedClusters, {
          fallback: 255,
          min: 255,
          max: 511,
        }),
        serviceType: dir.string(
          MESH_CONFIG_KEYS.serviceType,
          'NodePort',
        ) as MeshConfig['serviceType'],
        accessEndpoints: endpoints
          ? endpoints
              .split(/[,\s]+/)
              .map((e) => e.trim())
              .filter(Boolean)
          : [],
        localEndpoint: local.endpoints[0]!,
        apiServerURL: api.server,
        kvstoremesh: dir.bool(MESH_CONFIG_KEYS.kvstoremesh, true),
        ...(cacheTTL ? { cacheTTL } : {}),
      };
    },
    localTLS: () => {
      const c = readEtcdConfig();
      return readTLS({ ca: c.trustedCAFile, cert: c.certFile, key: c.keyFile });
    },
    statusSocket: () => {
      mkdirSync(dirname(socket), { recursive: true });
      return socket;
    },
    remotes: async () => {
      if (!o.clustermeshConfig) return { remotes: [], errors: [] };
      let configs;
      try {
        configs = readClusterMeshConfig(o.clustermeshConfig);
      } catch (err) {
        return { remotes: [], errors: [(err as Error).message] };
      }
      const remotes: RemoteClusterConfig[] = [];
      const errors: string[] = [];
      for (const c of configs) {
        try {
          // A new credential (the Secret re-issued) reconnects: its hash is the version.
          const h = createHash('sha256').update(JSON.stringify(c.endpoints));
          for (const f of [c.trustedCAFile, c.certFile, c.keyFile]) h.update(await readFile(f));
          // No cluster ID in an etcd config: 0 means "learn it from the remote".
          remotes.push({
            name: c.name,
            clusterId: 0,
            endpoints: c.endpoints,
            version: h.digest('hex').slice(0, 16),
          });
        } catch (err) {
          errors.push(`${c.name}: ${(err as Error).message}`);
        }
      }
      return { remotes, errors };
    },
    dialRemote: async (remote) => {
      if (!o.clustermeshConfig) throw new Error(`no --clustermesh-config for ${remote.name}`);
      const c = readClusterMeshConfig(o.clustermeshConfig).find((x) => x.name === remote.name);
      if (!c) throw new Error(`${remote.name} is no longer in ${o.clustermeshConfig}`);
      const tls = await readTLS({ ca: c.trustedCAFile, cert: c.certFile, key: c.keyFile });
      return etcdClient(c.endpoints, tls, o.logger);
    },
    readers: async () => {
      if (!o.usersConfig) return [];
      let text: string;
      try {
        text = await readFile(o.usersConfig, 'utf8');
      } catch (err) {
        // an optional ConfigMap volume that is not there yet: nobody may read
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw err;
      }
      return parseClusterUsers(text, o.usersConfig);
    },
  };
}

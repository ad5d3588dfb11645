/**
 * `clustermesh enable` / `connect` / `disconnect` on a Kubernetes cluster
 * reached only through its API server (a {@link KubernetesTarget}). What the
 * lab path keeps in mesh files on disk lives here in the objects the rendered
 * clustermesh-apiserver Deployment mounts, in Cilium's shapes:
 *
 *   Secret tendril-ca                         ca.crt, ca.key: the cluster's own mesh CA
 *                                             (Cilium's cilium-ca; made by the first enable)
 *   Secret clustermesh-apiserver-server-cert  tls.crt, tls.key, ca.crt: etcd's serving certificate
 *   Secret clustermesh-apiserver-admin-cert   tls.crt, tls.key, ca.crt: the apiserver's etcd "root" client
 *   ConfigMap tendril-config                  + clustermesh-access-endpoints, clustermesh-service-type
 *   Secret tendril-kvstoremesh                per remote B (connect): `B` (an etcd config),
 *                                             `B.etcd-client-ca.crt`, `B.etcd-client.crt`, `B.etcd-client.key`
 *   ConfigMap clustermesh-remote-users        users.yaml: `users: [{name: remote-<A>.<grant>, role: remote}]`
 *
 * No lock files: every change is a read-modify-write at the resourceVersion
 * read, so two commands racing on one object get a 409 and the loser reads
 * again (up to {@link MAX_CONFLICT_RETRIES} times).
 *
 *   const a = KubernetesTarget.fromKubeconfig(path, 'ctx-a');
 *   await enableKubernetesMesh(a, { accessEndpoints: ['https://10.0.0.5:32379'] });
 *   await connectKubernetesClusters(a, [b]);
 */
import { isIP } from 'node:net';
import { parse, stringify } from 'yaml';
import { TendrilError } from '../../util/errors.js';
import { ApiError } from '../../k8s/status.js';
import type { KubeObject } from '../../k8s/objects.js';
import {
  createCA,
  issueClientCert,
  issueServerCert,
  loadCA,
  remoteClientCN,
  type CertificateAuthority,
} from '../../clustermesh/certs.js';
import { ROOT_USER } from '../../clustermesh/etcd-access.js';
import { validateClusterName, DEFAULT_MAX_CONNECTED_CLUSTERS } from '../../clustermesh/keys.js';
import { MESH_CONFIG_KEYS } from '../../clustermesh/apiserver/sources.js';
import { renderRemoteEtcdConfig } from '../../clustermesh/clustermesh-config.js';
import { K8S_NAMESPACE, KubernetesTarget } from '../target.js';
import { resolveInstallTarget } from '../lab-target.js';
import { resolveContext } from '../../k8s/kubeconfig.js';
import { configPath } from '../../util/paths.js';
import { NAMES, SECRET_NAMES, PORTS } from '../kubernetes/names.js';
import { grantCN } from './setup.js';
import { ConnectRefusedError, connectionPairs, type ConnectionMode } from './connect.js';

/** How often a read-modify-write is retried after a 409 (someone else wrote the object). */
export const MAX_CONFLICT_RETRIES = 5;

/** The key of the remote-users ConfigMap (the file the Deployment passes as --cluster-users-config). */
export const USERS_KEY = 'users.yaml';

/** The keys a connect writes into the reading cluster's kvstoremesh Secret for remote `name` (Cilium's). */
export function remoteSecretKeys(name: string): {
  config: string;
  ca: string;
  cert: string;
  key: string;
} {
  return {
    config: name,
    ca: `${name}.etcd-client-ca.crt`,
    cert: `${name}.etcd-client.crt`,
    key: `${name}.etcd-client.key`,
  };
}

/** A Kubernetes cluster's mesh identity and access, read from its objects. */
export interface KubernetesMeshInfo {
  clusterName: string;
  clusterId: number;
  maxConnectedClusters: number;
  /** Empty when the mesh is not enabled. */
  accessEndpoints: string[];
}

interface SecretLike extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}
interface ConfigMapLike extends KubeObject {
  data?: Record<string, string>;
}

const labels = (name: string) => ({
  'app.kubernetes.io/part-of': 'tendril',
  'app.kubernetes.io/name': name,
});

async function readSecret(
  t: KubernetesTarget,
  name: string,
): Promise<{ obj: SecretLike | undefined; files: Record<string, string> }> {
  const obj = (await t.read('v1', 'Secret', name, K8S_NAMESPACE)) as SecretLike | undefined;
  const files: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj?.data ?? {}))
    files[k] = Buffer.from(v, 'base64').toString('utf8');
  return { obj, files };
}

function secretObject(
  name: string,
  type: 'Opaque' | 'kubernetes.io/tls',
  files: Record<string, string>,
  live: KubeObject | undefined,
): SecretLike {
  const data: Record<string, string> = {};
  for (const k of Object.keys(files).sort())
    data[k] = Buffer.from(files[k]!, 'utf8').toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name,
      namespace: K8S_NAMESPACE,
      labels: labels(name),
      ...(live?.metadata.resourceVersion ? { resourceVersion: live.metadata.resourceVersion } : {}),
    },
    type,
    data,
  };
}

/**
 * Reads an object, changes it, writes it at the version read; retries on 409.
 * `change` returns the object to write, or undefined to write nothing.
 */
async function readModifyWrite<T>(
  what: string,
  step: () => Promise<{ write: KubeObject | undefined; result: T }>,
  t: KubernetesTarget,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const { write, result } = await step();
    if (!write) return result;
    try {
      await t.write(write);
      return result;
    } catch (err) {
      if (!(err instanceof ApiError) || err.httpCode !== 409) throw err;
      if (attempt >= MAX_CONFLICT_RETRIES)
        throw new TendrilError(
          'CLUSTERMESH_CONFLICT',
          `${what} on ${t.name} kept changing under this command (${attempt + 1} conflicts)`,
          {
            hint: 'another command is changing it: run this one again when it is done',
            cause: err,
          },
        );
    }
  }
}

/**
 * The cluster's name, ID and mesh access from the `tendril-config` ConfigMap.
 * @throws TendrilError CLUSTERMESH_NOT_INSTALLED when it names no cluster.
 */
export async function kubernetesMeshInfo(t: KubernetesTarget): Promise<KubernetesMeshInfo> {
  const cfg = await t.readDaemonConfig();
  const name = cfg['cluster-name'];
  const id = Number(cfg['cluster-id']);
  if (!name || !Number.isInteger(id) || id < 1 || id > 511) {
    throw new TendrilError(
      'CLUSTERMESH_NOT_INSTALLED',
      `Tendril is not installed on ${t.name}: the ${NAMES.config} ConfigMap in ${K8S_NAMESPACE} has no valid cluster-name and cluster-id`,
      {
        hint: 'install first: `tendril install --dry-run -o yaml --cluster-name NAME --cluster-id N | kubectl apply -f -`',
      },
    );
  }
  validateClusterName(name);
  const max = Number(cfg[MESH_CONFIG_KEYS.maxConnectedClusters] ?? DEFAULT_MAX_CONNECTED_CLUSTERS);
  return {
    clusterName: name,
    clusterId: id,
    maxConnectedClusters: Number.isInteger(max) ? max : DEFAULT_MAX_CONNECTED_CLUSTERS,
    accessEndpoints: (cfg[MESH_CONFIG_KEYS.accessEndpoints] ?? '')
      .split(/[,\s]+/)
      .map((e) => e.trim())
      .filter(Boolean),
  };
}

/** The cluster's mesh CA from its Secret; undefined when enable has not made it. */
export async function readKubernetesCA(
  t: KubernetesTarget,
): Promise<CertificateAuthority | undefined> {
  const { files } = await readSecret(t, SECRET_NAMES.ca);
  if (!files['ca.crt'] || !files['ca.key']) return undefined;
  return loadCA(files['ca.crt'], files['ca.key']);
}

/**
 * The addresses other clusters reach the clustermesh-apiserver Service at:
 * a LoadBalancer's ingress, or every node's InternalIP with the NodePort.
 * @throws TendrilError CLUSTERMESH_NO_ACCESS_ENDPOINT when the Service gives none.
 */
async function serviceEndpoints(t: KubernetesTarget): Promise<string[]> {
  interface ServiceLike {
    spec?: { type?: string; ports?: Array<{ port?: number; nodePort?: number }> };
    status?: { loadBalancer?: { ingress?: Array<{ ip?: string; hostname?: string }> } };
  }
  interface NodeLike {
    status?: { addresses?: Array<{ type: string; address: string }> };
  }
  const svc = (await t.read('v1', 'Service', NAMES.meshApiserver, K8S_NAMESPACE)) as
    ServiceLike | undefined;
  const port = svc?.spec?.ports?.[0];
  let out: string[] = [];
  if (svc?.spec?.type === 'LoadBalancer') {
    out = (svc.status?.loadBalancer?.ingress ?? [])
      .map((i) => i.ip ?? i.hostname)
      .filter((h): h is string => !!h)
      .map((h) => `https://${h}:${port?.port ?? PORTS.etcdClient}`);
  } else if (svc?.spec?.type === 'NodePort' && port?.nodePort) {
    for (const n of await t.nodes()) {
      const node = (await t.read('v1', 'Node', n)) as NodeLike | undefined;
      const ip = node?.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
      if (ip) out.push(`https://${ip}:${port.nodePort}`);
    }
  }
  if (out.length === 0)
    throw new TendrilError(
      'CLUSTERMESH_NO_ACCESS_ENDPOINT',
      `cannot tell how other clusters reach the ${NAMES.meshApiserver} Service of ${t.name} (${svc ? `type ${svc.spec?.type ?? '?'} with no address yet` : 'no such Service'})`,
      {
        hint: 'apply the manifests (`tendril install --dry-run -o yaml ... | kubectl apply -f -`) or pass --access-endpoint https://ADDRESS:PORT',
      },
    );
  return out;
}

function checkEndpoints(endpoints: string[]): URL[] {
  return endpoints.map((e) => {
    let u: URL;
    try {
      u = new URL(e);
    } catch (err) {
      throw new TendrilError('CLUSTERMESH_BAD_ENDPOINT', `"${e}" is not a URL`, {
        hint: 'pass --access-endpoint https://ADDRESS:PORT',
        cause: err,
      });
    }
    if (u.protocol !== 'https:' || !u.port)
      throw new TendrilError(
        'CLUSTERMESH_BAD_ENDPOINT',
        `access endpoint "${e}" is not https://ADDRESS:PORT`,
        {
          hint: 'the mesh etcd speaks mutual TLS only: pass --access-endpoint https://ADDRESS:PORT',
        },
      );
    return u;
  });
}

/** Options of {@link enableKubernetesMesh}. */
export interface KubernetesEnableOptions {
  /** How other clusters reach its etcd (default: from the clustermesh-apiserver Service). */
  accessEndpoints?: string[];
  serviceType?: 'NodePort' | 'LoadBalancer';
  say?: (line: string) => void;
}

/** What {@link enableKubernetesMesh} did. */
export interface KubernetesEnableResult {
  clusterName: string;
  clusterId: number;
  accessEndpoints: string[];
  caCreated: boolean;
  caFingerprint: string;
}

/**
 * Enables the mesh on a Kubernetes cluster: makes its CA (once; the Secret
 * tendril-ca), issues the etcd server and admin certificates into their
 * Secrets, and sets the access endpoints and service type in tendril-config.
 * Idempotent: re-running re-issues the server and admin certificates from
 * the same CA (connected clusters keep working).
 * @throws TendrilError CLUSTERMESH_NOT_INSTALLED, CLUSTERMESH_NO_ACCESS_ENDPOINT,
 *   CLUSTERMESH_BAD_ENDPOINT; ApiError (e.g. 403 without the right to write Secrets).
 */
export async function enableKubernetesMesh(
  t: KubernetesTarget,
  o: KubernetesEnableOptions = {},
): Promise<KubernetesEnableResult> {
  const say = o.say ?? (() => {});
  const info = await kubernetesMeshInfo(t);
  const endpoints = o.accessEndpoints?.length ? o.accessEndpoints : await serviceEndpoints(t);
  const urls = checkEndpoints(endpoints);
  const hosts = urls.map((u) => u.hostname.replace(/^\[|\]$/g, ''));
  const { ca, created } = await readModifyWrite(
    `Secret ${SECRET_NAMES.ca}`,
    async () => {
      const { obj, files } = await readSecret(t, SECRET_NAMES.ca);
      if (files['ca.crt'] && files['ca.key'])
        return {
          write: undefined,
          result: { ca: await loadCA(files['ca.crt'], files['ca.key']), created: false },
        };
      const made = await createCA({ commonName: `Tendril Cluster Mesh CA (${info.clusterName})` });
      return {
        write: secretObject(
          SECRET_NAMES.ca,
          'Opaque',
          { 'ca.crt': made.certPEM, 'ca.key': made.keyPEM },
          obj,
        ),
        result: { ca: made, created: true },
      };
    },
    t,
  );
  if (created)
    say(`🔑 Created ${info.clusterName}'s mesh CA (Secret ${K8S_NAMESPACE}/${SECRET_NAMES.ca})`);
  const server = await issueServerCert(ca, {
    ips: hosts.filter((h) => isIP(h)),
    dnsNames: [
      ...hosts.filter((h) => !isIP(h)),
      `${NAMES.meshApiserver}.${K8S_NAMESPACE}.svc`,
      `${NAMES.meshApiserver}.${K8S_NAMESPACE}.svc.cluster.local`,
    ],
  });
  const admin = await issueClientCert(ca, ROOT_USER);
  for (const [name, kp] of [
    [SECRET_NAMES.server, server],
    [SECRET_NAMES.admin, admin],
  ] as const) {
    await readModifyWrite(
      `Secret ${name}`,
      async () => {
        const { obj } = await readSecret(t, name);
        return {
          write: secretObject(
            name,
            'kubernetes.io/tls',
            { 'ca.crt': ca.certPEM, 'tls.crt': kp.certPEM, 'tls.key': kp.keyPEM },
            obj,
          ),
          result: undefined,
        };
      },
      t,
    );
  }
  say(
    `🔑 Issued the etcd server and admin certificates (Secrets ${SECRET_NAMES.server}, ${SECRET_NAMES.admin})`,
  );
  await readModifyWrite(
    `ConfigMap ${NAMES.config}`,
    async () => {
      const live = (await t.read('v1', 'ConfigMap', NAMES.config, K8S_NAMESPACE)) as
        ConfigMapLike | undefined;
      if (!live) throw new Error(`ConfigMap ${NAMES.config} disappeared`);
      const data = live.data ?? {};
      return {
        write: {
          ...live,
          data: {
            ...data,
            [MESH_CONFIG_KEYS.accessEndpoints]: endpoints.join(','),
            [MESH_CONFIG_KEYS.serviceType]:
              o.serviceType ?? data[MESH_CONFIG_KEYS.serviceType] ?? 'NodePort',
          },
        } as ConfigMapLike,
        result: undefined,
      };
    },
    t,
  );
  say(
    `✅ Cluster mesh enabled on ${t.name}: ${info.clusterName} (ID ${info.clusterId}) at ${endpoints.join(', ')}; the clustermesh-apiserver pod picks the Secrets up when it (re)starts: \`kubectl -n ${K8S_NAMESPACE} rollout restart deploy/${NAMES.meshApiserver}\``,
  );
  return {
    clusterName: info.clusterName,
    clusterId: info.clusterId,
    accessEndpoints: endpoints,
    caCreated: created,
    caFingerprint: ca.fingerprint,
  };
}

/** The users of a users.yaml text (Cilium's shape). */
function parseUsers(text: string | undefined): { name: string; role: string }[] {
  const doc = (text ? parse(text) : undefined) as { users?: unknown } | undefined;
  const users = Array.isArray(doc?.users) ? doc.users : [];
  return users
    .filter((u): u is { name: string; role?: string } => typeof u?.name === 'string')
    .map((u) => ({ name: u.name, role: u.role ?? 'remote' }));
}

const userOf = (cluster: string) => (user: string) =>
  user === remoteClientCN(cluster) || user.startsWith(`${remoteClientCN(cluster)}.`);

/**
 * Changes the users of a cluster's remote-users ConfigMap (creating it when
 * absent); returns what `change` returns.
 */
async function changeUsers<T>(
  t: KubernetesTarget,
  change: (users: { name: string; role: string }[]) => {
    users: { name: string; role: string }[];
    result: T;
  },
): Promise<T> {
  return readModifyWrite(
    `ConfigMap ${NAMES.meshRemoteUsers}`,
    async () => {
      const live = (await t.read('v1', 'ConfigMap', NAMES.meshRemoteUsers, K8S_NAMESPACE)) as
        ConfigMapLike | undefined;
      const before = parseUsers(live?.data?.[USERS_KEY]);
      const { users, result } = change(before);
      users.sort((a, b) => a.name.localeCompare(b.name));
      if (live && JSON.stringify(users) === JSON.stringify(before))
        return { write: undefined, result };
      const cm: ConfigMapLike = {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name: NAMES.meshRemoteUsers,
          namespace: K8S_NAMESPACE,
          labels: labels(NAMES.meshRemoteUsers),
          ...(live?.metadata.resourceVersion
            ? { resourceVersion: live.metadata.resourceVersion }
            : {}),
        },
        data: { [USERS_KEY]: stringify({ users }) },
      };
      return { write: cm, result };
    },
    t,
  );
}

/** Changes the kvstoremesh Secret's files (creating it when absent). */
async function changeRemotes(
  t: KubernetesTarget,
  change: (files: Record<string, string>) => Record<string, string>,
): Promise<void> {
  await readModifyWrite(
    `Secret ${SECRET_NAMES.kvstoremesh}`,
    async () => {
      const { obj, files } = await readSecret(t, SECRET_NAMES.kvstoremesh);
      const next = change({ ...files });
      if (
        obj &&
        JSON.stringify(Object.entries(next).sort()) === JSON.stringify(Object.entries(files).sort())
      )
        return { write: undefined, result: undefined };
      return {
        write: secretObject(SECRET_NAMES.kvstoremesh, 'Opaque', next, obj),
        result: undefined,
      };
    },
    t,
  );
}

function checkKubernetesPair(a: KubernetesMeshInfo, b: KubernetesMeshInfo, an: string, bn: string) {
  if (a.clusterName === b.clusterName)
    throw new ConnectRefusedError(
      `cannot connect ${an} and ${bn}: both are named "${a.clusterName}"; cluster names must be unique in a mesh`,
      'reinstall one of them with another --cluster-name',
    );
  if (a.clusterId === b.clusterId)
    throw new ConnectRefusedError(
      `cannot connect ${an} and ${bn}: both have cluster ID ${a.clusterId}; cluster IDs must be unique in a mesh`,
      'reinstall one of them with another --cluster-id',
    );
  if (a.maxConnectedClusters !== b.maxConnectedClusters)
    throw new ConnectRefusedError(
      `cannot connect ${an} and ${bn}: maxConnectedClusters differs (${a.maxConnectedClusters} and ${b.maxConnectedClusters})`,
      'set the same max-connected-clusters in both clusters',
    );
}

async function requireEnabled(t: KubernetesTarget): Promise<{
  info: KubernetesMeshInfo;
  ca: CertificateAuthority;
}> {
  const info = await kubernetesMeshInfo(t);
  const ca = await readKubernetesCA(t);
  if (!ca || info.accessEndpoints.length === 0)
    throw new TendrilError(
      'CLUSTERMESH_NOT_ENABLED',
      `cluster mesh is not enabled on ${t.name} (${!ca ? `no Secret ${K8S_NAMESPACE}/${SECRET_NAMES.ca}` : `no ${MESH_CONFIG_KEYS.accessEndpoints} in ${NAMES.config}`})`,
      { hint: 'run `tendril clustermesh enable --context CONTEXT` for it first' },
    );
  return { info, ca };
}

/**
 * Lets `from` read `to`: `to`'s CA issues a client certificate for the etcd
 * user `remote-<from>.<grant>` (a still connected pair keeps its grant), `to`'s
 * remote-users ConfigMap admits that user, and `from`'s kvstoremesh Secret
 * gets `to`'s etcd config and the certificate. No CA key leaves `to`.
 * @returns the etcd user granted.
 */
export async function connectKubernetesDirection(
  from: KubernetesTarget,
  to: KubernetesTarget,
): Promise<string> {
  const a = await requireEnabled(from);
  const b = await requireEnabled(to);
  checkKubernetesPair(a.info, b.info, from.name, to.name);
  const user = await changeUsers(to, (users) => {
    const keep = users.find((u) => userOf(a.info.clusterName)(u.name) && u.name.includes('.'));
    const cn = keep?.name ?? grantCN(a.info.clusterName);
    return {
      users: [
        ...users.filter((u) => !userOf(a.info.clusterName)(u.name)),
        { name: cn, role: 'remote' },
      ],
      result: cn,
    };
  });
  const kp = await issueClientCert(b.ca, user);
  const k = remoteSecretKeys(b.info.clusterName);
  await changeRemotes(from, (files) => ({
    ...files,
    [k.config]: renderRemoteEtcdConfig({
      name: b.info.clusterName,
      endpoints: b.info.accessEndpoints,
      // file names in the same Secret: resolved against the directory it is mounted at
      trustedCAFile: k.ca,
      certFile: k.cert,
      keyFile: k.key,
    }),
    [k.ca]: b.ca.certPEM,
    [k.cert]: kp.certPEM,
    [k.key]: kp.keyPEM,
  }));
  return user;
}

/**
 * Stops `from` reading `to`: removes `to`'s four keys from `from`'s
 * kvstoremesh Secret and `from`'s users from `to`'s remote-users ConfigMap
 * (its clustermesh-apiserver then deletes the etcd user). Absent ones are fine.
 */
export async function disconnectKubernetesDirection(
  from: KubernetesTarget,
  to: KubernetesTarget,
): Promise<void> {
  const a = await kubernetesMeshInfo(from);
  const b = await kubernetesMeshInfo(to);
  const k = remoteSecretKeys(b.clusterName);
  await changeRemotes(from, (files) => {
    for (const key of Object.values(k)) delete files[key];
    return files;
  });
  await changeUsers(to, (users) => ({
    users: users.filter((u) => !userOf(a.clusterName)(u.name)),
    result: undefined,
  }));
}

/** Connects a source with destinations in a mode (the pairs connect.ts's connectionPairs makes). */
export async function connectKubernetesClusters(
  source: KubernetesTarget,
  destinations: KubernetesTarget[],
  o: { mode?: ConnectionMode; say?: (line: string) => void } = {},
): Promise<[string, string][]> {
  const say = o.say ?? (() => {});
  const pairs = connectionPairs(source, destinations, o.mode ?? 'bidirectional');
  // every pair checked before anything changes
  for (const [x, y] of pairs) {
    const [a, b] = [await requireEnabled(x), await requireEnabled(y)];
    checkKubernetesPair(a.info, b.info, x.name, y.name);
  }
  for (const [x, y] of pairs) {
    const user = await connectKubernetesDirection(x, y);
    say(`🔑 ${x.name} can now read ${y.name} (etcd user ${user})`);
  }
  say(
    `✅ Connected; the clustermesh-apiservers see the Secret and ConfigMap when the kubelet refreshes their volumes (about a minute)`,
  );
  return pairs.map(([x, y]) => [x.name, y.name]);
}

/** Disconnects the pairs connect would make. */
export async function disconnectKubernetesClusters(
  source: KubernetesTarget,
  destinations: KubernetesTarget[],
  o: { mode?: ConnectionMode; say?: (line: string) => void } = {},
): Promise<[string, string][]> {
  const say = o.say ?? (() => {});
  const pairs = connectionPairs(source, destinations, o.mode ?? 'bidirectional');
  for (const [x, y] of pairs) {
    await disconnectKubernetesDirection(x, y);
    say(`🔌 ${x.name} no longer reads ${y.name}`);
  }
  return pairs.map(([x, y]) => [x.name, y.name]);
}

/**
 * The Kubernetes target of a CLI context, or undefined when the context is a
 * lab cluster on this machine (the lab path then applies). The context's
 * server and credentials come from Tendril's config file (kubeconfig format).
 * @throws TendrilError config.* for an unknown context.
 */
export function kubernetesTargetOf(context?: string): KubernetesTarget | undefined {
  try {
    resolveInstallTarget(context);
    return undefined;
  } catch (err) {
    if (!(err instanceof TendrilError) || err.code !== 'INSTALL_NOT_A_LAB_CLUSTER') throw err;
    return KubernetesTarget.fromKubeconfig(configPath(), resolveContext(context).contextName);
  }
}

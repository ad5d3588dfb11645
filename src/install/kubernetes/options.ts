/**
 * The options every Kubernetes manifest of Tendril is rendered from, their
 * defaults and validation, and the one function that turns them into the
 * daemons' settings (the data of the `tendril-config` ConfigMap, which is
 * also what the lab writes into each daemon's `--config-dir`).
 */
import { TendrilError } from '../../util/errors.js';
import { PATHS } from './names.js';
import { cidrContains, formatCIDR, parseCIDR } from '../../util/ipv4.js';
import { parseSettings, validateClusterId, validateClusterName } from '../install-state.js';

/** How the clustermesh-apiserver's etcd is exposed to the other clusters (as `clustermesh enable --service-type`). */
export type MeshServiceType = 'NodePort' | 'LoadBalancer' | 'ClusterIP';

/** The clustermesh-apiserver part of a render. */
export interface MeshManifestOptions {
  serviceType: MeshServiceType;
  /** The NodePort when serviceType is NodePort (default 32379, as in the lab). */
  nodePort?: number;
}

/** Validated options of a render. Build them with {@link resolveManifestOptions}. */
export interface ManifestOptions {
  /** The cluster's name in the mesh (`--cluster-name`). */
  clusterName: string;
  /** 1..255 (`--cluster-id`). */
  clusterId: number;
  /** The one image every container runs (Tendril's tree + node + tsx + etcd; see docs/kubernetes.md). */
  image: string;
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  /** Namespace of every namespaced object (kube-system, as Cilium). */
  namespace: string;
  /** The cluster's pod CIDR the operator carves node /24s from (`cluster-pool-ipv4-cidr`). */
  podCIDR: string;
  /** The cluster's service CIDR (checks `dnsServiceIP`). */
  serviceCIDR: string;
  /** A fixed ClusterIP for the tendril-dns Service (default: the API server assigns one). */
  dnsServiceIP?: string;
  /** Every setting, normalised and with defaults (`parseSettings`). */
  settings: Record<string, string>;
  /** The API server URL the daemons' kubeconfig names (default: the in-cluster Service). */
  apiServer: string;
  /** Render the clustermesh-apiserver (its Deployment with etcd, its Service) too. */
  clustermesh?: MeshManifestOptions;
}

/** What a caller gives; everything but the cluster name has a default. */
export interface ManifestInput {
  clusterName: string;
  clusterId?: number | string;
  image?: string;
  imagePullPolicy?: string;
  namespace?: string;
  podCIDR?: string;
  serviceCIDR?: string;
  dnsServiceIP?: string;
  apiServer?: string;
  /** `--set key=value` items (validated by parseSettings). */
  set?: string[];
  /** Already-normalised settings (taken over `set`'s defaults). */
  settings?: Record<string, string>;
  clustermesh?: { serviceType?: string; nodePort?: number | string };
}

/** The image the manifests name by default: build it from a checkout (docs/kubernetes.md). */
export const DEFAULT_IMAGE = 'localhost/tendril:0.1.0';
export const DEFAULT_NAMESPACE = 'kube-system';
/** kubeadm's and kind's default pod CIDR. */
export const DEFAULT_POD_CIDR = '10.244.0.0/16';
/** kubeadm's default service CIDR. */
export const DEFAULT_SERVICE_CIDR = '10.96.0.0/12';
export const DEFAULT_MESH_NODE_PORT = 32379;
/** The in-cluster API server Service (needs kube-proxy, or another service proxy, on host-network pods). */
export const DEFAULT_API_SERVER = 'https://kubernetes.default.svc:443';

const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'] as const;
const SERVICE_TYPES: readonly MeshServiceType[] = ['NodePort', 'LoadBalancer', 'ClusterIP'];
const DNS1123_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function bad(message: string, hint: string): TendrilError {
  return new TendrilError('MANIFEST_INVALID_OPTION', message, { hint });
}

/**
 * Validates a render's input and fills in the defaults.
 * @throws TendrilError MANIFEST_INVALID_OPTION (or install.InvalidClusterName/Id/Setting from the
 *   installer's validators) naming the bad option and what it accepts.
 */
export function resolveManifestOptions(input: ManifestInput): ManifestOptions {
  const clusterName = validateClusterName(input.clusterName);
  const settings = { ...parseSettings(input.set ?? []), ...(input.settings ?? {}) };
  const clusterId = validateClusterId(
    input.clusterId ?? 1,
    Number(settings['max-connected-clusters'] ?? 255),
  );
  const image = input.image ?? DEFAULT_IMAGE;
  if (!image || /\s/.test(image))
    throw bad(`invalid image "${image}"`, 'pass --image REPOSITORY[:TAG] without spaces');
  const pull = input.imagePullPolicy ?? 'IfNotPresent';
  if (!(PULL_POLICIES as readonly string[]).includes(pull))
    throw bad(
      `invalid image pull policy "${pull}"`,
      `use one of ${PULL_POLICIES.join(', ')} (IfNotPresent for an image loaded onto the nodes)`,
    );
  const namespace = input.namespace ?? DEFAULT_NAMESPACE;
  if (!DNS1123_LABEL.test(namespace))
    throw bad(
      `invalid namespace "${namespace}"`,
      'a namespace is a DNS-1123 label, e.g. kube-system',
    );
  const podCIDR = cidr(input.podCIDR ?? DEFAULT_POD_CIDR, 'pod CIDR', '--pod-cidr');
  const serviceCIDR = cidr(
    input.serviceCIDR ?? DEFAULT_SERVICE_CIDR,
    'service CIDR',
    '--service-cidr',
  );
  if (input.dnsServiceIP !== undefined && !cidrContains(parseCIDR(serviceCIDR), input.dnsServiceIP))
    throw bad(
      `DNS service IP ${input.dnsServiceIP} is not in the service CIDR ${serviceCIDR}`,
      'choose a free address of the service CIDR, or leave it out to have one assigned',
    );
  const apiServer = input.apiServer ?? DEFAULT_API_SERVER;
  if (!/^https:\/\/[^\s/]+(:\d+)?\/?$/.test(apiServer))
    throw bad(
      `invalid API server URL "${apiServer}"`,
      'pass --k8s-api-server https://HOST:PORT (the address the nodes reach the API server at)',
    );
  const out: ManifestOptions = {
    clusterName,
    clusterId,
    image,
    imagePullPolicy: pull as ManifestOptions['imagePullPolicy'],
    namespace,
    podCIDR,
    serviceCIDR,
    settings,
    apiServer,
  };
  if (input.dnsServiceIP !== undefined) out.dnsServiceIP = input.dnsServiceIP;
  if (input.clustermesh) {
    const t = input.clustermesh.serviceType ?? 'NodePort';
    if (!(SERVICE_TYPES as readonly string[]).includes(t))
      throw bad(`invalid service type "${t}"`, `use one of ${SERVICE_TYPES.join(', ')}`);
    const mesh: MeshManifestOptions = { serviceType: t as MeshServiceType };
    if (t === 'NodePort') {
      const p = Number(input.clustermesh.nodePort ?? DEFAULT_MESH_NODE_PORT);
      if (!Number.isInteger(p) || p < 1 || p > 65535)
        throw bad(
          `invalid node port "${input.clustermesh.nodePort}"`,
          "a port of the cluster's NodePort range (default 30000-32767)",
        );
      mesh.nodePort = p;
    }
    out.clustermesh = mesh;
  }
  return out;
}

function cidr(text: string, what: string, flag: string): string {
  try {
    return formatCIDR(parseCIDR(text, what));
  } catch (err) {
    throw new TendrilError('MANIFEST_INVALID_OPTION', `invalid ${what} "${text}"`, {
      hint: `pass ${flag} as an IPv4 CIDR like 10.244.0.0/16`,
      cause: err,
    });
  }
}

/** Install settings whose config-dir key is Cilium's name rather than the `--set` name. */
export const SETTING_CONFIG_KEYS: Readonly<Record<string, string>> = {
  'lb-algorithm': 'bpf-lb-algorithm',
  'hubble-enabled': 'enable-hubble',
};

/**
 * The cluster-wide settings of an install, one key per setting, in Cilium's
 * `cilium-config` shape: `cluster-name`, `cluster-id`, `cluster-pool-ipv4-cidr`
 * and every `--set` setting with defaults (`lb-algorithm` as Cilium's
 * `bpf-lb-algorithm`). Every daemon's config dir holds these, in the lab and
 * on Kubernetes alike: the lab's config-dir writer takes them from here.
 * Keys sorted, values strings.
 */
export function clusterConfigData(
  o: Pick<ManifestOptions, 'clusterName' | 'clusterId' | 'podCIDR' | 'settings'>,
): Record<string, string> {
  const all: Record<string, string> = {};
  for (const [k, v] of Object.entries(o.settings)) all[SETTING_CONFIG_KEYS[k] ?? k] = v;
  all['cluster-name'] = o.clusterName;
  all['cluster-id'] = String(o.clusterId);
  all['cluster-pool-ipv4-cidr'] = o.podCIDR;
  return sorted(all);
}

/**
 * The agent's node-local keys as they are on every node of a real cluster
 * (hostPath mounts of the DaemonSet). The lab writes its own per-node values
 * for the same keys.
 */
export const KUBERNETES_NODE_CONFIG: Readonly<Record<string, string>> = {
  'bpf-root': PATHS.bpfRoot,
  'cgroup-root': PATHS.cgroupRoot,
  'socket-path': PATHS.agentSocket,
  'state-dir': PATHS.stateDir,
};

/**
 * The data of the `tendril-config` ConfigMap, which every daemon mounts at
 * {@link CONFIG_DIR} as its `--config-dir`: {@link clusterConfigData} plus
 * {@link KUBERNETES_NODE_CONFIG}. Keys sorted, values strings.
 */
export function configMapData(
  o: Pick<ManifestOptions, 'clusterName' | 'clusterId' | 'podCIDR' | 'settings'>,
): Record<string, string> {
  return sorted({ ...clusterConfigData(o), ...KUBERNETES_NODE_CONFIG });
}

function sorted(all: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(all).sort()) out[k] = all[k]!;
  return out;
}

/** Where every daemon's container sees the `tendril-config` ConfigMap (its `--config-dir`). */
export const CONFIG_DIR = PATHS.configDir;

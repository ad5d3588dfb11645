/**
 * Names, paths and command lines shared by Tendril's Kubernetes manifests,
 * written once. The paths are inside the one image every container runs
 * (docs/kubernetes.md says how to build it) or on the node (hostPath).
 */
/** Where the image holds a checkout of Tendril with node_modules (tsx included); containers run there. */
export const IMAGE_ROOT = '/opt/tendril';

/** Object names (Cilium's with "cilium" -> "tendril", and Cilium's own names where Tendril keeps them). */
export const NAMES = {
  config: 'tendril-config',
  kubeconfig: 'tendril-kubeconfig',
  cniConfig: 'tendril-cni-config',
  agent: 'tendril-agent',
  operator: 'tendril-operator',
  dns: 'tendril-dns',
  meshApiserver: 'clustermesh-apiserver',
  meshEtcdConfig: 'clustermesh-apiserver-etcd-config',
  /** Cilium's users.yaml: which remote clusters may read the clustermesh etcd (optional; `connect` fills it). */
  meshRemoteUsers: 'clustermesh-remote-users',
} as const;

/** The Secrets `clustermesh enable` / `connect` fill from the mesh CA (see {@link MESH_SECRETS}). */
export const SECRET_NAMES = {
  ca: 'tendril-ca',
  server: 'clustermesh-apiserver-server-cert',
  admin: 'clustermesh-apiserver-admin-cert',
  agentMesh: 'tendril-clustermesh',
  kvstoremesh: 'tendril-kvstoremesh',
} as const;

/** What each mesh Secret holds, its keys and who mounts it. STABLE names. */
export const MESH_SECRETS: ReadonlyArray<{
  name: string;
  type: 'Opaque' | 'kubernetes.io/tls';
  keys: readonly string[];
  /** Keys are file names chosen at connect time (one etcd config per cluster, plus its certificates). */
  perCluster?: boolean;
  description: string;
}> = [
  {
    name: SECRET_NAMES.ca,
    type: 'Opaque',
    keys: ['ca.crt', 'ca.key'],
    description: "the mesh CA: signs the etcd server's and every client's certificate",
  },
  {
    name: SECRET_NAMES.server,
    type: 'kubernetes.io/tls',
    keys: ['ca.crt', 'tls.crt', 'tls.key'],
    description:
      "the clustermesh-apiserver etcd's serving certificate (SANs: the access addresses, clustermesh-apiserver.<ns>.svc)",
  },
  {
    name: SECRET_NAMES.admin,
    type: 'kubernetes.io/tls',
    keys: ['ca.crt', 'tls.crt', 'tls.key'],
    description:
      'the clustermesh-apiserver\'s client certificate for its own etcd (the etcd "root" user)',
  },
  {
    name: SECRET_NAMES.agentMesh,
    type: 'Opaque',
    keys: [],
    perCluster: true,
    description:
      "the agents' --clustermesh-config directory: an etcd config for the local clustermesh-apiserver (kvstoremesh cache) and its client certificate",
  },
  {
    name: SECRET_NAMES.kvstoremesh,
    type: 'Opaque',
    keys: [],
    perCluster: true,
    description:
      "the clustermesh-apiserver's --clustermesh-config directory: one etcd config per connected remote cluster, with the client certificate that cluster's CA issued",
  },
];

/** Paths inside the containers. */
export const PATHS = {
  configDir: '/etc/tendril/config',
  kubeconfigDir: '/etc/tendril/kubeconfig',
  cniConfigDir: '/etc/tendril/cni',
  /** The agent's state, socket and CNI log on the node (hostPath), shared with the CNI plugin. */
  runDir: '/var/run/tendril',
  stateDir: '/var/run/tendril/state',
  agentSocket: '/var/run/tendril/agent.sock',
  cniLog: '/var/run/tendril/cni.log',
  bpffs: '/sys/fs/bpf',
  bpfRoot: '/sys/fs/bpf/tendril',
  cgroupRoot: '/sys/fs/cgroup',
  netns: '/var/run/netns',
  /** Where the install-cni init container sees the node's /opt/cni/bin, /etc/cni/net.d and /opt. */
  hostCniBin: '/host/opt/cni/bin',
  hostCniConf: '/host/etc/cni/net.d',
  hostOpt: '/host/opt',
  /** Where the CNI plugin's runtime (node + Tendril's tree) lands on the node. */
  nodeRuntime: '/opt/tendril',
  clustermeshConfig: '/var/lib/tendril/clustermesh',
  etcdSecrets: '/var/lib/etcd-secrets',
  adminCert: '/var/lib/tendril/etcd-admin',
  etcdConfig: '/etc/tendril/etcd',
  remoteUsers: '/etc/tendril/clustermesh-users',
  etcdData: '/var/run/etcd',
} as const;

/** Ports. */
export const PORTS = {
  dns: 53,
  etcdClient: 2379,
  etcdMetrics: 2381,
  etcdPeer: 2390,
} as const;

/**
 * The argv that runs one of Tendril's daemons in the image: node with tsx's
 * loader (the sources are TypeScript; there is no build step), from IMAGE_ROOT.
 */
export function daemonCommand(entry: string, args: string[], nodeFlags: string[] = []): string[] {
  return ['node', ...nodeFlags, '--import', 'tsx', entry, ...args];
}

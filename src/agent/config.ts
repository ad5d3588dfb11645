/**
 * How an agent learns its configuration, the way Cilium's does:
 *
 *   agent --config-dir DIR --kubeconfig FILE [--clustermesh-config DIR] [--node-name NAME]
 *
 * DIR holds one file per setting (the shape of the `cilium-config` ConfigMap
 * mounted as a volume; AGENT_CONFIG_KEYS lists them). The node's name comes
 * from --node-name, else $K8S_NODE_NAME (as a DaemonSet's downward API sets
 * it), else the key `node-name`; its address and pod CIDR from its Node
 * object (status.addresses InternalIP, spec.podCIDR) unless the keys
 * `node-ip` / `pod-cidr` say them. Nothing here knows about a lab.
 *
 * A JSON file (--config, AgentFileConfig) is still read for tests that run
 * an agent in their own namespaces without an API server.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { TendrilError } from '../util/errors.js';
import { readConfigDir, type ConfigDir } from '../util/config-dir.js';
import { podMtu } from '../datapath/linux/routes.js';
import {
  IPCACHE_MAX_ENTRIES,
  IPCACHE_MAX_ENTRIES_MAX,
  IPCACHE_MAX_ENTRIES_MIN,
} from '../datapath/linux/maps.js';
import type { EnforcementMode } from '../policy/engine.js';
import type { AgentConfig, NodeInfo } from './agent.js';
import type { LBAlgorithm, RoutingMode } from '../datapath/types.js';

/** Every key an agent's config directory may hold, with what it means. */
export const AGENT_CONFIG_KEYS: Readonly<Record<string, string>> = {
  'cluster-name': "the cluster's name in the mesh (required)",
  'cluster-id': '1..255 (1..511 with max-connected-clusters=511), unique in the mesh (required)',
  'max-connected-clusters':
    '255 or 511: bits of the identity for the cluster ID (8 or 9), the same in every cluster; default 255',
  'routing-mode': 'native (kernel routes) or tunnel (VXLAN); default native',
  mtu: 'underlay MTU; pods get it (minus 50 in tunnel mode); default 1500',
  'bpf-lb-algorithm': 'random or maglev; default random',
  'policy-enforcement': 'default, always or never (network policy); default default',
  'policy-default-local-cluster':
    'true: policy selectors without the cluster label match the local cluster only; default true',
  'bpf-ipcache-map-max':
    'max entries of the BPF ipcache map (every local and remote endpoint, node and CIDR); default 65536',
  'bpf-root': "directory under bpffs for the agent's pinned maps (required)",
  'cgroup-root': 'cgroup v2 directory the socket LB programs attach to (required)',
  'state-dir': "the agent's state files (ipam.json, endpoints.json) (required)",
  'socket-path': "the agent's API socket (CNI and status) (required)",
  'node-name': 'this node, when neither --node-name nor $K8S_NODE_NAME says it',
  'node-ip': "this node's address (default: the Node object's InternalIP)",
  'pod-cidr': "this node's pod CIDR (default: the Node object's spec.podCIDR)",
  'prometheus-serve-addr': "the agent's metrics, [host]:port; default :9962; empty turns them off",
  'hubble-metrics-server':
    "Hubble's flow metrics, [host]:port; default :9965; empty turns them off",
  'enable-hubble':
    'true: the datapath writes flow events, the agent keeps flows and serves the Observer API (Hubble); default true',
  'hubble-flow-buffer-size': 'flows the agent keeps (its ring), 1..1048575; default 4095',
  'bpf-events-ring-size':
    'bytes of the BPF ring buffer of flow events, a power of 2 >= 4096; default 1048576',
  'hubble-socket-path':
    'the node-local Observer API socket (default: hubble.sock beside socket-path)',
  'hubble-listen-address':
    'TCP address of the Observer API with mutual TLS (default :4244; empty: off)',
  'hubble-tls-cert-file': "this node's certificate from the mesh CA (no certificate: TCP is off)",
  'hubble-tls-key-file': 'its key',
  'hubble-tls-client-ca-files': 'the CA client certificates must chain to (the mesh CA)',
};

/** What the config directory gives, before the Node object fills in address and pod CIDR. */
export interface AgentDirConfig extends Omit<AgentConfig, 'nodeIP' | 'podCIDR'> {
  nodeIP?: string;
  podCIDR?: string;
}

/**
 * Reads an agent's settings from a config directory.
 * @throws TendrilError CONFIG_DIR_UNREADABLE, CONFIG_MISSING_KEY, CONFIG_BAD_VALUE,
 *   AGENT_NO_NODE_NAME.
 */
export function agentConfigFromDir(
  dir: string | ConfigDir,
  o: { nodeName?: string; apiServerURL?: string } = {},
): AgentDirConfig {
  const c = typeof dir === 'string' ? readConfigDir(dir) : dir;
  const node = o.nodeName || process.env.K8S_NODE_NAME || c.get('node-name');
  if (!node) {
    throw new TendrilError('AGENT_NO_NODE_NAME', `agent: which node is this? (config ${c.dir})`, {
      hint: 'pass --node-name NAME, set K8S_NODE_NAME, or write the key node-name',
    });
  }
  const routingMode = c.oneOf<RoutingMode>('routing-mode', ['native', 'tunnel'], 'native');
  const maxConnectedClusters = Number(c.oneOf('max-connected-clusters', ['255', '511'], '255'));
  const nodeIP = c.get('node-ip');
  const podCIDR = c.get('pod-cidr');
  return {
    node,
    ...(nodeIP ? { nodeIP } : {}),
    ...(podCIDR ? { podCIDR } : {}),
    clusterName: c.string('cluster-name'),
    clusterId: c.int('cluster-id', { min: 1, max: maxConnectedClusters }),
    maxConnectedClusters,
    routingMode,
    podMtu: podMtu(routingMode, c.int('mtu', { min: 576, max: 9000, fallback: 1500 })),
    ipcacheMapMax: c.int('bpf-ipcache-map-max', {
      min: IPCACHE_MAX_ENTRIES_MIN,
      max: IPCACHE_MAX_ENTRIES_MAX,
      fallback: IPCACHE_MAX_ENTRIES,
    }),
    lbAlgorithm: c.oneOf<LBAlgorithm>('bpf-lb-algorithm', ['random', 'maglev'], 'random'),
    policyEnforcement: c.oneOf<EnforcementMode>(
      'policy-enforcement',
      ['default', 'always', 'never'],
      'default',
    ),
    policyDefaultLocalCluster: c.bool('policy-default-local-cluster', true),
    stateDir: c.string('state-dir'),
    socketPath: c.string('socket-path'),
    bpffsDir: c.string('bpf-root'),
    cgroupPath: c.string('cgroup-root'),
    ...(o.apiServerURL ? { apiServerURL: o.apiServerURL } : {}),
    hubble: {
      enabled: c.bool('enable-hubble', true),
      flowBufferSize: c.int('hubble-flow-buffer-size', { min: 1, max: 1_048_575, fallback: 4095 }),
      eventsRingBytes: ringBytes(
        c.int('bpf-events-ring-size', { min: 4096, max: 1 << 30, fallback: 1 << 20 }),
      ),
      socketPath:
        c.get('hubble-socket-path') || join(dirname(c.string('socket-path')), 'hubble.sock'),
      listenAddress: c.get('hubble-listen-address') ?? ':4244',
      ...(c.get('hubble-tls-cert-file') ? { tlsCertFile: c.get('hubble-tls-cert-file') } : {}),
      ...(c.get('hubble-tls-key-file') ? { tlsKeyFile: c.get('hubble-tls-key-file') } : {}),
      ...(c.get('hubble-tls-client-ca-files')
        ? { tlsClientCAFile: c.get('hubble-tls-client-ca-files') }
        : {}),
    },
  };
}

function ringBytes(n: number): number {
  if ((n & (n - 1)) !== 0)
    throw new TendrilError('CONFIG_BAD_VALUE', `bpf-events-ring-size ${n} is not a power of 2`, {
      hint: 'write a power of 2 of at least 4096, e.g. 1048576',
    });
  return n;
}

/** The parts of a Node object the agent reads. */
interface NodeObject {
  spec?: { podCIDR?: string; podCIDRs?: string[] };
  status?: { addresses?: Array<{ type: string; address: string }> };
}

/**
 * Fills in the node's address and pod CIDR from its Node object.
 * @throws TendrilError AGENT_NODE_INCOMPLETE when the Node lacks them.
 */
export function completeFromNode(cfg: AgentDirConfig, node: NodeObject): AgentConfig {
  const nodeIP =
    cfg.nodeIP ?? node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
  const podCIDR =
    cfg.podCIDR ?? node.spec?.podCIDR ?? node.spec?.podCIDRs?.find((x) => !x.includes(':'));
  if (!nodeIP || !podCIDR) {
    throw new TendrilError(
      'AGENT_NODE_INCOMPLETE',
      `Node ${cfg.node} has no ${!nodeIP ? 'InternalIP address' : 'spec.podCIDR'}`,
      { hint: 'is the kubelet registered? or write the keys node-ip and pod-cidr' },
    );
  }
  return { ...cfg, nodeIP, podCIDR };
}

/** Agent configuration plus what a file may add (static nodes when there is no API server). */
export interface AgentFileConfig extends AgentConfig {
  /** Nodes to route to without an API server. */
  staticNodes?: NodeInfo[];
  /** Underlay MTU (podMtu derives from it when not given). */
  mtu?: number;
}

/** Reads an agent config file (JSON with AgentConfig's fields). @throws TendrilError agent.BadConfig */
export function agentConfigFromFile(path: string): AgentFileConfig {
  let c: Partial<AgentFileConfig>;
  try {
    c = JSON.parse(readFileSync(path, 'utf8')) as Partial<AgentFileConfig>;
  } catch (err) {
    throw new TendrilError(
      'AGENT_BAD_CONFIG',
      `read agent config ${path}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  for (const k of [
    'node',
    'nodeIP',
    'podCIDR',
    'stateDir',
    'socketPath',
    'bpffsDir',
    'cgroupPath',
  ] as const) {
    if (typeof c[k] !== 'string' || !c[k])
      throw new TendrilError('AGENT_BAD_CONFIG', `agent config ${path}: "${k}" is required`);
  }
  const mode = (c.routingMode ?? 'native') as RoutingMode;
  return {
    ...(c as AgentFileConfig),
    clusterName: c.clusterName ?? 'default',
    clusterId: c.clusterId ?? 1,
    routingMode: mode,
    podMtu: c.podMtu ?? podMtu(mode, c.mtu ?? 1500),
    lbAlgorithm: c.lbAlgorithm ?? 'random',
  };
}

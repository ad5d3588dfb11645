/**
 * The agent's own Prometheus metrics (`tendril_*`, after Cilium's agent
 * metrics) on the agent's Registry, served on `prometheus-serve-addr`
 * (default :9962), and Hubble's flow metrics from the agent's flow ring on
 * `hubble-metrics-server` (default :9965).
 *
 * Gauges read the agent's status at scrape time; BPF map writes are counted
 * through the datapath's MapOpRecorder hook; the mesh source reports remote
 * clusters and propagation delays.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { setMapOpRecorder, type MapOpRecorder } from '../datapath/map-ops.js';
import type { FlowSource } from '../observe/flow.js';
import {
  attachFlowSource,
  createHubbleMetrics,
  serveMetrics,
  type HubbleMetrics,
  type MetricsServer,
} from '../observe/metrics.js';
import type { AgentStatus } from './api/types.js';
import type { RemoteClusterView } from './mesh-source.js';

/** Propagation delay buckets, seconds (1 ms .. 30 s). */
export const PROPAGATION_BUCKETS = [
  0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

/** What the agent metrics read. */
export interface AgentMetricsSources {
  status(): AgentStatus;
  /** The mesh source, when the agent follows a mesh. */
  remoteClusters?: () => RemoteClusterView[];
}

/** The agent's metrics on one Registry. */
export interface AgentMetrics {
  readonly registry: Registry;
  readonly mapOps: Counter<'map_name' | 'operation' | 'outcome'>;
  readonly propagation: Histogram<string>;
  /** The recorder to install in the datapath (setMapOpRecorder). */
  readonly mapOpRecorder: MapOpRecorder;
  /** For MeshSource's `onPropagated`. */
  observePropagation(seconds: number): void;
  /** Late binding of the mesh source (it is created after the agent starts). */
  setRemoteClusters(f: (() => RemoteClusterView[]) | undefined): void;
}

/** Registers the agent's metrics on `registry` (a new one by default). */
export function createAgentMetrics(
  src: AgentMetricsSources,
  registry: Registry = new Registry(),
): AgentMetrics {
  let remote = src.remoteClusters;
  const gauge = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    read: (g: Gauge<L>) => void,
  ): Gauge<L> =>
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        read(this);
      },
    });
  gauge('tendril_endpoint', 'Number of endpoints managed by this agent', [], (g) =>
    g.set(src.status().counts.endpoints),
  );
  gauge(
    'tendril_services_entries',
    'Number of services (frontends) the agent load-balances',
    [],
    (g) => g.set(src.status().counts.services),
  );
  gauge('tendril_identity', 'Number of security identities the agent knows', [], (g) =>
    g.set(src.status().counts.identities),
  );
  gauge('tendril_ipcache_entries', 'Number of ipcache entries (IP prefix -> identity)', [], (g) =>
    g.set(src.status().counts.ipcache),
  );
  gauge('tendril_nodes', 'Number of nodes the agent routes to', ['location'] as const, (g) => {
    const c = src.status().counts;
    g.set({ location: 'local' }, c.nodes);
    g.set({ location: 'remote' }, c.remoteNodes);
  });
  gauge(
    'tendril_reconciler_pending',
    'Desired state not yet applied to the datapath, per reconciler',
    ['reconciler'] as const,
    (g) => {
      g.reset();
      for (const r of src.status().reconcilers) g.set({ reconciler: r.name }, r.pending);
    },
  );
  gauge('tendril_agent_problems', 'Problems the agent reports in `tendril status`', [], (g) =>
    g.set(src.status().problems.length),
  );
  gauge(
    'tendril_clustermesh_remote_clusters',
    'Number of remote clusters this agent follows',
    [],
    (g) => g.set(remote?.().length ?? 0),
  );
  gauge(
    'tendril_clustermesh_remote_cluster_ready',
    'Whether a remote cluster is connected and fully synced (1) or not (0)',
    ['target_cluster'] as const,
    (g) => {
      g.reset();
      for (const c of remote?.() ?? []) g.set({ target_cluster: c.name }, c.ready ? 1 : 0);
    },
  );
  const mapOps = new Counter({
    name: 'tendril_bpf_map_ops_total',
    help: 'BPF map writes by map, operation and outcome (elements for batches)',
    labelNames: ['map_name', 'operation', 'outcome'] as const,
    registers: [registry],
  });
  const propagation = new Histogram({
    name: 'tendril_clustermesh_propagation_delay_seconds',
    help: 'Seconds from a remote cluster change reaching the agent to the agent applying it',
    buckets: PROPAGATION_BUCKETS,
    registers: [registry],
  });
  return {
    registry,
    mapOps,
    propagation,
    mapOpRecorder: {
      record: (map_name, operation, outcome, n) => mapOps.inc({ map_name, operation, outcome }, n),
    },
    observePropagation: (s) => propagation.observe(s),
    setRemoteClusters(f) {
      remote = f;
    },
  };
}

/** Config keys (agent config dir / file) of the metrics endpoints. */
export interface AgentMetricsConfig {
  /** `prometheus-serve-addr` (default ":9962"; "" turns it off). */
  prometheusServeAddr?: string;
  /** `hubble-metrics-server` (default ":9965"; "" turns it off). */
  hubbleMetricsServer?: string;
}

/** The agent's running metrics endpoints. */
export interface AgentMetricsEndpoints {
  agent: AgentMetrics;
  hubble: HubbleMetrics | undefined;
  servers: MetricsServer[];
  close(): Promise<void>;
}

/**
 * Starts the agent's metrics: its own on `prometheusServeAddr`, Hubble's
 * from `flows` on `hubbleMetricsServer`, and installs the map-op recorder.
 */
export async function startAgentMetrics(
  src: AgentMetricsSources,
  cfg: AgentMetricsConfig,
  flows?: FlowSource,
): Promise<AgentMetricsEndpoints> {
  const agent = createAgentMetrics(src);
  const servers: MetricsServer[] = [];
  const cleanups: (() => void)[] = [];
  let hubble: HubbleMetrics | undefined;
  try {
    const agentAddr = cfg.prometheusServeAddr ?? ':9962';
    if (agentAddr !== '') {
      setMapOpRecorder(agent.mapOpRecorder);
      cleanups.push(() => setMapOpRecorder(undefined));
      servers.push(await serveMetrics(agent.registry, agentAddr));
    }
    const hubbleAddr = cfg.hubbleMetricsServer ?? ':9965';
    if (flows && hubbleAddr !== '') {
      hubble = createHubbleMetrics();
      cleanups.push(attachFlowSource(hubble, flows));
      servers.push(await serveMetrics(hubble.registry, hubbleAddr));
    }
  } catch (err) {
    for (const c of cleanups) c();
    await Promise.all(servers.map((s) => s.close()));
    throw err;
  }
  return {
    agent,
    hubble,
    servers,
    async close() {
      for (const c of cleanups) c();
      await Promise.all(servers.map((s) => s.close()));
    },
  };
}

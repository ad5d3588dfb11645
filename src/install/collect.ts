/**
 * The one status collector of the install wing: `tendril status` and
 * `tendril clustermesh status` both get their data here, through the
 * ClusterTarget (target.ts), and only turn it into their own report.
 *
 *   const data = await collectClusterData(resolved, ['agents', 'operator']);
 *   data.components.agents   // [{ node, status: AgentStatus | Error }]
 *
 * Adding a component (e.g. Hubble's relay, policy counts): add its field to
 * {@link StatusComponents} and its collector to {@link COMPONENT_COLLECTORS};
 * a report asks for it by name. A collector's failure is kept as its value
 * (an Error), never thrown, so one broken part does not hide the others.
 */
import type { AgentStatus } from '../agent/api/types.js';
import type { MeshConfig } from '../clustermesh/mesh-files.js';
import type { MeshDaemonStatus } from '../clustermesh/status-api.js';
import type { OperatorStatus } from '../operator/operator.js';
import { parseDuration } from '../util/duration.js';
import type { InstallState } from './install-state.js';
import type { ClusterTarget, DaemonState } from './target.js';
import { collectHubbleSummary, type HubbleSummary } from './hubble.js';

/** What a collection needs of a cluster: its target and what was read once about it. */
export interface StatusSubject {
  context: string;
  target: Pick<
    ClusterTarget,
    'kind' | 'name' | 'daemons' | 'nodes' | 'agentStatus' | 'operatorStatus' | 'meshApiserverStatus'
  >;
  install: InstallState | undefined;
  mesh: MeshConfig | undefined;
}

/** One node's agent: its status, or why it could not be read. */
export interface AgentReading {
  node: string;
  status: AgentStatus | Error;
}

/** The components a report can ask for; each is what its collector returned. */
export interface StatusComponents {
  /** Every node's agent status API. */
  agents?: AgentReading[];
  /** The operator's last status record (undefined: none written), or why it could not be read. */
  operator?: OperatorStatus | Error | undefined;
  /** The clustermesh-apiserver's status endpoint (only when the mesh is enabled). */
  clustermesh?: MeshDaemonStatus | Error;
  /** Hubble's relay (ServerStatus summary); undefined when Tendril is not installed. */
  hubble?: HubbleSummary;
}

/** A component's name. */
export type ComponentName = keyof StatusComponents;

/** What one collection saw. */
export interface ClusterStatusData {
  context: string;
  target: { kind: 'lab' | 'kubernetes'; name: string };
  install: InstallState | undefined;
  mesh: MeshConfig | undefined;
  nodes: string[];
  /** Tendril's daemons by name. */
  daemons: Map<string, DaemonState>;
  components: StatusComponents;
}

/** A component's collector: reads through the target, returns an Error rather than throwing. */
export type ComponentCollector<K extends ComponentName> = (
  s: StatusSubject,
  seen: Pick<ClusterStatusData, 'nodes' | 'daemons'>,
) => Promise<StatusComponents[K]>;

const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));

/** Every component's collector, by name. */
export const COMPONENT_COLLECTORS: { [K in ComponentName]-?: ComponentCollector<K> } = {
  agents: (s, seen) =>
    Promise.all(
      seen.nodes.map(async (node) => ({
        node,
        status: await s.target.agentStatus(node).catch(asError),
      })),
    ),
  operator: (s) => s.target.operatorStatus().catch(asError),
  clustermesh: async (s) => {
    if (!s.mesh) return undefined;
    return s.target.meshApiserverStatus(4000).catch(asError);
  },
  hubble: async (s) => {
    if (!s.install) return undefined;
    if (s.target.kind !== 'lab')
      return {
        health: 'Warning',
        error:
          'the relay is not read on a Kubernetes target yet (use tendril hubble status --server)',
      };
    return collectHubbleSummary(s.target.name, s.install.settings);
  },
};

/**
 * Reads the daemons, the nodes and the components asked for, through the
 * subject's target. Components are read in parallel.
 * @throws only what the target's daemons() or nodes() throw (the cluster is not reachable).
 */
export async function collectClusterData(
  s: StatusSubject,
  components: readonly ComponentName[],
): Promise<ClusterStatusData> {
  const [daemonList, nodes] = await Promise.all([s.target.daemons(), s.target.nodes()]);
  const daemons = new Map(daemonList.map((d) => [d.name, d]));
  const seen = { nodes, daemons };
  const out: StatusComponents = {};
  await Promise.all(
    [...new Set(components)].map(async (name) => {
      const v = await (COMPONENT_COLLECTORS[name] as ComponentCollector<typeof name>)(s, seen);
      (out as Record<string, unknown>)[name] = v;
    }),
  );
  return {
    context: s.context,
    target: { kind: s.target.kind, name: s.target.name },
    install: s.install,
    mesh: s.mesh,
    nodes,
    daemons,
    components: out,
  };
}

/** Options of {@link pollStatus}. */
export interface PollOptions<T> {
  /** Keep collecting until ready or this long has passed (`--wait`). */
  wait: boolean;
  /** `--wait-duration` as given (e.g. "90", "90s", "5m"): parsed by util/duration.ts. */
  waitDuration: string;
  /** Called before each wait, with the report that was not ready (progress lines). */
  onWaiting?: (notReady: T) => void;
  /** Between collections (default 1000 ms). */
  intervalMs?: number;
}

/**
 * The `--wait`/`--wait-duration` loop both status commands share: collects,
 * and while waiting and not ready, collects again every second until the
 * duration has passed. Returns the last report.
 * @throws TendrilError INVALID_DURATION (from parseDuration) for a bad --wait-duration.
 */
export async function pollStatus<T>(
  collect: () => Promise<T>,
  ready: (r: T) => boolean,
  o: PollOptions<T>,
): Promise<T> {
  const deadline = Date.now() + parseDuration(o.waitDuration, { what: '--wait-duration' });
  let r = await collect();
  while (o.wait && !ready(r) && Date.now() < deadline) {
    o.onWaiting?.(r);
    await new Promise((res) => setTimeout(res, o.intervalMs ?? 1000));
    r = await collect();
  }
  return r;
}

/**
 * The service map: flows aggregated into a graph of who talks to whom.
 *
 * Nodes are workloads (namespace + the first of Flow.source/destination
 * `workloads`, else the pod name), services (Flow.destinationService) and,
 * for peers Tendril knows nothing about, the IP ("world"). Every node belongs
 * to a cluster (Flow.*.clusterName); the UI draws clusters as compound boxes.
 * A flow to a translated service makes an edge to the service node. Edges
 * are keyed by (source, destination, verdict) so forwarded and dropped
 * traffic between the same pair are separate lines, each with its rate over
 * a sliding window.
 */
import type { Flow, FlowEndpoint, VerdictName } from './flow.js';

/** Default sliding window for edge rates. */
export const DEFAULT_RATE_WINDOW_MS = 30_000;

/** One box of the map. */
export interface MapNode {
  /** Stable id: `cluster/namespace/kind/name`. */
  id: string;
  kind: 'workload' | 'pod' | 'service' | 'world';
  cluster: string;
  namespace: string;
  name: string;
}

/** One line of the map. */
export interface MapEdge {
  id: string;
  source: string;
  target: string;
  verdict: VerdictName;
  /** Flows seen since the map started. */
  total: number;
  /** Flows per second over the window. */
  rate: number;
  /** Destination ports seen (`TCP/8080`), sorted. */
  ports: string[];
  /** Last flow's time, ms since epoch. */
  lastSeenMs: number;
}

/** A snapshot of the map. */
export interface ServiceMapSnapshot {
  clusters: string[];
  nodes: MapNode[];
  edges: MapEdge[];
  windowMs: number;
}

/** Options of a ServiceMap. */
export interface ServiceMapOptions {
  windowMs?: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

function flowTimeMs(f: Flow): number {
  return f.time.seconds * 1000 + Math.floor(f.time.nanos / 1e6);
}

/** The node a flow endpoint belongs to (`undefined` when the flow has no such side). */
export function endpointNode(
  ep: FlowEndpoint | undefined,
  ip: string | undefined,
): MapNode | undefined {
  if (ep && (ep.podName || ep.workloads.length > 0)) {
    const wl = ep.workloads[0];
    const kind = wl ? 'workload' : 'pod';
    const name = wl ? wl.name : ep.podName;
    const cluster = ep.clusterName || 'unknown';
    return {
      id: `${cluster}/${ep.namespace}/${kind}/${name}`,
      kind,
      cluster,
      namespace: ep.namespace,
      name,
    };
  }
  if (ep?.labels.some((l) => l === 'reserved:host')) {
    const cluster = ep.clusterName || 'unknown';
    return { id: `${cluster}//host/host`, kind: 'world', cluster, namespace: '', name: 'host' };
  }
  if (ip === undefined && !ep) return undefined;
  const name = ip ?? `identity ${ep?.identity ?? 0}`;
  const cluster = ep?.clusterName || 'world';
  return { id: `${cluster}//world/${name}`, kind: 'world', cluster, namespace: '', name };
}

/** The destination node of a flow: its translated service if any, else its destination endpoint. */
export function destinationNode(f: Flow): MapNode | undefined {
  const svc = f.destinationService;
  if (svc && svc.name) {
    const cluster = serviceCluster(f);
    return {
      id: `${cluster}/${svc.namespace}/service/${svc.name}`,
      kind: 'service',
      cluster,
      namespace: svc.namespace,
      name: svc.name,
    };
  }
  return endpointNode(f.destination, f.IP?.destination);
}

/**
 * The cluster a service node is drawn in. A global service's name says where
 * it lives only through its backend, so the destination endpoint's cluster is
 * used; without one, the source's.
 */
function serviceCluster(f: Flow): string {
  return f.destination?.clusterName || f.source?.clusterName || 'unknown';
}

function port(f: Flow): string | undefined {
  const l4 = f.l4;
  if (!l4) return undefined;
  if (l4.TCP) return `TCP/${l4.TCP.destinationPort}`;
  if (l4.UDP) return `UDP/${l4.UDP.destinationPort}`;
  if (l4.ICMPv4) return 'ICMPv4';
  if (l4.ICMPv6) return 'ICMPv6';
  return undefined;
}

interface EdgeState {
  edge: Omit<MapEdge, 'rate' | 'ports'>;
  ports: Set<string>;
  /** Arrival times (ms) inside the window, oldest first. */
  times: number[];
}

/** Aggregates flows into nodes and rated edges. */
export class ServiceMap {
  readonly windowMs: number;
  readonly #now: () => number;
  readonly #nodes = new Map<string, MapNode>();
  readonly #edges = new Map<string, EdgeState>();

  constructor(opts: ServiceMapOptions = {}) {
    const windowMs = opts.windowMs ?? DEFAULT_RATE_WINDOW_MS;
    if (!(windowMs > 0))
      throw new RangeError(`service map rate window must be > 0 ms, got ${windowMs}`);
    this.windowMs = windowMs;
    this.#now = opts.now ?? Date.now;
  }

  /** Adds one flow. Flows without a source or destination side are ignored (returns false). */
  add(f: Flow): boolean {
    const src = endpointNode(f.source, f.IP?.source);
    const dst = destinationNode(f);
    if (!src || !dst) return false;
    this.#nodes.set(src.id, src);
    this.#nodes.set(dst.id, dst);
    const id = `${src.id}->${dst.id}:${f.verdict}`;
    let st = this.#edges.get(id);
    if (!st) {
      st = {
        edge: { id, source: src.id, target: dst.id, verdict: f.verdict, total: 0, lastSeenMs: 0 },
        ports: new Set(),
        times: [],
      };
      this.#edges.set(id, st);
    }
    st.edge.total++;
    const now = this.#now();
    st.edge.lastSeenMs = Math.max(st.edge.lastSeenMs, flowTimeMs(f));
    st.times.push(now);
    this.#trim(st, now);
    const p = port(f);
    if (p) st.ports.add(p);
    return true;
  }

  #trim(st: EdgeState, now: number): void {
    const from = now - this.windowMs;
    let i = 0;
    while (i < st.times.length && st.times[i]! <= from) i++;
    if (i > 0) st.times.splice(0, i);
  }

  /** The current map, rates computed at the present time. */
  snapshot(): ServiceMapSnapshot {
    const now = this.#now();
    const edges: MapEdge[] = [];
    for (const st of this.#edges.values()) {
      this.#trim(st, now);
      edges.push({
        ...st.edge,
        rate: st.times.length / (this.windowMs / 1000),
        ports: [...st.ports].sort(),
      });
    }
    const nodes = [...this.#nodes.values()].sort((a, b) => a.id.localeCompare(b.id));
    const clusters = [...new Set(nodes.map((n) => n.cluster))].sort();
    edges.sort((a, b) => a.id.localeCompare(b.id));
    return { clusters, nodes, edges, windowMs: this.windowMs };
  }
}

/** The filters the UI shares with `hubble observe`: namespace, verdict, pod (`[ns/]name`, either side). */
export interface UiFlowFilter {
  namespace?: string;
  verdict?: VerdictName;
  pod?: string;
}

/** Whether a flow passes the UI's filter (all given fields must match; a side matches either end). */
export function matchesUiFilter(f: Flow, filter: UiFlowFilter): boolean {
  if (filter.verdict && f.verdict !== filter.verdict) return false;
  const sides = [f.source, f.destination].filter((e): e is FlowEndpoint => e !== undefined);
  if (filter.namespace && !sides.some((e) => e.namespace === filter.namespace)) return false;
  if (filter.pod) {
    const [ns, name] = filter.pod.includes('/')
      ? filter.pod.split('/', 2)
      : [undefined, filter.pod];
    if (!sides.some((e) => e.podName.startsWith(name!) && (ns === undefined || e.namespace === ns)))
      return false;
  }
  return true;
}

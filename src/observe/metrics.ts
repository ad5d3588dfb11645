/**
 * Hubble's flow metrics (Cilium's `hubble-metrics` names and labels), fed
 * from a FlowSource, and a small HTTP server every daemon uses to serve its
 * own prom-client Registry in Prometheus text format (re-exported from
 * src/util/metrics-server.ts, where daemons below this layer find it).
 *
 * Each daemon owns one Registry; nothing here touches prom-client's global
 * default registry, so tests and daemons in one process never share counters.
 */
import { Counter, Registry } from 'prom-client';
import { MonitorMessageType, type Flow, type FlowSource } from './flow.js';

export {
  DEFAULT_METRICS_PORTS,
  MetricsServeError,
  parseServeAddr,
  serveMetrics,
  type MetricsServer,
} from '../util/metrics-server.js';

/** Hubble's event type names for `hubble_flows_processed_total{type,subtype}`. */
function flowTypeLabels(f: Flow): { type: string; subtype: string } {
  if (f.Type === 'L7') return { type: 'L7', subtype: '' };
  if (f.Type === 'SOCK') return { type: 'Trace', subtype: 'sock' };
  switch (f.eventType.type) {
    case MonitorMessageType.DROP:
      return { type: 'Drop', subtype: '' };
    case MonitorMessageType.POLICY_VERDICT:
      return { type: 'PolicyVerdict', subtype: '' };
    case MonitorMessageType.TRACE_SOCK:
      return { type: 'Trace', subtype: 'sock' };
    case MonitorMessageType.TRACE:
      return {
        type: 'Trace',
        subtype: f.traceObservationPoint ? traceSubtype(f.traceObservationPoint) : '',
      };
    default:
      return { type: 'Unknown', subtype: '' };
  }
}

/** Cilium's trace subtype names (`to-endpoint`, `from-stack`, ...). */
function traceSubtype(point: string): string {
  return point.toLowerCase().replace(/_/g, '-');
}

/** The L4 protocol name of a flow (`TCP`, `UDP`, `ICMPv4`, ...), `""` if none. */
export function flowProtocol(f: Flow): string {
  if (!f.l4) return '';
  for (const k of ['TCP', 'UDP', 'ICMPv4', 'ICMPv6'] as const) if (f.l4[k]) return k;
  return '';
}

/** Hubble's policy-verdict `match` label: which kind of rule decided. */
function policyMatch(f: Flow): string {
  const by = [
    ...(f.ingressAllowedBy ?? []),
    ...(f.egressAllowedBy ?? []),
    ...(f.ingressDeniedBy ?? []),
    ...(f.egressDeniedBy ?? []),
  ];
  if (by.length === 0) return f.verdict === 'DROPPED' ? 'none' : 'all';
  return f.l4 && flowProtocol(f) !== '' ? 'l3-l4' : 'l3-only';
}

/** Hubble's flow metrics on one Registry. */
export interface HubbleMetrics {
  readonly registry: Registry;
  readonly flowsProcessed: Counter<'type' | 'subtype' | 'verdict'>;
  readonly drops: Counter<'reason' | 'protocol'>;
  readonly policyVerdicts: Counter<'direction' | 'match' | 'action'>;
  readonly lostEvents: Counter<'source'>;
  /** Counts one flow into every metric it belongs to. */
  observe(f: Flow): void;
  /** Counts events lost at `source` (`perf_event_ring_buffer`, `hubble_ring_buffer`, `observer_events_queue`). */
  addLost(source: string, n: number): void;
  /** Runs `f` before every scrape (to copy counters kept elsewhere); returns the remover. */
  onScrape(f: () => void): () => void;
}

/** Registers Hubble's metrics on `registry` (a new one by default). */
export function createHubbleMetrics(registry: Registry = new Registry()): HubbleMetrics {
  // Every flow counts here first and reaches the counter when it is read (scrape):
  // a flow then costs a Map lookup, not prom-client's label validation and hashing.
  const processed = new Map<string, { labels: Record<string, string>; n: number }>();
  const flowsProcessed: Counter<'type' | 'subtype' | 'verdict'> = new Counter({
    name: 'hubble_flows_processed_total',
    help: 'Total number of flows processed',
    labelNames: ['type', 'subtype', 'verdict'] as const,
    registers: [registry],
    collect() {
      for (const p of processed.values())
        if (p.n > 0) {
          flowsProcessed.inc(p.labels, p.n);
          p.n = 0;
        }
    },
  });
  const drops = new Counter({
    name: 'hubble_drop_total',
    help: 'Number of drops',
    labelNames: ['reason', 'protocol'] as const,
    registers: [registry],
  });
  const policyVerdicts = new Counter({
    name: 'hubble_policy_verdicts_total',
    help: 'Total number of Cilium network policy verdicts',
    labelNames: ['direction', 'match', 'action'] as const,
    registers: [registry],
  });
  const beforeScrape = new Set<() => void>();
  const lostEvents = new Counter({
    name: 'hubble_lost_events_total',
    help: 'Number of lost events',
    labelNames: ['source'] as const,
    registers: [registry],
    collect() {
      for (const f of beforeScrape) f();
    },
  });
  return {
    registry,
    flowsProcessed,
    drops,
    policyVerdicts,
    lostEvents,
    observe(f) {
      const { type, subtype } = flowTypeLabels(f);
      const key = `${type}\0${subtype}\0${f.verdict}`;
      const p = processed.get(key);
      if (p !== undefined) p.n++;
      else processed.set(key, { labels: { type, subtype, verdict: f.verdict }, n: 1 });
      if (f.verdict === 'DROPPED')
        drops.inc({ reason: f.dropReasonDesc ?? 'DROP_REASON_UNKNOWN', protocol: flowProtocol(f) });
      const isVerdict =
        f.eventType.type === MonitorMessageType.POLICY_VERDICT ||
        (f.verdict === 'DROPPED' &&
          (f.dropReasonDesc === 'POLICY_DENIED' || f.dropReasonDesc === 'POLICY_DENY'));
      if (isVerdict) {
        const action =
          f.verdict === 'FORWARDED'
            ? 'forwarded'
            : f.verdict === 'DROPPED'
              ? 'dropped'
              : f.verdict.toLowerCase();
        policyVerdicts.inc({
          direction: f.trafficDirection.toLowerCase(),
          match: policyMatch(f),
          action,
        });
      }
    },
    addLost(source, n) {
      if (n > 0) lostEvents.inc({ source }, n);
    },
    onScrape(f) {
      beforeScrape.add(f);
      return () => beforeScrape.delete(f);
    },
  };
}

/**
 * Feeds `metrics` from a FlowSource: every new flow, and the source's lost
 * counter as `hubble_lost_events_total{source="hubble_ring_buffer"}` (read at
 * scrape time, so nothing lost is hidden). Returns the unsubscribe function.
 */
export function attachFlowSource(metrics: HubbleMetrics, source: FlowSource): () => void {
  let reportedLost = 0;
  const unsub = source.subscribe(
    (f) => metrics.observe(f),
    (n) => metrics.addLost('observer_events_queue', n),
  );
  const syncLost = (): void => {
    const lost = source.stats().lost;
    if (lost > reportedLost) {
      metrics.addLost('hubble_ring_buffer', lost - reportedLost);
      reportedLost = lost;
    }
  };
  metrics.lostEvents.inc({ source: 'hubble_ring_buffer' }, 0);
  syncLost();
  const unScrape = metrics.onScrape(syncLost);
  return () => {
    syncLost();
    unScrape();
    unsub();
  };
}

/**
 * Consumes an async iterable of flows (a relay or observer client) into the
 * metrics until it ends or `signal` aborts.
 */
export async function consumeFlows(
  metrics: HubbleMetrics,
  flows: AsyncIterable<Flow>,
  signal?: AbortSignal,
): Promise<void> {
  for await (const f of flows) {
    if (signal?.aborted) break;
    metrics.observe(f);
  }
}

/**
 * hubble-relay's Prometheus metrics (`hubble_relay_*`) on its own Registry,
 * served on `--prometheus-serve-addr` (default :9966, Cilium's relay port).
 * Peer figures ask the peers at scrape time (the relay's ServerStatus).
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Relay } from './relay.js';
import { DEFAULT_METRICS_PORTS } from '../util/metrics-server.js';

/** hubble-relay's default metrics address. */
export const RELAY_METRICS_ADDR = `:${DEFAULT_METRICS_PORTS.hubbleRelay}`;

/** Registers the relay's metrics on `registry` (a new one by default). */
export function createRelayMetrics(
  relay: Pick<Relay, 'status' | 'stats'>,
  registry: Registry = new Registry(),
): Registry {
  collectDefaultMetrics({ register: registry, prefix: 'hubble_relay_' });
  new Gauge({
    name: 'hubble_relay_pool_peer_connection_status',
    help: 'Peers (nodes, and nodes behind connected clusters) by connection status',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      const s = await relay.status();
      this.set({ status: 'CONNECTED' }, s.numConnectedNodes ?? 0);
      this.set({ status: 'UNAVAILABLE' }, s.numUnavailableNodes ?? 0);
    },
  });
  new Counter({
    name: 'hubble_relay_flows_relayed_total',
    help: 'Flows sent to clients',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(relay.stats().flowsRelayed);
    },
  });
  new Counter({
    name: 'hubble_relay_responses_dropped_total',
    help: 'Responses dropped because a client read too slowly',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(relay.stats().dropped);
    },
  });
  return registry;
}

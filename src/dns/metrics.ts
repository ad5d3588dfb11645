/**
 * The cluster DNS server's Prometheus metrics (`tendril_dns_*`) on its own
 * Registry, served on `--prometheus-serve-addr` (default :9153, CoreDNS's
 * metrics port): answers by rcode, the records it serves, failing watches.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** The DNS server's default metrics address (CoreDNS's). */
export const DNS_METRICS_ADDR = ':9153';

/** What the DNS metrics read. */
export interface DNSMetricsSource {
  /** Answered queries by rcode since start. */
  stats(): Record<string, number>;
  /** Watches currently failing. */
  problems(): string[];
}

/** Registers the DNS server's metrics on `registry` (a new one by default). */
export function createDNSMetrics(
  src: DNSMetricsSource,
  registry: Registry = new Registry(),
): Registry {
  collectDefaultMetrics({ register: registry, prefix: 'tendril_dns_' });
  const seen: Record<string, number> = {};
  new Counter({
    name: 'tendril_dns_responses_total',
    help: 'DNS answers sent, by response code',
    labelNames: ['rcode'] as const,
    registers: [registry],
    collect() {
      for (const [rcode, n] of Object.entries(src.stats())) {
        const d = n - (seen[rcode] ?? 0);
        if (d > 0) this.inc({ rcode }, d);
        seen[rcode] = n;
      }
    },
  });
  new Gauge({
    name: 'tendril_dns_watch_problems',
    help: 'API server watches of the DNS server that are failing',
    registers: [registry],
    collect() {
      this.set(src.problems().length);
    },
  });
  return registry;
}

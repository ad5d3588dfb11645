/**
 * The operator's Prometheus metrics (`tendril_operator_*`) on its own
 * Registry, read from its status at scrape time and served on
 * `prometheus-serve-addr` (default :9963, Cilium's operator port).
 */
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { OperatorStatus } from './operator.js';

/** The operator's default metrics address. */
export const OPERATOR_METRICS_ADDR = ':9963';

/** Registers the operator's metrics on `registry` (a new one by default). */
export function createOperatorMetrics(
  src: { status(): OperatorStatus },
  registry: Registry = new Registry(),
): Registry {
  collectDefaultMetrics({ register: registry, prefix: 'tendril_operator_' });
  const g = (name: string, help: string, read: (s: OperatorStatus) => number): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read(src.status()));
      },
    });
  };
  g(
    'tendril_operator_identities',
    'Security identities allocated in this cluster',
    (s) => s.identities,
  );
  g(
    'tendril_operator_pods_with_identity',
    'Pods holding an identity reference',
    (s) => s.podsWithIdentity,
  );
  g(
    'tendril_operator_identity_gc_released_total',
    'Identities released by garbage collection',
    (s) => s.gcReleased,
  );
  g(
    'tendril_operator_imported_services',
    'Remote-only global services imported as local Services',
    (s) => s.importedServices,
  );
  g(
    'tendril_operator_service_imports',
    'MCS ServiceImports kept in this cluster',
    (s) => s.serviceImports,
  );
  g(
    'tendril_operator_synced',
    'Whether the operator finished its initial sync (1) or not (0)',
    (s) => (s.synced ? 1 : 0),
  );
  g('tendril_operator_errors', 'Whether the operator reports a last error (1) or not (0)', (s) =>
    s.lastError ? 1 : 0,
  );
  return registry;
}

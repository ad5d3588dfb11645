import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serveMetrics } from '../util/metrics-server.js';
import { metricValue, scrapeMetrics } from '../observe/scrape.js';
import type { OperatorStatus } from './operator.js';
import { createOperatorMetrics } from './metrics.js';

test('operator metrics are read from its status and scraped as Prometheus text', async () => {
  const st: OperatorStatus = {
    pid: 1,
    startedAt: '',
    updatedAt: '',
    clusterName: 'cluster1',
    clusterId: 1,
    synced: true,
    identities: 9,
    podsWithIdentity: 4,
    gcReleased: 2,
    importedServices: 1,
    serviceImports: 3,
  };
  const srv = await serveMetrics(createOperatorMetrics({ status: () => st }), '127.0.0.1:0');
  try {
    const f = await scrapeMetrics(srv.url);
    assert.equal(metricValue(f, 'tendril_operator_identities'), 9);
    assert.equal(metricValue(f, 'tendril_operator_pods_with_identity'), 4);
    assert.equal(metricValue(f, 'tendril_operator_service_imports'), 3);
    assert.equal(metricValue(f, 'tendril_operator_synced'), 1);
    assert.equal(metricValue(f, 'tendril_operator_errors'), 0);
    assert.ok((metricValue(f, 'tendril_operator_process_resident_memory_bytes') ?? 0) > 0);
  } finally {
    await srv.close();
  }
});

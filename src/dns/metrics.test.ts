import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serveMetrics } from '../util/metrics-server.js';
import { metricValue, scrapeMetrics } from '../observe/scrape.js';
import { createDNSMetrics } from './metrics.js';

test('DNS metrics: answers by rcode (a counter that follows the server) and failing watches', async () => {
  const stats: Record<string, number> = { NOERROR: 3, NXDOMAIN: 1 };
  let problems: string[] = [];
  const srv = await serveMetrics(
    createDNSMetrics({ stats: () => stats, problems: () => problems }),
    '127.0.0.1:0',
  );
  try {
    let f = await scrapeMetrics(srv.url);
    assert.equal(metricValue(f, 'tendril_dns_responses_total', { rcode: 'NOERROR' }), 3);
    assert.equal(metricValue(f, 'tendril_dns_responses_total', { rcode: 'NXDOMAIN' }), 1);
    assert.equal(metricValue(f, 'tendril_dns_watch_problems'), 0);
    stats.NOERROR = 10;
    problems = ['services: connection refused'];
    f = await scrapeMetrics(srv.url);
    assert.equal(metricValue(f, 'tendril_dns_responses_total', { rcode: 'NOERROR' }), 10);
    assert.equal(metricValue(f, 'tendril_dns_watch_problems'), 1);
  } finally {
    await srv.close();
  }
});

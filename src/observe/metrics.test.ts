import assert from 'node:assert/strict';
import { test } from 'node:test';
import { metricValue, parseMetricsText, scrapeMetrics } from './scrape.js';
import { Registry } from 'prom-client';
import { FlowRing } from './ring.js';
import { deniedToEcho, forwardedToEcho, policyAllowed } from './flow-fixtures.js';
import {
  attachFlowSource,
  createHubbleMetrics,
  parseServeAddr,
  serveMetrics,
  MetricsServeError,
} from './metrics.js';

const scrape = scrapeMetrics;
const value = metricValue;

test('hubble metrics count flows from a FlowSource and are scraped as Prometheus text', async () => {
  const ring = new FlowRing(8);
  const metrics = createHubbleMetrics();
  const detach = attachFlowSource(metrics, ring);
  const server = await serveMetrics(metrics.registry, '127.0.0.1:0');
  try {
    ring.push(forwardedToEcho());
    ring.push(forwardedToEcho());
    ring.push(deniedToEcho());
    ring.push(policyAllowed());
    ring.addLost(5);
    const fams = await scrape(server.url);
    assert.equal(fams.find((f) => f.name === 'hubble_flows_processed_total')?.type, 'COUNTER');
    assert.equal(
      value(fams, 'hubble_flows_processed_total', {
        type: 'Trace',
        subtype: 'to-stack',
        verdict: 'FORWARDED',
      }),
      2,
    );
    assert.equal(
      value(fams, 'hubble_flows_processed_total', { type: 'Drop', verdict: 'DROPPED' }),
      1,
    );
    assert.equal(
      value(fams, 'hubble_flows_processed_total', { type: 'PolicyVerdict', verdict: 'FORWARDED' }),
      1,
    );
    assert.equal(value(fams, 'hubble_drop_total', { reason: 'POLICY_DENIED', protocol: 'TCP' }), 1);
    assert.equal(
      value(fams, 'hubble_policy_verdicts_total', {
        direction: 'ingress',
        match: 'l3-l4',
        action: 'dropped',
      }),
      1,
    );
    assert.equal(
      value(fams, 'hubble_policy_verdicts_total', {
        direction: 'ingress',
        match: 'l3-l4',
        action: 'forwarded',
      }),
      1,
    );
    assert.equal(value(fams, 'hubble_lost_events_total', { source: 'hubble_ring_buffer' }), 5);
    // lost events reported later show at the next scrape, not hidden
    ring.addLost(2);
    assert.equal(
      value(await scrape(server.url), 'hubble_lost_events_total', { source: 'hubble_ring_buffer' }),
      7,
    );
    const nf = await fetch(server.url.replace('/metrics', '/nope'));
    assert.equal(nf.status, 404);
  } finally {
    detach();
    await server.close();
  }
  // after detach, new flows are not counted
  ring.push(forwardedToEcho());
  const text = await metrics.registry.getSingleMetricAsString('hubble_flows_processed_total');
  assert.match(text, /verdict="FORWARDED"} 2$/m);
});

test('registries are per daemon: two metrics sets do not share counters, and the default registry is untouched', async () => {
  const a = createHubbleMetrics();
  const b = createHubbleMetrics(new Registry());
  a.observe(forwardedToEcho());
  const fa = parseMetricsText(await a.registry.metrics());
  const fb = parseMetricsText(await b.registry.metrics());
  assert.equal(value(fa, 'hubble_flows_processed_total', { verdict: 'FORWARDED' }), 1);
  assert.equal(value(fb, 'hubble_flows_processed_total', { verdict: 'FORWARDED' }), undefined);
  const { register } = await import('prom-client');
  assert.equal(register.getSingleMetric('hubble_flows_processed_total'), undefined);
});

test('prometheus-serve-addr: accepted forms and a clear error for bad ones', async () => {
  assert.deepEqual(parseServeAddr(':9962'), { host: undefined, port: 9962 });
  assert.deepEqual(parseServeAddr('127.0.0.1:9963'), { host: '127.0.0.1', port: 9963 });
  assert.deepEqual(parseServeAddr('[::1]:9965'), { host: '::1', port: 9965 });
  assert.deepEqual(parseServeAddr('9965'), { host: undefined, port: 9965 });
  assert.throws(
    () => parseServeAddr(':70000'),
    (e: unknown) =>
      e instanceof MetricsServeError && /prometheus-serve-addr ":70000"/.test(e.message),
  );
  assert.throws(() => parseServeAddr('localhost'), MetricsServeError);
  const s = await serveMetrics(new Registry(), '127.0.0.1:0');
  try {
    await assert.rejects(
      serveMetrics(new Registry(), `127.0.0.1:${s.port}`),
      (e: unknown) => e instanceof MetricsServeError && e.code === 'METRICS_SERVE_FAILED',
    );
  } finally {
    await s.close();
  }
});

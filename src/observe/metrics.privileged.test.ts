/**
 * A running lab cluster's agent and operator serve Prometheus text on their
 * documented ports (agent :9962, operator :9963) inside the
 * node's network namespace (the daemons run with hostNetwork), and the
 * scrape parses with a Prometheus text-format parser.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after } from 'node:test';
import { privilegedTest } from '../../test/helpers/privileged.js';
import { teardownLab, until, useUniqueLab } from '../../test/e2e/lab-fixture.js';
import { metricValue, parseMetricsText, type PrometheusMetricFamily } from './scrape.js';

const lab = useUniqueLab('metrics');
after(() => teardownLab(lab));

const { createCluster } = await import('../lab/create.js');
const { install } = await import('../install/install.js');

/** GETs http://127.0.0.1:PORT/metrics inside the node's netns (curl: in setup's need table). */
function scrapeInNode(netns: string, port: number): PrometheusMetricFamily[] | undefined {
  try {
    const text = execFileSync(
      'nsenter',
      [
        `--net=/run/netns/${netns}`,
        'curl',
        '-sf',
        '--max-time',
        '5',
        `http://127.0.0.1:${port}/metrics`,
      ],
      { encoding: 'utf8', timeout: 10_000, maxBuffer: 16 << 20 },
    );
    return parseMetricsText(text);
  } catch {
    return undefined;
  }
}

privilegedTest(
  'privileged: a lab cluster agent and operator serve metrics on 9962 and 9963',
  async () => {
    const c = await createCluster({ name: 'cluster1', nodes: 1, wait: true });
    await install({ context: 'lab-cluster1', clusterName: 'cluster1', clusterId: 1 });
    const node = c.nodes[0]!;
    // the gauges follow the agent: it learns the cluster's nodes from the API server
    const agent = await until(
      'agent metrics on :9962 counting every node',
      () => {
        const f = scrapeInNode(node.netns, 9962);
        return f && metricValue(f, 'tendril_nodes', { location: 'local' }) === c.nodes.length
          ? f
          : undefined;
      },
      120_000,
    );
    assert.ok(agent.some((f) => f.name === 'tendril_endpoint'));
    assert.ok(
      agent.some((f) => f.name === 'tendril_bpf_map_ops_total' && f.metrics.length > 0),
      'the agent wrote BPF maps and counted it',
    );
    const operator = await until(
      'operator metrics on :9963',
      () => scrapeInNode(node.netns, 9963),
      120_000,
    );
    assert.ok((metricValue(operator, 'tendril_operator_identities') ?? -1) >= 0);
  },
  { timeout: 600_000 },
);

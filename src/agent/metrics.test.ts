import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FlowRing } from '../observe/ring.js';
import { deniedToEcho, forwardedToEcho } from '../observe/flow-fixtures.js';
import { metricValue, scrapeMetrics } from '../observe/scrape.js';
import { mapOpRecorder } from '../datapath/map-ops.js';
import type { AgentStatus } from './api/types.js';
import { createAgentMetrics, startAgentMetrics } from './metrics.js';

function status(endpoints: number): AgentStatus {
  return {
    node: 'n1',
    clusterName: 'cluster1',
    clusterId: 1,
    nodeIP: '10.0.0.1',
    podCIDR: '10.244.1.0/24',
    routingMode: 'native',
    datapath: 'fake',
    socketLB: { attached: true, cgroup: '/sys/fs/cgroup' },
    k8s: { url: '', synced: true },
    counts: { endpoints, services: 3, identities: 7, ipcache: 12, nodes: 2, remoteNodes: 4 },
    ipam: { cidr: '10.244.1.0/24', used: endpoints, capacity: 254 },
    reconcilers: [{ name: 'services', desired: 3, applied: 2, pending: 1 }],
    problems: [],
    startedAt: new Date(0).toISOString(),
    pid: 1,
    health: 'OK',
  };
}

test('agent metrics: gauges read the status at scrape time; map ops, remote clusters, propagation', async () => {
  let eps = 2;
  const ring = new FlowRing(16);
  const m = await startAgentMetrics(
    { status: () => status(eps) },
    { prometheusServeAddr: '127.0.0.1:0', hubbleMetricsServer: '127.0.0.1:0' },
    ring,
  );
  try {
    assert.equal(mapOpRecorder, m.agent.mapOpRecorder, 'the datapath hook is installed');
    const [agentSrv, hubbleSrv] = m.servers;
    m.agent.setRemoteClusters(() => [
      { name: 'cluster2', ready: true, connected: true, stale: false },
      { name: 'cluster3', ready: false, connected: false, stale: true },
    ]);
    m.agent.mapOpRecorder.record('tdl_ipcache', 'update', 'success', 1);
    m.agent.mapOpRecorder.record('tdl_ipcache', 'update', 'success', 1);
    m.agent.mapOpRecorder.record('tdl_lb_services', 'delete', 'fail', 1);
    m.agent.mapOpRecorder.record('tdl_ipcache', 'batch_update', 'success', 100);
    m.agent.observePropagation(0.02);
    m.agent.observePropagation(0.3);
    let f = await scrapeMetrics(agentSrv!.url);
    assert.equal(metricValue(f, 'tendril_endpoint'), 2);
    assert.equal(metricValue(f, 'tendril_services_entries'), 3);
    assert.equal(metricValue(f, 'tendril_identity'), 7);
    assert.equal(metricValue(f, 'tendril_nodes', { location: 'remote' }), 4);
    assert.equal(metricValue(f, 'tendril_reconciler_pending', { reconciler: 'services' }), 1);
    assert.equal(
      metricValue(f, 'tendril_bpf_map_ops_total', {
        map_name: 'tdl_ipcache',
        operation: 'update',
        outcome: 'success',
      }),
      2,
    );
    assert.equal(
      metricValue(f, 'tendril_bpf_map_ops_total', {
        map_name: 'tdl_lb_services',
        operation: 'delete',
        outcome: 'fail',
      }),
      1,
    );
    assert.equal(metricValue(f, 'tendril_bpf_map_ops_total', { operation: 'batch_update' }), 100);
    assert.equal(metricValue(f, 'tendril_clustermesh_remote_clusters'), 2);
    assert.equal(
      metricValue(f, 'tendril_clustermesh_remote_cluster_ready', { target_cluster: 'cluster2' }),
      1,
    );
    assert.equal(
      metricValue(f, 'tendril_clustermesh_remote_cluster_ready', { target_cluster: 'cluster3' }),
      0,
    );
    const hist = f.find((x) => x.name === 'tendril_clustermesh_propagation_delay_seconds');
    assert.equal(hist?.type, 'HISTOGRAM');
    assert.equal(hist?.metrics[0]?.count, '2');
    assert.equal(hist?.metrics[0]?.buckets?.['0.025'], '1');
    eps = 5;
    f = await scrapeMetrics(agentSrv!.url);
    assert.equal(metricValue(f, 'tendril_endpoint'), 5, 'read at scrape time');

    ring.push(forwardedToEcho());
    ring.push(deniedToEcho());
    const h = await scrapeMetrics(hubbleSrv!.url);
    assert.equal(metricValue(h, 'hubble_flows_processed_total', { verdict: 'FORWARDED' }), 1);
    assert.equal(
      metricValue(h, 'hubble_drop_total', { reason: 'POLICY_DENIED', protocol: 'TCP' }),
      1,
    );
    // the agent's registry does not carry Hubble's metrics (separate ports, as Cilium)
    assert.equal(metricValue(f, 'hubble_flows_processed_total'), undefined);
  } finally {
    await m.close();
  }
  assert.equal(mapOpRecorder, undefined, 'closing removes the datapath hook');
});

test('agent metrics: an empty address turns an endpoint off; two registries do not share', async () => {
  const m = await startAgentMetrics(
    { status: () => status(0) },
    { prometheusServeAddr: '', hubbleMetricsServer: '' },
  );
  assert.equal(m.servers.length, 0);
  await m.close();
  const a = createAgentMetrics({ status: () => status(1) });
  const b = createAgentMetrics({ status: () => status(1) });
  a.mapOpRecorder.record('x', 'update', 'success', 1);
  assert.match(
    await a.registry.getSingleMetricAsString('tendril_bpf_map_ops_total'),
    /map_name="x"/,
  );
  assert.doesNotMatch(
    await b.registry.getSingleMetricAsString('tendril_bpf_map_ops_total'),
    /map_name="x"/,
  );
});

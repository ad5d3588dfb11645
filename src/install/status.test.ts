import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderStatus, statusReady, type ClusterStatus } from './status.js';

const base = (): ClusterStatus => ({
  context: 'lab-c1',
  labCluster: 'c1',
  installed: true,
  install: {
    version: 1,
    labCluster: 'c1',
    clusterName: 'cluster1',
    clusterId: 1,
    routingMode: 'native',
    identityAllocationMode: 'crd',
    settings: {},
    installedAt: '2026-01-01T00:00:00Z',
  },
  tendril: 'OK',
  operator: 'OK',
  dns: 'OK',
  hubble: 'disabled',
  clustermesh: 'disabled',
  nodes: [{ node: 'c1-worker', health: 'OK' }],
  daemons: {
    agents: { desired: 1, ready: 1 },
    operator: { desired: 1, ready: 1 },
    dns: { desired: 1, ready: 1 },
  },
  counts: { endpoints: 2, services: 3, identities: 1, ipcacheEntries: 5 },
  problems: [],
});

test('status renders like cilium status and is ready when all is OK', () => {
  const s = base();
  const text = renderStatus(s);
  assert.match(text, /Tendril:\s+OK/);
  assert.match(text, /Operator:\s+OK/);
  assert.match(text, /Hubble:\s+disabled/);
  assert.match(text, /Clustermesh:\s+disabled/);
  assert.match(text, /DaemonSet\s+tendril-agent\s+Desired: 1, Ready: 1\/1, Available: 1\/1/);
  assert.match(text, /Deployment\s+tendril-operator\s+Desired: 1, Ready: 1\/1/);
  assert.match(text, /cluster1 \(ID 1\)/);
  assert.match(text, /Endpoints:\s+2\s+Services: 3\s+Identities: 1/);
  assert.match(text, /Policy:\s+enforcement default, 0\/0 endpoints with policy enforced/);
  assert.doesNotMatch(text, /Errors\/Warnings/);
  assert.equal(statusReady(s), true);
});

test('problems are listed with component, cause and hint; not ready', () => {
  const s = base();
  s.dns = 'Error';
  s.daemons.dns.ready = 0;
  s.problems.push({
    component: 'dns',
    cause: 'cluster DNS not running (last exit code 1, 3 restart(s))',
    hint: 'see its log: tendril lab logs c1 tendril-dns',
  });
  const text = renderStatus(s);
  assert.match(text, /Deployment\s+tendril-dns\s+Desired: 1, Ready: 0\/1/);
  assert.match(
    text,
    /Errors\/Warnings:\n {2}dns: cluster DNS not running .*\n {4}hint: see its log/,
  );
  assert.equal(statusReady(s), false);
  const ni = { ...base(), installed: false };
  assert.match(renderStatus(ni), /Tendril:\s+not installed/);
  assert.equal(statusReady(ni), false);
});

test('the policy line sums the agents: enforcement mode and endpoints with policy enforced', () => {
  const s = base();
  const agent = (enforced: number, endpoints: number) =>
    ({
      socketLB: { attached: true },
      nodeIP: '172.30.1.11',
      podCIDR: '10.1.0.0/24',
      counts: { endpoints },
      reconcilers: [],
      policy: { enforcement: 'always', endpoints, enforced },
    }) as never;
  s.nodes = [
    { node: 'c1-worker', health: 'OK', agent: agent(1, 3) },
    { node: 'c1-worker2', health: 'OK', agent: agent(2, 2) },
  ];
  assert.match(
    renderStatus(s),
    /Policy:\s+enforcement always, 3\/5 endpoints with policy enforced/,
  );
});

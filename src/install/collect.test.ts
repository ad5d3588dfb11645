/**
 * The one status collector: reads through a ClusterTarget (here a fake one
 * that records what was asked), keeps a failing part as an Error, and feeds
 * both `tendril status` and `clustermesh status`; one --wait-duration loop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentStatus } from '../agent/api/types.js';
import type { MeshConfig } from '../clustermesh/mesh-files.js';
import type { MeshDaemonStatus } from '../clustermesh/status-api.js';
import type { OperatorStatus } from '../operator/operator.js';
import {
  COMPONENT_COLLECTORS,
  collectClusterData,
  pollStatus,
  type StatusSubject,
} from './collect.js';
import { clusterStatusFromData, STATUS_COMPONENTS } from './status.js';
import { meshReportFromData, MESH_STATUS_COMPONENTS } from './clustermesh/status-report.js';
import type { DaemonState } from './target.js';
import { STATE_KINDS } from '../clustermesh/keys.js';

const agent = (node: string): AgentStatus =>
  ({
    node,
    clusterName: 'cluster1',
    clusterId: 1,
    nodeIP: '172.30.1.11',
    podCIDR: '10.244.1.0/24',
    routingMode: 'native',
    datapath: 'linux',
    socketLB: { attached: true, cgroup: '/x' },
    k8s: { url: 'https://172.30.1.10:6443', synced: true },
    counts: { endpoints: 2, services: 3, identities: 4, ipcache: 5, nodes: 2, remoteNodes: 0 },
    ipam: { cidr: '10.244.1.0/24', used: 2, capacity: 254 },
    reconcilers: [],
    problems: [],
    startedAt: new Date().toISOString(),
    pid: 10,
    health: 'OK',
  }) as AgentStatus;

function fakeSubject(o: { mesh?: boolean } = {}) {
  const asked: string[] = [];
  const now = new Date().toISOString();
  const daemons: DaemonState[] = [
    { name: 'tendril-agent-n1', running: true, restarts: 0, pid: 10 },
    { name: 'tendril-agent-n2', running: true, restarts: 0, pid: 11 },
    { name: 'tendril-operator', running: true, restarts: 0, pid: 12 },
    { name: 'tendril-dns', running: true, restarts: 0, pid: 13, startedAt: now },
  ];
  const op: OperatorStatus = {
    pid: 12,
    startedAt: now,
    updatedAt: now,
    clusterName: 'cluster1',
    clusterId: 1,
    synced: true,
    identities: 7,
    podsWithIdentity: 2,
    gcReleased: 0,
    importedServices: 0,
    serviceImports: 0,
  };
  const s: StatusSubject = {
    context: 'lab-c1',
    install: {
      version: 1,
      labCluster: 'c1',
      clusterName: 'cluster1',
      clusterId: 1,
      routingMode: 'native',
      identityAllocationMode: 'crd',
      settings: {},
      installedAt: now,
    },
    mesh: o.mesh
      ? ({ clusterName: 'cluster1', accessEndpoints: ['https://172.30.1.10:32379'] } as MeshConfig)
      : undefined,
    target: {
      kind: 'lab',
      name: 'c1',
      daemons: async () => (asked.push('daemons'), daemons),
      nodes: async () => (asked.push('nodes'), ['n1', 'n2']),
      agentStatus: async (node) => {
        asked.push(`agent ${node}`);
        if (node === 'n2') throw new Error('connect ENOENT agent.sock');
        return agent(node);
      },
      operatorStatus: async () => (asked.push('operator'), op),
      meshApiserverStatus: async () => {
        asked.push('clustermesh');
        throw new Error('connect ENOENT status.sock');
      },
    },
  };
  return { s, asked };
}

test('collects daemons, nodes and the asked components through the target; a failure is kept, not thrown', async () => {
  const { s, asked } = fakeSubject();
  const d = await collectClusterData(s, ['agents', 'operator', 'clustermesh']);
  assert.deepEqual(d.nodes, ['n1', 'n2']);
  assert.equal(d.daemons.get('tendril-operator')?.pid, 12);
  assert.equal(d.components.agents?.length, 2);
  assert.equal((d.components.agents![0]!.status as AgentStatus).node, 'n1');
  assert.ok(d.components.agents![1]!.status instanceof Error);
  assert.equal((d.components.operator as OperatorStatus).identities, 7);
  // no mesh enabled: the clustermesh-apiserver is not asked
  assert.equal(d.components.clustermesh, undefined);
  assert.ok(!asked.includes('clustermesh'));
  assert.deepEqual(Object.keys(COMPONENT_COLLECTORS).sort(), [
    'agents',
    'clustermesh',
    'hubble',
    'operator',
  ]);
});

test('only the components asked for are read', async () => {
  const { s, asked } = fakeSubject({ mesh: true });
  const d = await collectClusterData(s, ['clustermesh']);
  assert.ok(d.components.clustermesh instanceof Error);
  assert.equal(d.components.agents, undefined);
  assert.deepEqual(
    asked.filter((a) => a.startsWith('agent') || a === 'operator'),
    [],
  );
});

test('status and clustermesh status are built from one collection and agree on a broken agent', async () => {
  const { s } = fakeSubject({ mesh: true });
  const d = await collectClusterData(s, [...STATUS_COMPONENTS, ...MESH_STATUS_COMPONENTS]);
  const st = clusterStatusFromData(d, 'c1');
  assert.equal(st.operator, 'OK');
  assert.equal(st.dns, 'OK');
  assert.equal(st.tendril, 'Error');
  assert.equal(st.daemons.agents.ready, 1);
  assert.equal(st.counts.identities, 7);
  assert.ok(st.problems.some((p) => p.component === 'agent/n2' && /not answering/.test(p.cause)));
  const mesh = meshReportFromData(d, 'c1', []);
  assert.equal(mesh.components.cilium, 'Error');
  assert.ok(mesh.problems.some((p) => p.component === 'Cilium agent on n2'));
  assert.ok(
    mesh.problems.some(
      (p) => p.component === 'clustermesh-apiserver' && /status\.sock/.test(p.cause),
    ),
  );
  assert.equal(mesh.ready, false);
});

test('a healthy mesh status from the collector is ready', async () => {
  const { s } = fakeSubject({ mesh: true });
  const api: MeshDaemonStatus = {
    cluster: { name: 'cluster1', id: 1, labCluster: 'c1', maxConnectedClusters: 255 },
    pid: 1,
    startedAt: '',
    serviceType: 'NodePort',
    accessEndpoints: ['https://172.30.1.10:32379'],
    etcd: { ok: true, endpoint: 'https://127.0.0.1:2379', checkedAt: '' },
    syncer: {
      clusterConfigWritten: true,
      synced: Object.fromEntries(STATE_KINDS.map((k) => [k, true])),
      counts: Object.fromEntries(STATE_KINDS.map((k) => [k, 1])),
      lastHeartbeat: undefined,
      sourceErrors: {},
      lastWriteError: undefined,
    } as MeshDaemonStatus['syncer'],
    kvstoremesh: { enabled: true, remotes: [] },
    readers: [],
    problems: [],
  };
  s.target.meshApiserverStatus = async () => api;
  s.target.agentStatus = async (node) => agent(node);
  const mesh = meshReportFromData(await collectClusterData(s, MESH_STATUS_COMPONENTS), 'c1', []);
  assert.deepEqual(mesh.problems, []);
  assert.equal(mesh.ready, true);
  assert.equal(mesh.nodes.connected, 2);
});

test('pollStatus: one --wait-duration parser; "90" and "90s" are the same; waits until ready', async () => {
  let n = 0;
  const waited: number[] = [];
  const r = await pollStatus(
    async () => ++n,
    (x) => x >= 3,
    { wait: true, waitDuration: '90', intervalMs: 1, onWaiting: (x) => waited.push(x) },
  );
  assert.equal(r, 3);
  assert.deepEqual(waited, [1, 2]);
  n = 0;
  assert.equal(
    await pollStatus(
      async () => ++n,
      () => false,
      { wait: false, waitDuration: '90s' },
    ),
    1,
  );
  // no wait when the duration is 0: one collection
  n = 0;
  assert.equal(
    await pollStatus(
      async () => ++n,
      () => false,
      { wait: true, waitDuration: '0', intervalMs: 1 },
    ),
    1,
  );
  await assert.rejects(
    pollStatus(
      async () => 1,
      () => true,
      { wait: true, waitDuration: '90 parsecs' },
    ),
    (e: Error & { code?: string }) =>
      e.code === 'INVALID_DURATION' && /--wait-duration/.test(e.message),
  );
});

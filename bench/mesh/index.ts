/**
 * The mesh control plane's benchmark (no root needed): two clusters, each a
 * real etcd (mutual TLS) and a clustermesh-apiserver in this process, fed by
 * in-memory API sources; cluster2's agents' view is a RemoteState over
 * cluster2's etcd with the local-agent certificate.
 *
 *   control_plane_propagation_p50_ms / _p99_ms
 *       a backend becomes ready in cluster1 (EndpointSlice change seen by the
 *       syncer) -> cluster1 etcd -> cluster2's kvstoremesh -> cluster2 etcd ->
 *       the agent's RemoteState emits the service with that backend. 200 changes.
 *   bulk_sync_10k_control_plane_s
 *       10,000 global services x 3 backends already exported by cluster1: time
 *       from connect until cluster2's RemoteState holds all of them.
 *   bulk_sync_process_rss_mib
 *       resident memory of this process afterwards (both apiservers, both etcd
 *       clients, the RemoteState): an upper bound for the mesh's share of an agent.
 *
 * Then, as root, the full path on two real lab clusters (full-path.ts):
 * propagation_p50_ms/_p99_ms (to cluster2's pinned BPF service map),
 * xc_service_vs_direct_rps/_cps, bulk_sync_10k_s, bulk_sync_rss_mib.
 *
 *   npm run bench -- mesh [--services N] [--changes N] [--warmup N] [--rounds N] [--seconds S]
 *                         [--control-plane-only | --propagation-only]
 *
 * --warmup N: untimed changes before the timed propagation series (1000: the
 * daemons' hot paths optimized by V8, as in a mesh that has run for a while;
 * the first 100 of them give propagation_cold_p50_ms).
 * --propagation-only: the full path's propagation figures alone, with the
 * per-hop breakdown (written to bench/results/mesh-propagation.json).
 */
import { rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { report, percentile, median, type Figure } from '../lib/report.js';
import { freePort, startEtcd, type EtcdServer } from '../../src/kvstore/etcd-server.js';
import { EtcdKVStore } from '../../src/kvstore/etcd.js';
import {
  meshEtcdOptions,
  prepareMesh,
  removeMeshEtcdData,
  connectDirection,
} from '../../src/install/clustermesh/setup.js';
import { loopbackMeshOptions } from '../../src/install/clustermesh/testing.js';
import { meshDir, meshPaths } from '../../src/clustermesh/mesh-files.js';
import { MeshApiServer } from '../../src/clustermesh/apiserver/server.js';
import { RemoteState } from '../../src/clustermesh/remote-state.js';
import { fakeK8sNode, fakeSources } from '../../src/clustermesh/testing.js';
import { serviceKey, syncedCanaryKey } from '../../src/clustermesh/keys.js';
import { encodeClusterService } from '../../src/services/cluster-service.js';
import { storeBatchWriter } from '../../src/clustermesh/batch-writer.js';
import type { KubeObject } from '../../src/k8s/objects.js';
import { fullPathFigures } from './full-path.js';
import { useUniqueLab } from '../../test/e2e/lab-fixture.js';

const { values } = parseArgs({
  options: {
    services: { type: 'string', default: '10000' },
    changes: { type: 'string', default: '200' },
    warmup: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '1' },
    'control-plane-only': { type: 'boolean', default: false },
    'propagation-only': { type: 'boolean', default: false },
  },
});
/** A whole number >= min from a flag, or a clear stop. */
function count(flag: 'services' | 'changes' | 'warmup' | 'rounds', min: number): number {
  const v = Number(values[flag]);
  if (!Number.isInteger(v) || v < min)
    throw new Error(`--${flag} ${values[flag]}: give a whole number >= ${min}`);
  return v;
}
const N_SERVICES = count('services', 1);
const N_CHANGES = count('changes', 1);
const N_WARMUP = count('warmup', 0);
const N_ROUNDS = count('rounds', 1);

const lab = useUniqueLab('mesh', 'bench');
const { home } = lab;
const cleanups: (() => Promise<unknown>)[] = [];

async function cluster(lab: string, name: string, id: number) {
  const url = `https://127.0.0.1:${await freePort()}`;
  const { config } = await prepareMesh(loopbackMeshOptions(lab, name, id, url));
  // in memory, as the lab runs it (meshEtcdDataDir)
  cleanups.push(async () => removeMeshEtcdData(lab));
  const etcd: EtcdServer = await startEtcd({
    ...meshEtcdOptions(config),
    peerPort: undefined,
    extraArgs: ['--quota-backend-bytes=4294967296'],
  });
  cleanups.push(() => etcd.stop());
  const { fakes, sources } = fakeSources();
  fakes.nodes.add(fakeK8sNode(`${name}-worker`, `172.30.${id}.11`, `10.${243 + id}.1.0/24`));
  const server = new MeshApiServer({ meshDir: meshDir(lab), sources, scanIntervalMs: 100 });
  await server.start({ etcdWaitMs: 15_000 });
  cleanups.push(() => server.stop());
  const p = meshPaths(lab);
  const tls = (certFile: string, keyFile: string) =>
    Promise.all([
      readFile(p.caCert, 'utf8'),
      readFile(certFile, 'utf8'),
      readFile(keyFile, 'utf8'),
    ]).then(([ca, cert, key]) => ({ ca, cert, key }));
  const agentStore = new EtcdKVStore({ endpoints: [url], tls: await tls(p.agentCert, p.agentKey) });
  const rootStore = new EtcdKVStore({ endpoints: [url], tls: await tls(p.rootCert, p.rootKey) });
  cleanups.push(
    () => agentStore.close(),
    () => rootStore.close(),
  );
  return { lab, name, id, fakes, agentStore, rootStore };
}

function svcObj(name: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default', annotations: { 'service.cilium.io/global': 'true' } },
    spec: {
      clusterIP: '10.96.1.1',
      ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 }],
      selector: { app: name },
    },
  };
}
function sliceObj(svc: string, ips: string[]): KubeObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `${svc}-abc`,
      namespace: 'default',
      labels: { 'kubernetes.io/service-name': svc },
    },
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
    endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true } })),
  } as KubeObject;
}

async function main(): Promise<void> {
  const propagationOnly = values['propagation-only'];
  const figures = propagationOnly ? [] : await controlPlane();
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  if (!values['control-plane-only']) {
    if (process.getuid?.() !== 0)
      throw new Error('the full-path part needs root (lab clusters); or pass --control-plane-only');
    figures.push(
      ...(await fullPathFigures({
        lab,
        changes: N_CHANGES,
        warmup: N_WARMUP,
        services: N_SERVICES,
        rounds: N_ROUNDS,
        seconds: Number(values.seconds),
        propagationOnly,
        log: (s) => process.stderr.write(`${s}\n`),
      })),
    );
  }
  // a partial run does not replace the full run's results
  report(propagationOnly ? 'mesh-propagation' : 'mesh', figures);
}

async function controlPlane(): Promise<Figure[]> {
  const figures: Figure[] = [];
  const c1 = await cluster('lab1', 'cluster1', 1);
  const c2 = await cluster('lab2', 'cluster2', 2);

  // Bulk: cluster1 exports N services x 3 backends (written as its syncer would, canary last).
  const t0 = Date.now();
  const entries: [string, string][] = [];
  {
    for (let j = 0; j < N_SERVICES; j++) {
      const b = (k: number) => `10.${244 + k}.${(j >> 8) & 255}.${j & 255}`;
      entries.push([
        serviceKey('cluster1', 'bulk', `s${j}`),
        encodeClusterService({
          cluster: 'cluster1',
          namespace: 'bulk',
          name: `s${j}`,
          frontends: { '10.96.2.1': { http: { Protocol: 'TCP', Port: 80 } } },
          backends: Object.fromEntries(
            [0, 1, 2].map((k) => [b(k), { http: { Protocol: 'TCP' as const, Port: 8080 } }]),
          ),
          labels: {},
          selector: {},
          includeExternal: false,
          shared: true,
          clusterID: 1,
        }),
      ]);
    }
    await storeBatchWriter(c1.rootStore)(entries);
  }
  await c1.rootStore.put(syncedCanaryKey('cluster1', 'services'), new Date().toISOString());
  const writeS = (Date.now() - t0) / 1000;

  const rs = new RemoteState({ store: c2.agentStore, localCluster: 'cluster2' });
  await rs.start();
  cleanups.push(() => rs.stop());
  const rssBefore = process.memoryUsage().rss;
  const bulkStart = Date.now();
  await connectDirection('lab2', 'lab1');
  await connectDirection('lab1', 'lab2');
  for (;;) {
    const c = rs.cluster('cluster1');
    if (c && c.services.size >= N_SERVICES && c.synced.services) break;
    if (Date.now() - bulkStart > 300_000)
      throw new Error(`bulk sync incomplete after 300 s: ${c?.services.size ?? 0}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const bulkS = (Date.now() - bulkStart) / 1000;
  figures.push({
    name: 'bulk_sync_10k_control_plane_s',
    value: bulkS,
    unit: 's',
    note: `${N_SERVICES} services x 3 backends, connect -> agent view complete (target <= 10)`,
  });
  figures.push({
    name: 'bulk_sync_process_rss_mib',
    value: process.memoryUsage().rss / 2 ** 20,
    unit: 'MiB',
    note: 'whole bench process (2 apiservers + agent view)',
  });
  figures.push({
    name: 'bulk_sync_rss_delta_mib',
    value: (process.memoryUsage().rss - rssBefore) / 2 ** 20,
    unit: 'MiB',
    note: 'growth from connect to complete (kvstoremesh mirror + agent view)',
  });
  figures.push({
    name: 'bulk_export_write_s',
    value: writeS,
    unit: 's',
    note: `writing the ${N_SERVICES} services into cluster1's etcd (setup)`,
  });

  // Propagation: a backend becomes ready in cluster1 -> seen by cluster2's agent view.
  c1.fakes.services.add(svcObj('echo'));
  const lat: number[] = [];
  let waiting: { ip: string; t: number; done: (ms: number) => void } | undefined;
  rs.on((ev) => {
    if (
      !waiting ||
      ev.type !== 'upsert' ||
      ev.kind !== 'services' ||
      ev.cluster !== 'cluster1' ||
      ev.name !== 'default/echo'
    )
      return;
    const v = ev.value as { backends: Record<string, unknown> };
    if (waiting.ip in v.backends) {
      const w = waiting;
      waiting = undefined;
      w.done(performance.now() - w.t);
    }
  });
  for (let i = 0; i < N_CHANGES; i++) {
    const ip = `10.244.200.${(i % 250) + 1}`;
    const ms = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`change ${i} not seen in 10 s`)), 10_000);
      waiting = { ip, t: performance.now(), done: (x) => (clearTimeout(timer), resolve(x)) };
      c1.fakes.endpointSlices.add(sliceObj('echo', [ip]));
    });
    lat.push(ms);
  }
  figures.push({
    name: 'control_plane_propagation_p50_ms',
    value: median(lat),
    unit: 'ms',
    note: `${N_CHANGES} backend changes, cluster1 API -> cluster2 agent view`,
  });
  figures.push({
    name: 'control_plane_propagation_p99_ms',
    value: percentile(lat, 99),
    unit: 'ms',
    note: 'control plane only; the full path is propagation_p99_ms',
  });
  return figures;
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    rmSync(home, { recursive: true, force: true });
  });

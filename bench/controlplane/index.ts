/**
 * Control-plane benchmark: the costs the mesh's propagation and bulk-sync
 * targets rest on, measured on this machine.
 *
 *   catalog_10k_ms        desiredServiceEntries over 10,000 global services, 1 local + 3 remote backends each
 *   catalog_100_ms        the same over 100 services (the per-change cost of a small cluster)
 *   catalog_update_10k_ms ServiceCatalog (incremental) at 10,000 services: one EndpointSlice change -> changes()
 *   etcd_put_10k_s        10,000 ClusterService puts into a real etcd (64 in flight)
 *   etcd_watch_10k_s      from the first put until a prefix watcher has seen all 10,000
 *   etcd_list_10k_ms      listing the 10,000 keys (what a full resync reads)
 *   etcd_putall_10k_s     the same 10,000 values through putAll (transactions of 128 puts)
 *   etcd_propagation_p50_ms / _p99_ms   put -> watch callback, 200 single writes
 *   memory_put_per_s      MemoryKVStore puts per second
 *   identity_alloc_per_s  IdentityAllocator allocations per second (kvstore backend, memory store)
 *   dns_udp_qps           cluster DNS queries per second over UDP on 127.0.0.1 (20,000 queries, 32 in flight)
 *
 * Run: npm run bench -- controlplane
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSocket } from 'node:dgram';
import dnsPacket from 'dns-packet';
import { median, percentile, report, type Figure } from '../lib/report.js';
import { EtcdKVStore } from '../../src/kvstore/etcd.js';
import { freePort, startEtcd } from '../../src/kvstore/etcd-server.js';
import { MemoryKVStore } from '../../src/kvstore/memory.js';
import { putAll } from '../../src/kvstore/batch.js';
import { desiredServiceEntries } from '../../src/services/catalog.js';
import { ServiceCatalog } from '../../src/services/catalog-store.js';
import { encodeClusterService } from '../../src/services/cluster-service.js';
import { cs, slice, svc } from '../../src/services/fixtures.js';
import { IdentityAllocator } from '../../src/identity/allocator.js';
import { KVStoreIdentityBackend } from '../../src/identity/kvstore-backend.js';
import { ServiceRecordStore } from '../../src/dns/records.js';
import { startDNSServer } from '../../src/dns/server.js';

const figures: Figure[] = [];
const ip = (base: number, i: number) => `10.${base}.${(i >> 8) & 255}.${i & 255}`;

function catalogInput(n: number) {
  const services = [];
  const endpointSlices = [];
  const remoteServices = [];
  for (let i = 0; i < n; i++) {
    const name = `svc-${i}`;
    services.push(
      svc(name, { ip: ip(96, i + 1), annotations: { 'service.cilium.io/global': 'true' } }),
    );
    endpointSlices.push(slice(name, [ip(244, i + 1)], { name: `${name}-x` }));
    remoteServices.push(
      cs('cluster2', 2, name, [ip(245, 3 * i + 1), ip(245, 3 * i + 2), ip(245, 3 * i + 3)]),
    );
  }
  return { cluster: 'cluster1', clusterID: 1, services, endpointSlices, remoteServices };
}

function timeCatalog(n: number, runs: number): number {
  const input = catalogInput(n);
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    const out = desiredServiceEntries(input);
    times.push(performance.now() - t0);
    if (out.entries.length !== n || out.entries[0]!.backends.length !== 4)
      throw new Error('catalog produced the wrong result');
  }
  return median(times);
}

async function main(): Promise<void> {
  figures.push({
    name: 'catalog_10k_ms',
    value: timeCatalog(10_000, 5),
    unit: 'ms',
    note: 'median of 5, 10k services x 4 backends',
  });
  figures.push({
    name: 'catalog_100_ms',
    value: timeCatalog(100, 20),
    unit: 'ms',
    note: 'median of 20',
  });
  {
    const input = catalogInput(10_000);
    const cat = new ServiceCatalog({ cluster: input.cluster, clusterID: input.clusterID });
    for (const s of input.services) cat.upsertService(s);
    for (const s of input.endpointSlices) cat.upsertEndpointSlice(s);
    cat.setRemoteServices(input.remoteServices);
    cat.changes();
    const times: number[] = [];
    for (let i = 0; i < 50; i++) {
      const t0 = performance.now();
      cat.upsertEndpointSlice(
        slice(`svc-${i * 97}`, [ip(244, i * 97 + 1), ip(246, i + 1)], { name: `svc-${i * 97}-x` }),
      );
      const ch = cat.changes();
      times.push(performance.now() - t0);
      if (ch.upsert.length !== 1 || ch.upsert[0]!.backends.length !== 5)
        throw new Error('incremental catalog produced the wrong change');
    }
    figures.push({
      name: 'catalog_update_10k_ms',
      value: median(times),
      unit: 'ms',
      note: 'median of 50 single-slice changes',
    });
  }

  // Memory store.
  {
    const m = new MemoryKVStore();
    const t0 = performance.now();
    for (let i = 0; i < 50_000; i++) await m.put(`k/${i}`, 'v');
    figures.push({
      name: 'memory_put_per_s',
      value: 50_000 / ((performance.now() - t0) / 1000),
      unit: '1/s',
    });
    await m.close();
  }

  // Identity allocation.
  {
    const m = new MemoryKVStore();
    const alloc = new IdentityAllocator(new KVStoreIdentityBackend(m), { clusterId: 1 });
    const t0 = performance.now();
    for (let i = 0; i < 2000; i++)
      await alloc.allocate(`k8s:app=a${i};k8s:io.kubernetes.pod.namespace=default`);
    figures.push({
      name: 'identity_alloc_per_s',
      value: 2000 / ((performance.now() - t0) / 1000),
      unit: '1/s',
      note: '2000 new label sets',
    });
    await m.close();
  }

  // Real etcd.
  const dir = mkdtempSync(join(tmpdir(), 'tendril-bench-etcd-'));
  const srv = await startEtcd({
    name: 'bench',
    dataDir: join(dir, 'data'),
    clientUrls: [`http://127.0.0.1:${await freePort()}`],
  });
  const writer = new EtcdKVStore({ endpoints: srv.endpoints });
  const reader = new EtcdKVStore({ endpoints: srv.endpoints });
  try {
    const values = catalogInput(10_000).remoteServices.map(
      (c) =>
        [`cilium/state/services/v1/cluster2/default/${c.name}`, encodeClusterService(c)] as const,
    );
    let seen = 0;
    let allSeen!: () => void;
    const done = new Promise<void>((r) => (allSeen = r));
    const w = await reader.watchPrefix('cilium/state/services/v1/', () => {
      if (++seen === values.length) allSeen();
    });
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < values.length) {
          const [k, v] = values[next++]!;
          await writer.put(k, v);
        }
      }),
    );
    const tPut = performance.now();
    await done;
    const tWatch = performance.now();
    await w.close();
    figures.push({
      name: 'etcd_put_10k_s',
      value: (tPut - t0) / 1000,
      unit: 's',
      note: '64 in flight',
    });
    figures.push({
      name: 'etcd_watch_10k_s',
      value: (tWatch - t0) / 1000,
      unit: 's',
      note: 'first put -> watcher saw all',
    });
    const lists: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      const { kvs } = await reader.list('cilium/state/services/v1/');
      lists.push(performance.now() - t);
      if (kvs.length !== 10_000) throw new Error(`listed ${kvs.length}`);
    }
    figures.push({
      name: 'etcd_list_10k_ms',
      value: median(lists),
      unit: 'ms',
      note: 'median of 3',
    });
    {
      const batch = values.map(([k, v]) => ({
        key: k.replace('/cluster2/', '/cluster3/'),
        value: v,
      }));
      const t = performance.now();
      await putAll(writer, batch);
      figures.push({
        name: 'etcd_putall_10k_s',
        value: (performance.now() - t) / 1000,
        unit: 's',
        note: 'putAll: txns of 128',
      });
    }

    // Propagation: single writes, put -> watch callback.
    const lat: number[] = [];
    let pending: { t: number; resolve: () => void } | undefined;
    const w2 = await reader.watchPrefix('bench/prop/', () => {
      if (pending) {
        lat.push(performance.now() - pending.t);
        pending.resolve();
      }
    });
    for (let i = 0; i < 200; i++) {
      await new Promise<void>((resolve) => {
        pending = { t: performance.now(), resolve };
        void writer.put(`bench/prop/${i % 10}`, String(i));
      });
    }
    await w2.close();
    figures.push({
      name: 'etcd_propagation_p50_ms',
      value: percentile(lat, 50),
      unit: 'ms',
      note: '200 writes',
    });
    figures.push({ name: 'etcd_propagation_p99_ms', value: percentile(lat, 99), unit: 'ms' });
  } finally {
    await writer.close();
    await reader.close();
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  }

  // DNS over UDP.
  {
    const store = new ServiceRecordStore();
    for (let i = 0; i < 1000; i++) store.upsertService(svc(`svc-${i}`, { ip: ip(96, i + 1) }));
    const server = await startDNSServer({ host: '127.0.0.1', port: 0, source: store });
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const total = 20_000;
    let sent = 0;
    let got = 0;
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`DNS bench stalled at ${got}/${total}`)),
        60_000,
      );
      const send = () => {
        const id = sent++ & 0xffff;
        sock.send(
          dnsPacket.encode({
            type: 'query',
            id,
            questions: [
              { type: 'A', name: `svc-${id % 1000}.default.svc.cluster.local`, class: 'IN' },
            ],
          }),
          server.port,
          '127.0.0.1',
        );
      };
      sock.on('message', () => {
        got++;
        if (got === total) {
          clearTimeout(timer);
          resolve();
        } else if (sent < total) send();
      });
      for (let i = 0; i < 32; i++) send();
    });
    figures.push({
      name: 'dns_udp_qps',
      value: total / ((performance.now() - t0) / 1000),
      unit: '1/s',
      note: '32 in flight, client in the same process',
    });
    sock.close();
    await server.close();
  }

  report('controlplane', figures);
}

await main();

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import type { ServiceEntry } from '../datapath/types.js';
import { desiredServiceEntries } from './catalog.js';
import { ServiceCatalog } from './catalog-store.js';
import type { ClusterService } from './cluster-service.js';
import { cs, slice, svc } from './fixtures.js';
import { derivedServiceManifest, resolveServiceImports, serviceExportSpec } from './mcs.js';

const base = { cluster: 'cluster1', clusterID: 1 };
const fk = (e: ServiceEntry) => `${e.frontend.ip}:${e.frontend.port}/${e.frontend.protocol}`;

/** A tiny deterministic PRNG, so a failure can be replayed. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

test('ServiceCatalog equals desiredServiceEntries after any sequence of changes, and changes() replays exactly', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const r = rng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const names = ['a', 'b', 'c', 'd', 'e'];
    const services = new Map<string, V1Service>();
    const slices = new Map<string, V1EndpointSlice>();
    const remotes = new Map<string, ClusterService>();
    let exported: string[] = [];
    const cat = new ServiceCatalog(base);
    const applied = new Map<string, ServiceEntry>();
    for (let step = 0; step < 300; step++) {
      const n = pick(names);
      const op = Math.floor(r() * 8);
      if (op === 0) {
        const ann: Record<string, string> = r() < 0.6 ? { 'service.cilium.io/global': 'true' } : {};
        if (r() < 0.4)
          ann['service.cilium.io/affinity'] = pick(['local', 'remote', 'none', 'bogus']);
        if (r() < 0.2) ann['service.cilium.io/shared'] = 'false';
        const s = svc(n, {
          ip: `10.96.0.${names.indexOf(n) + (r() < 0.1 ? 0 : 1)}`,
          annotations: ann,
        });
        services.set(n, s);
        cat.upsertService(s);
      } else if (op === 1) {
        services.delete(n);
        cat.deleteService('default', n);
      } else if (op === 2 || op === 3) {
        const sl = slice(
          n,
          Array.from({ length: Math.floor(r() * 3) }, (_, i) =>
            r() < 0.7
              ? `10.244.${names.indexOf(n)}.${i + 1}`
              : { ip: `10.244.9.${i + 1}`, ready: false, serving: true, terminating: true },
          ),
          { name: `${n}-${Math.floor(r() * 2)}`, marker: r() < 0.1 },
        );
        slices.set(sl.metadata!.name!, sl);
        cat.upsertEndpointSlice(sl);
      } else if (op === 4) {
        const name = `${n}-${Math.floor(r() * 2)}`;
        slices.delete(name);
        cat.deleteEndpointSlice('default', name);
      } else if (op === 5) {
        const c = pick(['cluster2', 'cluster3', 'cluster1']);
        const x = cs(
          c,
          c === 'cluster2' ? 2 : c === 'cluster3' ? 3 : 1,
          n,
          Array.from(
            { length: Math.floor(r() * 3) },
            (_, i) => `10.${245 + (c === 'cluster3' ? 1 : 0)}.0.${i + 1}`,
          ),
          { shared: r() < 0.9 },
        );
        remotes.set(`${c}/${n}`, x);
        cat.upsertRemoteService(x);
      } else if (op === 6) {
        const c = pick(['cluster2', 'cluster3']);
        remotes.delete(`${c}/${n}`);
        cat.deleteRemoteService(c, 'default', n);
      } else {
        exported = names.filter(() => r() < 0.3).map((x) => `default/${x}`);
        cat.setExportedServices(exported);
      }
      if (step % 7 === 0 || step === 299) {
        const want = desiredServiceEntries({
          ...base,
          services: [...services.values()],
          endpointSlices: [...slices.values()],
          remoteServices: [...remotes.values()],
          exportedServices: exported,
        });
        const got = cat.result();
        assert.deepEqual(got, want, `seed ${seed} step ${step}`);
        const ch = cat.changes();
        for (const f of ch.delete) applied.delete(`${f.ip}:${f.port}/${f.protocol}`);
        for (const e of ch.upsert) applied.set(fk(e), e);
        assert.deepEqual(
          [...applied.keys()].sort(),
          want.entries.map(fk).sort(),
          `seed ${seed} step ${step}: replayed frontends`,
        );
        for (const e of want.entries) assert.deepEqual(applied.get(fk(e)), e);
        assert.deepEqual(cat.changes(), { upsert: [], delete: [] }, 'nothing new without changes');
      }
    }
  }
});

test('ServiceCatalog: MCS derived services follow their source, exports and mcsExports', () => {
  const echo = svc('echo', { ip: '10.96.0.50' });
  const exports = [
    serviceExportSpec(echo, { cluster: 'cluster1', exportCreated: '2026-01-01T00:00:00Z' }),
    serviceExportSpec(echo, { cluster: 'cluster2', exportCreated: '2026-01-02T00:00:00Z' }),
  ];
  const derived = derivedServiceManifest(resolveServiceImports(exports).imports[0]!);
  derived.spec!.clusterIP = '10.96.9.9';
  const cat = new ServiceCatalog(base);
  cat.upsertService(echo);
  cat.upsertService(derived);
  cat.setExportedServices(['default/echo']);
  cat.setMcsExports(exports);
  cat.upsertRemoteService(cs('cluster2', 2, 'echo', ['10.245.0.7']));
  cat.upsertRemoteService(cs('cluster3', 3, 'echo', ['10.246.0.7']));
  cat.upsertEndpointSlice(slice('echo', ['10.244.0.7']));
  const d = () =>
    cat
      .result()
      .entries.find((e) => e.frontend.ip === '10.96.9.9')!
      .backends.map((b) => b.ip);
  assert.deepEqual(d(), ['10.244.0.7', '10.245.0.7']);
  cat.changes();
  cat.upsertEndpointSlice(slice('echo', ['10.244.0.8']));
  assert.deepEqual(
    d(),
    ['10.244.0.8', '10.245.0.7'],
    'a source slice change reaches the derived service',
  );
  assert.deepEqual(
    cat
      .changes()
      .upsert.map((e) => e.frontend.ip)
      .sort(),
    ['10.96.0.50', '10.96.9.9'],
  );
  cat.setMcsExports([...exports, { cluster: 'cluster3', namespace: 'default', name: 'echo' }]);
  assert.deepEqual(d(), ['10.244.0.8', '10.245.0.7', '10.246.0.7']);
  cat.setExportedServices([]);
  assert.deepEqual(d(), ['10.245.0.7', '10.246.0.7']);
  cat.deleteService('default', 'derived-' + derived.metadata!.name!.slice(8));
  assert.equal(
    cat.result().entries.some((e) => e.frontend.ip === '10.96.9.9'),
    false,
  );
  assert.deepEqual(cat.changes().delete, [{ ip: '10.96.9.9', port: 80, protocol: 'TCP' }]);
});

test('ServiceCatalog: setRemoteServices recomputes only what changed', () => {
  const cat = new ServiceCatalog(base);
  for (const n of ['a', 'b'])
    cat.upsertService(
      svc(n, {
        ip: n === 'a' ? '10.96.0.1' : '10.96.0.2',
        annotations: { 'service.cilium.io/global': 'true' },
      }),
    );
  const a = cs('cluster2', 2, 'a', ['10.245.0.1']);
  const b = cs('cluster2', 2, 'b', ['10.245.0.2']);
  cat.setRemoteServices([a, b]);
  cat.changes();
  cat.setRemoteServices([
    a,
    { ...b, backends: { '10.245.0.3': { '': { Protocol: 'TCP', Port: 8080 } } } },
  ]);
  assert.deepEqual(
    cat.changes().upsert.map((e) => e.frontend.ip),
    ['10.96.0.2'],
  );
  cat.setRemoteServices([structuredClone(a)]);
  const ch = cat.changes();
  assert.deepEqual(
    ch.upsert.map((e) => [e.frontend.ip, e.backends.length]),
    [['10.96.0.2', 0]],
  );
});

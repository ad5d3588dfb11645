/**
 * Diagnostic for bulk_sync_10k_s (no root): what one full recomputation of
 * the agent's service catalog costs at the bulk benchmark's scale (N local
 * global Services + N remote ClusterServices x 3 backends), as the agent does
 * it on every coalesced change (src/agent/k8s/services.ts -> desiredServiceEntries),
 * against the incremental ServiceCatalog (src/services/catalog-store.ts).
 *
 *   node --import tsx bench/mesh/catalog-cost.ts [--services N]
 */
import { parseArgs } from 'node:util';
import type { V1Service } from '@kubernetes/client-node';
import { desiredServiceEntries } from '../../src/services/catalog.js';
import { ServiceCatalog } from '../../src/services/catalog-store.js';
import type { ClusterService } from '../../src/services/cluster-service.js';

const n = Number(
  parseArgs({ options: { services: { type: 'string', default: '10000' } } }).values.services,
);
const services: V1Service[] = [];
const remote: ClusterService[] = [];
for (let j = 0; j < n; j++) {
  services.push({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: `bulk-s${j}`,
      namespace: 'default',
      annotations: { 'service.cilium.io/global': 'true' },
    },
    spec: {
      clusterIP: `10.96.${(j >> 8) & 255}.${j & 255}`,
      ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
    },
  });
  remote.push({
    cluster: 'cluster1',
    namespace: 'default',
    name: `bulk-s${j}`,
    frontends: {},
    backends: Object.fromEntries(
      [0, 1, 2].map((k) => [
        `10.244.${200 + k}.${(j % 250) + 1}`,
        { http: { Protocol: 'TCP', Port: 8080 + Math.floor(j / 250) } },
      ]),
    ),
    labels: {},
    selector: {},
    includeExternal: false,
    shared: true,
    clusterID: 1,
  } as ClusterService);
}
const full = () =>
  desiredServiceEntries({
    cluster: 'cluster2',
    clusterID: 2,
    services,
    endpointSlices: [],
    remoteServices: remote,
  });
full();
const times: number[] = [];
for (let i = 0; i < 5; i++) {
  const t = performance.now();
  full();
  times.push(performance.now() - t);
}
times.sort((a, b) => a - b);
const cat = new ServiceCatalog({ cluster: 'cluster2', clusterID: 2 });
for (const s of services) cat.upsertService(s);
let t = performance.now();
for (const r of remote) cat.upsertRemoteService(r);
cat.changes();
const incAll = performance.now() - t;
t = performance.now();
cat.upsertRemoteService({
  ...remote[5]!,
  backends: { '10.244.9.9': { http: { Protocol: 'TCP', Port: 8080 } } },
});
cat.changes();
const incOne = performance.now() - t;
console.log(
  JSON.stringify({
    services: n,
    full_recompute_ms_median: times[2],
    incremental_all_ms: incAll,
    incremental_one_ms: incOne,
    rss_mib: process.memoryUsage().rss / 2 ** 20,
  }),
);

/**
 * Child process of the mesh benchmark (run inside a lab control plane's
 * network namespace, where that cluster's clustermesh etcd listens): writes N
 * global services x 3 backends as the cluster's clustermesh-apiserver exports
 * them (cilium/state/services/v1/<cluster>/<ns>/<name>, batched as the syncer
 * writes), with the cluster's root etcd certificate. Service j's backends are
 * 10.244.{200,201,202}.(j % 250 + 1):(8080 + j / 250), addresses no pod uses. Prints one JSON line
 * {"written": N, "ms": ...} when done. Service j is <ns>/bulk-s<j>.
 *
 *   node --import tsx bench/mesh/bulk-export.ts --lab L --cluster C --cluster-id ID \
 *     --endpoint https://IP:2379 --namespace NS --services N
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { EtcdKVStore } from '../../src/kvstore/etcd.js';
import { meshPaths } from '../../src/clustermesh/mesh-files.js';
import { serviceKey } from '../../src/clustermesh/keys.js';
import { encodeClusterService } from '../../src/services/cluster-service.js';
import { storeBatchWriter } from '../../src/clustermesh/batch-writer.js';

const { values } = parseArgs({
  options: {
    lab: { type: 'string' },
    cluster: { type: 'string' },
    'cluster-id': { type: 'string' },
    endpoint: { type: 'string' },
    namespace: { type: 'string', default: 'default' },
    services: { type: 'string', default: '10000' },
  },
});
const lab = values.lab!;
const cluster = values.cluster!;
const clusterID = Number(values['cluster-id']);
const ns = values.namespace!;
const n = Number(values.services);

const p = meshPaths(lab);
const [ca, cert, key] = await Promise.all([
  readFile(p.caCert, 'utf8'),
  readFile(p.rootCert, 'utf8'),
  readFile(p.rootKey, 'utf8'),
]);
const store = new EtcdKVStore({ endpoints: [values.endpoint!], tls: { ca, cert, key } });
try {
  const t0 = performance.now();
  const entries: [string, string][] = [];
  for (let j = 0; j < n; j++) {
    entries.push([
      serviceKey(cluster, ns, `bulk-s${j}`),
      encodeClusterService({
        cluster,
        namespace: ns,
        name: `bulk-s${j}`,
        frontends: { '10.96.2.1': { http: { Protocol: 'TCP', Port: 80 } } },
        backends: Object.fromEntries(
          [0, 1, 2].map((k) => [
            `10.244.${200 + k}.${(j % 250) + 1}`,
            { http: { Protocol: 'TCP' as const, Port: 8080 + Math.floor(j / 250) } },
          ]),
        ),
        labels: {},
        selector: {},
        includeExternal: false,
        shared: true,
        clusterID,
      }),
    ]);
  }
  await storeBatchWriter(store)(entries);
  process.stdout.write(`${JSON.stringify({ written: n, ms: performance.now() - t0 })}\n`);
} finally {
  await store.close();
}

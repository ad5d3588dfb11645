/**
 * Child process of the mesh benchmark (run inside a lab control plane's
 * network namespace, where that cluster's clustermesh etcd listens): watches
 * one key prefix of that etcd and prints one JSON line per change,
 * {"t": <ms on the shared clock>, "key": ..., "has": <the value names --ip>},
 * where the clock is performance.timeOrigin + performance.now() (the same in
 * every process of the machine), so the bench can place this hop between the
 * PATCH and the BPF map. Prints {"ready": true} once the watch runs.
 *
 *   node --import tsx bench/mesh/hop-watch.ts --lab L --endpoint https://IP:2379 \
 *     --cert root|agent --prefix P --ip A.B.C.D
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { EtcdKVStore } from '../../src/kvstore/etcd.js';
import { meshPaths } from '../../src/clustermesh/mesh-files.js';

const { values } = parseArgs({
  options: {
    lab: { type: 'string' },
    endpoint: { type: 'string' },
    cert: { type: 'string', default: 'agent' },
    prefix: { type: 'string' },
    ip: { type: 'string' },
  },
});
const p = meshPaths(values.lab!);
const root = values.cert === 'root';
const [ca, cert, key] = await Promise.all([
  readFile(p.caCert, 'utf8'),
  readFile(root ? p.rootCert : p.agentCert, 'utf8'),
  readFile(root ? p.rootKey : p.agentKey, 'utf8'),
]);
const store = new EtcdKVStore({ endpoints: [values.endpoint!], tls: { ca, cert, key } });
const needle = `"${values.ip!}"`;
const now = () => performance.timeOrigin + performance.now();
const w = await store.watchPrefix(values.prefix!, (ev) => {
  const t = now();
  const k = ev.type === 'put' ? ev.kv.key : ev.key;
  const has = ev.type === 'put' && ev.kv.value.includes(needle);
  process.stdout.write(`${JSON.stringify({ t, key: k, has })}\n`);
});
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
const stop = () =>
  void w
    .close()
    .then(() => store.close())
    .finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

/**
 * The clustermesh-apiserver daemon, in one of two forms (sources.ts):
 *
 *   # a real cluster (the rendered manifest; Cilium's shapes, files mounted from
 *   # the tendril-config ConfigMap and the mesh Secrets)
 *   node --import tsx src/clustermesh/apiserver/main.ts --config-dir DIR --kubeconfig FILE \
 *     --etcd-config FILE [--clustermesh-config DIR] [--cluster-users-config FILE] [--status-socket PATH]
 *
 *   # the lab (`tendril clustermesh enable` starts it next to its etcd)
 *   node --import tsx src/clustermesh/apiserver/main.ts --mesh-dir DIR [--kubeconfig FILE]
 *
 * Nothing names a lab cluster. --mesh-dir: mesh.json, the certificates,
 * remotes/ and readers/ (../mesh-files.ts). --kubeconfig: the Kubernetes API
 * server, its CA and this daemon's credential.
 *
 * Metrics (Prometheus text, GET /metrics): --prometheus-serve-addr (the
 * apiserver's, default :9964) and --kvstoremesh-prometheus-serve-addr
 * (kvstoremesh's, default :9967); "" turns one off, a bad value is refused,
 * a busy port is logged and the daemon keeps running.
 */
import { parseArgs } from 'node:util';
import { createLogger } from '../../util/log.js';
import { describeError, TendrilError } from '../../util/errors.js';
import { MeshApiServer } from './server.js';
import { configDirSource } from './sources.js';
import { parseServeAddr, serveMetrics, type MetricsServer } from '../../util/metrics-server.js';
import {
  CLUSTERMESH_APISERVER_METRICS_ADDR,
  KVSTOREMESH_METRICS_ADDR,
  createApiserverMetrics,
  createKVStoreMeshMetrics,
} from '../metrics.js';

const USAGE =
  'usage: main.ts --config-dir DIR --kubeconfig FILE --etcd-config FILE [--clustermesh-config DIR] ' +
  '[--cluster-users-config FILE] [--status-socket PATH] | --mesh-dir DIR [--kubeconfig FILE] ' +
  '[--prometheus-serve-addr ADDR] [--kvstoremesh-prometheus-serve-addr ADDR]';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'mesh-dir': { type: 'string' },
      'config-dir': { type: 'string' },
      kubeconfig: { type: 'string' },
      'etcd-config': { type: 'string' },
      'clustermesh-config': { type: 'string' },
      'cluster-users-config': { type: 'string' },
      'status-socket': { type: 'string' },
      'prometheus-serve-addr': { type: 'string', default: CLUSTERMESH_APISERVER_METRICS_ADDR },
      'kvstoremesh-prometheus-serve-addr': { type: 'string', default: KVSTOREMESH_METRICS_ADDR },
    },
  });
  const log = createLogger({ daemon: 'clustermesh-apiserver' });
  const apiserverMetricsAddr = values['prometheus-serve-addr'] ?? '';
  const meshMetricsAddr = values['kvstoremesh-prometheus-serve-addr'] ?? '';
  // a bad address is refused before anything starts ("" turns the endpoint off)
  if (apiserverMetricsAddr) parseServeAddr(apiserverMetricsAddr);
  if (meshMetricsAddr) parseServeAddr(meshMetricsAddr);
  let srv: MeshApiServer;
  if (values['config-dir']) {
    if (values['mesh-dir'] || !values.kubeconfig || !values['etcd-config'])
      throw new TendrilError(
        'CONFIG_INVALID',
        '--config-dir needs --kubeconfig and --etcd-config, and excludes --mesh-dir',
        { hint: USAGE },
      );
    srv = new MeshApiServer({
      logger: log,
      kubeconfig: values.kubeconfig,
      source: configDirSource({
        configDir: values['config-dir'],
        kubeconfig: values.kubeconfig,
        etcdConfig: values['etcd-config'],
        clustermeshConfig: values['clustermesh-config'],
        usersConfig: values['cluster-users-config'],
        statusSocket: values['status-socket'],
        logger: log,
      }),
    });
  } else if (values['mesh-dir']) {
    srv = new MeshApiServer({
      meshDir: values['mesh-dir'],
      logger: log,
      ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
    });
  } else {
    throw new TendrilError('CONFIG_INVALID', 'no --config-dir or --mesh-dir given', {
      hint: USAGE,
    });
  }
  const server = srv;
  // a busy port is logged, not fatal
  const serve = (what: string, make: () => Parameters<typeof serveMetrics>[0], addr: string) =>
    addr
      ? serveMetrics(make(), addr).catch((err: unknown) => {
          log.error(`cannot serve ${what} metrics`, { error: describeError(err) });
          return undefined;
        })
      : Promise.resolve(undefined);
  const metrics: (MetricsServer | undefined)[] = [
    await serve(
      'clustermesh-apiserver',
      () => createApiserverMetrics({ status: () => server.syncerStatus() }),
      apiserverMetricsAddr,
    ),
    await serve(
      'kvstoremesh',
      () => createKVStoreMeshMetrics({ status: () => server.kvstoremeshStatus() }),
      meshMetricsAddr,
    ),
  ];
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal: sig });
    void Promise.all(metrics.map((m) => m?.close()))
      .then(() => srv.stop())
      .finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await srv.start({ etcdWaitMs: 120_000 });
}

main().catch((err) => {
  process.stderr.write(`clustermesh-apiserver: ${describeError(err)}\n`);
  process.exit(1);
});

/**
 * The clustermesh-apiserver daemon of a lab cluster (started by
 * `tendril clustermesh enable` as a supervised daemon in the control plane's
 * network namespace, next to its etcd):
 *
 *   node --import tsx src/clustermesh/apiserver/main.ts --cluster <lab cluster> [--kubeconfig FILE]
 *
 * Everything else comes from $TENDRIL_HOME/clusters/<lab cluster>/clustermesh/.
 */
import { parseArgs } from 'node:util';
import { createLogger } from '../../util/log.js';
import { describeError } from '../../util/errors.js';
import { MeshApiServer } from './server.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { cluster: { type: 'string' }, kubeconfig: { type: 'string' } },
  });
  if (!values.cluster) throw new Error('usage: main.ts --cluster <lab cluster>');
  const log = createLogger({ daemon: 'clustermesh-apiserver', cluster: values.cluster });
  const srv = new MeshApiServer({
    labCluster: values.cluster,
    logger: log,
    ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
  });
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal: sig });
    void srv.stop().finally(() => process.exit(0));
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

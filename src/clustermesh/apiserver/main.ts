/**
 * The clustermesh-apiserver daemon (in the lab, `tendril clustermesh enable`
 * starts it as a supervised daemon in the control plane's network namespace,
 * next to its etcd):
 *
 *   node --import tsx src/clustermesh/apiserver/main.ts --mesh-dir DIR [--kubeconfig FILE]
 *
 * Everything comes from DIR: mesh.json, the certificates, remotes/ and
 * readers/ (see ../mesh-files.ts); nothing names a lab cluster. FILE: the
 * Kubernetes API server, its CA and this daemon's credential (default: the
 * mesh config's apiServerURL, no credential).
 */
import { parseArgs } from 'node:util';
import { createLogger } from '../../util/log.js';
import { describeError } from '../../util/errors.js';
import { MeshApiServer } from './server.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { 'mesh-dir': { type: 'string' }, kubeconfig: { type: 'string' } },
  });
  const meshDir = values['mesh-dir'];
  if (!meshDir) throw new Error('usage: main.ts --mesh-dir DIR [--kubeconfig FILE]');
  const log = createLogger({ daemon: 'clustermesh-apiserver' });
  const srv = new MeshApiServer({
    meshDir,
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

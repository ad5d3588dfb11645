/**
 * Daemon entry of a lab cluster's API server.
 *
 *   node --import tsx src/lab/apiserver/main.ts --cluster NAME --data-dir DIR
 *       --listen 127.0.0.1:PORT [--socket PATH] [--service-cidr CIDR]
 *       [--store disk|memory|etcd] [--etcd-endpoints URL[,URL...]]
 *       [--advertise-address IP:PORT]
 *       [--secure-socket PATH] [--secure-listen HOST:PORT]
 *       [--node-listen IP:PORT --node-netns NETNS]
 *       --tls-cert-file F --tls-private-key-file F [--client-ca-file F] [--token-auth-file F]
 *
 * The https listeners (authenticated) are a Unix socket, a TCP address in the
 * root namespace (the CLI's and kubectl's way in, 127.0.0.1), and a TCP
 * address in another network namespace (--node-netns, a name under
 * /run/netns: the control plane's, where the nodes' daemons reach
 * <control-plane IP>:6443). The last is made with setns(2) on the main
 * thread (./netns-listen.ts), so the API server runs in the root namespace
 * and no process relays its connections.
 *
 * "memory" is an alias of "disk" (objects in memory, persisted in DIR/store).
 * PORT 0 picks a free port. Once serving, DIR/apiserver.json holds
 * {"url","port","pid","socket"} and "API server listening" is logged.
 * SIGTERM/SIGINT stop it cleanly (the disk store writes its snapshot).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readTokenFile } from './auth.js';
import { EtcdKVStore } from '../../kvstore/etcd.js';
import type { KVStore } from '../../kvstore/types.js';
import { describeError, TendrilError } from '../../util/errors.js';
import { createLogger } from '../../util/log.js';
import { startApiServer } from './apiserver.js';
import { writeFileAtomicSync } from '../../util/atomic-write.js';

/** Parsed daemon arguments. */
export interface ApiServerArgs {
  cluster: string;
  dataDir: string;
  host: string;
  port: number;
  socket?: string;
  serviceCIDR: string;
  store: 'disk' | 'etcd';
  etcdEndpoints: string[];
  advertise?: { ip: string; port: number };
  /** https: serving certificate and key, client CA, static tokens, and the https Unix socket. */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  clientCAFile?: string;
  tokenAuthFile?: string;
  secureSocket?: string;
  /** https on TCP in the root namespace. */
  secureListen?: { host: string; port: number };
  /** https on TCP inside the network namespace `netns`. */
  nodeListen?: { netns: string; host: string; port: number };
}

/**
 * Parses the daemon's argv.
 * @throws TendrilError `APISERVER_BAD_ARGS` naming the bad flag.
 */
export function parseApiServerArgs(argv: string[]): ApiServerArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      cluster: { type: 'string' },
      'data-dir': { type: 'string' },
      listen: { type: 'string', default: '127.0.0.1:0' },
      socket: { type: 'string' },
      'service-cidr': { type: 'string', default: '10.96.0.0/16' },
      store: { type: 'string', default: 'disk' },
      'etcd-endpoints': { type: 'string' },
      'advertise-address': { type: 'string' },
      'tls-cert-file': { type: 'string' },
      'tls-private-key-file': { type: 'string' },
      'client-ca-file': { type: 'string' },
      'token-auth-file': { type: 'string' },
      'secure-socket': { type: 'string' },
      'secure-listen': { type: 'string' },
      'node-listen': { type: 'string' },
      'node-netns': { type: 'string' },
    },
    strict: true,
  });
  const bad = (msg: string, hint: string) => new TendrilError('APISERVER_BAD_ARGS', msg, { hint });
  if (!values.cluster) throw bad('--cluster is required', 'pass --cluster NAME');
  if (!values['data-dir']) throw bad('--data-dir is required', 'pass --data-dir DIR');
  const m = /^([0-9.]+|\[[0-9a-f:]+\]|localhost):(\d{1,5})$/.exec(values.listen!);
  if (!m || Number(m[2]) > 65535)
    throw bad(
      `--listen ${values.listen}: expected HOST:PORT`,
      'e.g. --listen 127.0.0.1:6443 (port 0 picks one)',
    );
  const host = m[1]!.replace(/^\[|\]$/g, '');
  if (!['127.0.0.1', 'localhost', '::1'].includes(host) && !host.startsWith('127.')) {
    throw bad(
      `--listen ${values.listen}: the lab API server has no authentication and only listens on loopback`,
      'use 127.0.0.1:PORT',
    );
  }
  const store = values.store === 'memory' ? 'disk' : values.store;
  if (store !== 'disk' && store !== 'etcd')
    throw bad(
      `--store ${values.store}: unknown store`,
      'use --store disk (default) or --store etcd',
    );
  const etcdEndpoints = (values['etcd-endpoints'] ?? '').split(',').filter(Boolean);
  if (store === 'etcd' && etcdEndpoints.length === 0)
    throw bad('--store etcd needs --etcd-endpoints', 'e.g. --etcd-endpoints http://127.0.0.1:2379');
  let advertise: ApiServerArgs['advertise'];
  if (values['advertise-address']) {
    const a = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(values['advertise-address']);
    if (!a)
      throw bad(
        `--advertise-address ${values['advertise-address']}: expected IPv4:PORT`,
        'e.g. --advertise-address 172.30.1.10:6443',
      );
    advertise = { ip: a[1]!, port: Number(a[2]) };
  }
  if (values['secure-socket'] && (!values['tls-cert-file'] || !values['tls-private-key-file']))
    throw bad(
      '--secure-socket needs --tls-cert-file and --tls-private-key-file',
      "pass the serving certificate and key (the lab writes them under the cluster's pki/)",
    );
  const tls = Boolean(values['tls-cert-file'] && values['tls-private-key-file']);
  let secureListen: ApiServerArgs['secureListen'];
  if (values['secure-listen']) {
    const a = /^(\d+\.\d+\.\d+\.\d+):(\d{1,5})$/.exec(values['secure-listen']);
    if (!a || Number(a[2]) > 65535)
      throw bad(
        `--secure-listen ${values['secure-listen']}: expected IPv4:PORT`,
        'e.g. --secure-listen 127.0.0.1:6443 (port 0 picks one)',
      );
    if (!tls)
      throw bad(
        '--secure-listen needs --tls-cert-file and --tls-private-key-file',
        "pass the serving certificate and key (the lab writes them under the cluster's pki/)",
      );
    secureListen = { host: a[1]!, port: Number(a[2]) };
  }
  let nodeListen: ApiServerArgs['nodeListen'];
  if (values['node-listen'] || values['node-netns']) {
    const a = /^(\d+\.\d+\.\d+\.\d+):(\d{1,5})$/.exec(values['node-listen'] ?? '');
    if (!a || Number(a[2]) > 65535)
      throw bad(
        `--node-listen ${values['node-listen'] ?? '(missing)'}: expected IPv4:PORT`,
        '--node-netns NETNS goes with --node-listen IP:PORT, e.g. --node-listen 172.30.1.10:6443',
      );
    if (!values['node-netns'])
      throw bad(
        '--node-listen needs --node-netns',
        "pass the network namespace that holds the address (the control plane's, e.g. tendril-c1-control-plane)",
      );
    if (!tls)
      throw bad(
        '--node-listen needs --tls-cert-file and --tls-private-key-file',
        "pass the serving certificate and key (the lab writes them under the cluster's pki/)",
      );
    nodeListen = { netns: values['node-netns'], host: a[1]!, port: Number(a[2]) };
  }
  return {
    ...(secureListen ? { secureListen } : {}),
    ...(nodeListen ? { nodeListen } : {}),
    ...(values['tls-cert-file'] ? { tlsCertFile: values['tls-cert-file'] } : {}),
    ...(values['tls-private-key-file'] ? { tlsKeyFile: values['tls-private-key-file'] } : {}),
    ...(values['client-ca-file'] ? { clientCAFile: values['client-ca-file'] } : {}),
    ...(values['token-auth-file'] ? { tokenAuthFile: values['token-auth-file'] } : {}),
    ...(values['secure-socket'] ? { secureSocket: values['secure-socket'] } : {}),
    cluster: values.cluster,
    dataDir: values['data-dir'],
    host,
    port: Number(m[2]),
    socket: values.socket,
    serviceCIDR: values['service-cidr']!,
    store,
    etcdEndpoints,
    advertise,
  };
}

async function run(): Promise<void> {
  const log = createLogger({ subsys: 'apiserver' });
  let args: ApiServerArgs;
  try {
    args = parseApiServerArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`apiserver: ${describeError(err)}\n`);
    process.exit(2);
  }
  const logger = log.child({ cluster: args.cluster });
  mkdirSync(args.dataDir, { recursive: true });
  let kv: KVStore | undefined;
  if (args.store === 'etcd')
    kv = new EtcdKVStore({
      endpoints: args.etcdEndpoints,
      logger: logger.child({ subsys: 'etcd' }),
    });
  const server = await startApiServer({
    cluster: args.cluster,
    dataDir: args.dataDir,
    host: args.host,
    port: args.port,
    socketPath: args.socket,
    serviceCIDR: args.serviceCIDR,
    store: args.store,
    kvstore: kv,
    advertise: args.advertise,
    logger,
    ...(args.secureSocket ? { secureSocketPath: args.secureSocket } : {}),
    ...(args.secureListen ? { secureTcp: args.secureListen } : {}),
    ...(args.nodeListen ? { secureNetnsTcp: args.nodeListen } : {}),
    ...(args.tlsCertFile && args.tlsKeyFile
      ? {
          tls: {
            cert: readFileSync(args.tlsCertFile, 'utf8'),
            key: readFileSync(args.tlsKeyFile, 'utf8'),
            ...(args.clientCAFile ? { clientCA: readFileSync(args.clientCAFile, 'utf8') } : {}),
            tokens: args.tokenAuthFile ? readTokenFile(args.tokenAuthFile) : new Map(),
          },
        }
      : {}),
  });
  // Written whole, then renamed: a reader polling for the file never sees it half-written.
  const info = join(args.dataDir, 'apiserver.json');
  writeFileAtomicSync(
    info,
    JSON.stringify({
      url: server.url,
      port: server.port,
      pid: process.pid,
      socket: args.socket ?? null,
    }) + '\n',
  );
  let stopping = false;
  const stop = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping', { signal: sig });
    await server.close();
    await kv?.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  run().catch((err) => {
    process.stderr.write(`apiserver: ${describeError(err)}\n`);
    if (process.env.TENDRIL_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exit(1);
  });
}

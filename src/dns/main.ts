/**
 * The cluster DNS daemon entry:
 *
 *   node --import tsx src/dns/main.ts --listen IP:PORT --server URL
 *   node --import tsx src/dns/main.ts --listen IP:PORT --kubeconfig PATH [--context NAME]
 *
 * Options: --domain (cluster.local), --clusterset-domain (clusterset.local),
 * --ttl SECONDS (5), --no-service-imports. SIGTERM/SIGINT stop it.
 *
 * The watches run on KubeClient: --kubeconfig gives it the server, the CA and
 * the credential (token, tokenFile, client certificate) as kubectl reads them
 * (src/k8s/client-config.ts, no client-node); --server takes a bare URL.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { kubeconfigClientOptions } from '../k8s/client-config.js';
import { KubeClient, type KubeClientOptions } from '../k8s/client.js';
import { describeError, TendrilError } from '../util/errors.js';
import { createLogger } from '../util/log.js';
import { startDNSDaemon } from './daemon.js';
import { serveMetrics } from '../util/metrics-server.js';
import { createDNSMetrics, DNS_METRICS_ADDR } from './metrics.js';

/** Parsed command line. */
export interface DNSMainArgs {
  host: string;
  port: number;
  /** The API server: http://HOST:PORT or unix:/path. */
  apiServer: string;
  /** CA, client certificate and token from a kubeconfig (empty with --server). */
  auth: Omit<KubeClientOptions, 'server'>;
  clusterDomain: string;
  clusterSetDomain: string;
  ttl: number;
  serviceImports: boolean;
  /** --prometheus-serve-addr (default :9153; empty: no metrics). */
  metricsAddr: string;
}

/**
 * Parses the command line.
 * @throws TendrilError DNS_USAGE naming the bad or missing option.
 */
export async function parseDNSArgs(argv: string[]): Promise<DNSMainArgs> {
  const usage = (msg: string) =>
    new TendrilError('DNS_USAGE', `tendril dns: ${msg}`, {
      hint: 'usage: src/dns/main.ts --listen IP:PORT (--server URL | --kubeconfig PATH [--context NAME])',
    });
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        listen: { type: 'string' },
        server: { type: 'string' },
        kubeconfig: { type: 'string' },
        context: { type: 'string' },
        domain: { type: 'string', default: 'cluster.local' },
        'clusterset-domain': { type: 'string', default: 'clusterset.local' },
        ttl: { type: 'string', default: '5' },
        'no-service-imports': { type: 'boolean', default: false },
        'prometheus-serve-addr': { type: 'string', default: DNS_METRICS_ADDR },
      },
      strict: true,
    }));
  } catch (err) {
    throw usage((err as Error).message);
  }
  const listen = values.listen as string | undefined;
  let apiServer: string;
  let auth: Omit<KubeClientOptions, 'server'> = {};
  const sources = ['server', 'kubeconfig'].filter((k) => values[k] !== undefined);
  if (sources.length !== 1)
    throw usage(
      sources.length === 0
        ? 'say where the API server is'
        : `--${sources.join(' and --')} exclude each other`,
    );
  if (values.server) {
    apiServer = String(values.server);
    if (!/^(https?:\/\/|unix:)/.test(apiServer))
      throw usage(`--server ${apiServer} is not an http(s):// URL or unix:/path`);
  } else {
    let kc;
    try {
      kc = kubeconfigClientOptions({
        path: String(values.kubeconfig),
        ...(values.context ? { context: String(values.context) } : {}),
      });
    } catch (err) {
      throw usage(`cannot read kubeconfig: ${(err as Error).message}`);
    }
    const { server, ...rest } = kc;
    apiServer = server;
    auth = rest;
  }
  if (!listen) throw usage('--listen IP:PORT is required');
  const m = /^(.+):(\d+)$/.exec(listen);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 0 && port < 65536)) throw usage(`--listen ${listen} is not IP:PORT`);
  const ttl = Number(values.ttl);
  if (!Number.isInteger(ttl) || ttl < 0)
    throw usage(`--ttl ${values.ttl} is not a whole number of seconds`);
  return {
    host: m[1]!.replace(/^\[|\]$/g, ''),
    port,
    apiServer,
    auth,
    clusterDomain: String(values.domain),
    clusterSetDomain: String(values['clusterset-domain']),
    ttl,
    serviceImports: !values['no-service-imports'],
    metricsAddr: String(values['prometheus-serve-addr']),
  };
}

async function main(): Promise<void> {
  const log = createLogger({ daemon: 'dns' });
  const args = await parseDNSArgs(process.argv.slice(2));
  const daemon = await startDNSDaemon({
    host: args.host,
    port: args.port,
    client: new KubeClient({ ...args.auth, server: args.apiServer }),
    clusterDomain: args.clusterDomain,
    clusterSetDomain: args.clusterSetDomain,
    ttl: args.ttl,
    serviceImports: args.serviceImports,
    logger: log,
  });
  // --prometheus-serve-addr "" turns metrics off; a busy port is logged, not fatal
  const metrics = args.metricsAddr
    ? await serveMetrics(
        createDNSMetrics({ stats: () => daemon.server.stats(), problems: () => daemon.problems() }),
        args.metricsAddr,
      ).catch((err: unknown) => {
        log.error('cannot serve metrics', { error: describeError(err) });
        return undefined;
      })
    : undefined;
  log.info('cluster DNS started', {
    listen: `${args.host}:${daemon.server.port}`,
    apiServer: args.apiServer,
    domain: args.clusterDomain,
  });
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal: sig });
    void Promise.all([daemon.stop(), metrics?.close()]).then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main().catch((err) => {
    process.stderr.write(`tendril dns: ${describeError(err)}\n`);
    process.exit(1);
  });
}

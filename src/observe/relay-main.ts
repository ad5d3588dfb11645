/**
 * The Hubble Relay daemon, one per cluster:
 *
 *   node --import tsx src/observe/relay-main.ts --kubeconfig FILE --node-socket TEMPLATE \
 *        [--socket PATH] [--listen-address HOST:4245 --tls-ca F --tls-cert F --tls-key F] \
 *        [--node-tls-port 4244] [--remote-relays DIR]
 *
 * Peers: every Node the API server lists, reached at TEMPLATE with `{node}`
 * replaced (a node-local observer socket the relay can open), or, with
 * --node-tls-port, at the Node's InternalIP on that port with mutual TLS
 * (--tls-*: the mesh CA and the relay's certificate); plus one peer per file
 * of --remote-relays (`<cluster>.json`: {"address": "host:4245", "caFile",
 * "certFile", "keyFile", "serverName"?}), another cluster's relay reached
 * with the mesh's certificates. Serves the Observer API on --socket (for the
 * CLI on this machine) and on --listen-address (mutual TLS, for other
 * clusters' relays). Metrics (Prometheus text, GET /metrics) on
 * --prometheus-serve-addr (default :9966, Cilium's relay port; "" turns them
 * off, a bad value is refused, a busy port is logged and the relay keeps running).
 */
import { parseArgs } from 'node:util';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger } from '../util/log.js';
import { describeError, TendrilError } from '../util/errors.js';
import { KubeClient } from '../k8s/client.js';
import { kubeconfigClientOptions } from '../k8s/client-config.js';
import { Relay, type RelayPeer } from './relay.js';
import type { MutualTLS } from './server.js';
import { HubbleTLSFileError, readMutualTLSFiles } from './tls-files.js';
import { parseServeAddr, serveMetrics } from '../util/metrics-server.js';
import { RELAY_METRICS_ADDR, createRelayMetrics } from './relay-metrics.js';

const { values } = parseArgs({
  options: {
    kubeconfig: { type: 'string' },
    'node-socket': { type: 'string' },
    'node-tls-port': { type: 'string' },
    socket: { type: 'string' },
    'listen-address': { type: 'string' },
    'tls-ca': { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'remote-relays': { type: 'string' },
    name: { type: 'string', default: 'hubble-relay' },
    'prometheus-serve-addr': { type: 'string', default: RELAY_METRICS_ADDR },
  },
});

const log = createLogger({ daemon: 'hubble-relay' });

interface NodeObj {
  metadata: { name: string };
  status?: { addresses?: Array<{ type: string; address: string }> };
}

/** Another cluster's relay as a --remote-relays file says it. */
interface RemoteRelayFile {
  address: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  serverName?: string;
}

/** The next step when the relay's own certificate files are bad. */
const RELAY_TLS_FIX =
  'issue the relay a certificate from the cluster CA again (in a lab: `tendril install` re-issues every Hubble certificate)';
/** The next step when a remote relay's files are bad. */
const REMOTE_TLS_FIX =
  'connect the clusters again (`tendril clustermesh connect`): it rewrites the remote relay files';

function readTLS(ca?: string, cert?: string, key?: string): MutualTLS | undefined {
  if (!ca && !cert && !key) return undefined;
  if (!ca || !cert || !key)
    throw new TendrilError(
      'RELAY_USAGE',
      'hubble-relay: --tls-ca, --tls-cert and --tls-key go together',
      {
        hint: 'pass all three (the cluster CA, the relay certificate and its key) or none',
      },
    );
  return readMutualTLSFiles({ caFile: ca, certFile: cert, keyFile: key }, RELAY_TLS_FIX);
}

/** The other clusters' relays named in DIR (`<cluster>.json`); a bad file is a peer reported unusable. */
function remoteRelays(dir: string | undefined): RelayPeer[] {
  if (!dir) return [];
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  const out: RelayPeer[] = [];
  for (const n of names.sort()) {
    const cluster = n.slice(0, -'.json'.length);
    const file = join(dir, n);
    let r: RemoteRelayFile | undefined;
    try {
      r = JSON.parse(readFileSync(file, 'utf8')) as RemoteRelayFile;
      if (typeof r.address !== 'string' || !r.caFile || !r.certFile || !r.keyFile)
        throw new Error('needs "address", "caFile", "certFile" and "keyFile"');
      const tls = readMutualTLSFiles(
        { caFile: r.caFile, certFile: r.certFile, keyFile: r.keyFile },
        REMOTE_TLS_FIX,
      );
      out.push({
        name: `cluster:${cluster}`,
        remoteCluster: cluster,
        client: {
          address: r.address,
          tls: { ...tls, ...(r.serverName ? { serverName: r.serverName } : {}) },
        },
      });
    } catch (err) {
      const why =
        err instanceof HubbleTLSFileError
          ? describeError(err)
          : `hubble relay: remote relay file ${file}: ${(err as Error).message}\n  hint: ${REMOTE_TLS_FIX}`;
      if (!warned.has(file + why)) {
        warned.add(file + why);
        log.warn('hubble relay: a remote relay cannot be used', { file, error: why });
      }
      out.push({
        name: `cluster:${cluster}`,
        remoteCluster: cluster,
        client: { address: r?.address ?? '(unknown)' },
        unusable: why,
      });
    }
  }
  return out;
}
const warned = new Set<string>();

async function main(): Promise<void> {
  if (!values.kubeconfig || (!values['node-socket'] && !values['node-tls-port']))
    throw new TendrilError('RELAY_USAGE', 'hubble-relay: where are the nodes?', {
      hint: 'usage: relay-main --kubeconfig FILE (--node-socket TEMPLATE | --node-tls-port 4244 --tls-ca F --tls-cert F --tls-key F) [--socket PATH] [--listen-address HOST:PORT] [--remote-relays DIR]',
    });
  const metricsAddr = values['prometheus-serve-addr'] ?? '';
  if (metricsAddr) parseServeAddr(metricsAddr); // a bad address is refused before anything starts
  const tls = readTLS(values['tls-ca'], values['tls-cert'], values['tls-key']);
  if (values['node-tls-port'] && !tls)
    throw new TendrilError('RELAY_USAGE', 'hubble-relay: --node-tls-port needs a certificate', {
      hint: 'pass --tls-ca, --tls-cert and --tls-key (nodes serve :4244 only with mutual TLS)',
    });
  const kube = new KubeClient({
    ...kubeconfigClientOptions({ path: values.kubeconfig }),
    timeoutMs: 5000,
  });
  const template = values['node-socket'];
  const tlsPort = values['node-tls-port'];
  let lastNodes: NodeObj[] = [];
  const peers = async (): Promise<RelayPeer[]> => {
    try {
      lastNodes = (await kube.list('v1', 'Node')).items as unknown as NodeObj[];
    } catch (err) {
      log.warn('hubble relay: cannot list nodes; using the last list', {
        error: describeError(err),
      });
    }
    const local: RelayPeer[] = lastNodes.map((n) => {
      const name = n.metadata.name;
      if (template)
        return { name, client: { address: `unix:${template.replace('{node}', name)}` } };
      const ip = n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address ?? name;
      return { name, client: { address: `${ip}:${tlsPort}`, ...(tls ? { tls } : {}) } };
    });
    return [...local, ...remoteRelays(values['remote-relays'])];
  };
  const relay = new Relay({ name: values.name!, peers, logger: log });
  const listen = values['listen-address'];
  if (listen && !tls)
    log.warn('hubble relay: no certificate (--tls-*): not listening on TCP', { address: listen });
  await relay.listen({
    ...(values.socket ? { socketPath: values.socket } : {}),
    ...(listen && tls ? { tcpAddress: listen, tls } : {}),
  });
  // --prometheus-serve-addr "" turns metrics off; a busy port is logged, not fatal
  const metrics = metricsAddr
    ? await serveMetrics(createRelayMetrics(relay), metricsAddr).catch((err: unknown) => {
        log.error('hubble relay: cannot serve metrics', { error: describeError(err) });
        return undefined;
      })
    : undefined;
  log.info('hubble relay running', { addresses: relay.addresses, metrics: metrics?.url });
  const stop = async () => {
    await metrics?.close();
    await relay.close();
    kube.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}

main().catch((err) => {
  log.error('hubble relay failed to start', { error: describeError(err) });
  process.exit(1);
});

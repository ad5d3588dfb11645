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
 * clusters' relays).
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

function readTLS(ca?: string, cert?: string, key?: string): MutualTLS | undefined {
  if (!ca || !cert || !key) return undefined;
  return {
    ca: readFileSync(ca, 'utf8'),
    cert: readFileSync(cert, 'utf8'),
    key: readFileSync(key, 'utf8'),
  };
}

function remoteRelays(dir: string | undefined): RelayPeer[] {
  if (!dir) return [];
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  const out: RelayPeer[] = [];
  for (const n of names) {
    const cluster = n.slice(0, -'.json'.length);
    try {
      const r = JSON.parse(readFileSync(join(dir, n), 'utf8')) as RemoteRelayFile;
      const tls = readTLS(r.caFile, r.certFile, r.keyFile);
      out.push({
        name: `cluster:${cluster}`,
        remoteCluster: cluster,
        client: {
          address: r.address,
          ...(tls
            ? { tls: { ...tls, ...(r.serverName ? { serverName: r.serverName } : {}) } }
            : {}),
        },
      });
    } catch (err) {
      log.warn('hubble relay: cannot read a remote relay', { file: n, error: describeError(err) });
    }
  }
  return out;
}

async function main(): Promise<void> {
  if (!values.kubeconfig || (!values['node-socket'] && !values['node-tls-port']))
    throw new TendrilError('RELAY_USAGE', 'hubble-relay: where are the nodes?', {
      hint: 'usage: relay-main --kubeconfig FILE (--node-socket TEMPLATE | --node-tls-port 4244 --tls-ca F --tls-cert F --tls-key F) [--socket PATH] [--listen-address HOST:PORT] [--remote-relays DIR]',
    });
  const kube = new KubeClient({
    ...kubeconfigClientOptions({ path: values.kubeconfig }),
    timeoutMs: 5000,
  });
  const tls = readTLS(values['tls-ca'], values['tls-cert'], values['tls-key']);
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
  log.info('hubble relay running', { addresses: relay.addresses });
  const stop = async () => {
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

/**
 * Starts a node's Observer API for the agent: the node-local Unix socket
 * always, and TCP (Hubble's :4244) with mutual TLS when the node has a
 * certificate from the cluster's CA; without one, TCP stays off and the log says
 * why (Hubble never serves flows unauthenticated over the network).
 */
import type { FlowSource } from './flow.js';
import { ObserverServer, type MutualTLS } from './server.js';
import type { Logger } from '../util/log.js';
import { TendrilError, describeError } from '../util/errors.js';
import { readMutualTLSFiles } from './tls-files.js';

/** The next step when a node's Hubble certificate files are bad. */
export const HUBBLE_NODE_TLS_FIX =
  'issue the node a certificate from the cluster CA again (in a lab: `tendril install` re-issues every Hubble certificate), then restart the agent';

/** Settings of a node's observer (the agent's hubble-* keys). */
export interface NodeObserverConfig {
  enabled: boolean;
  socketPath?: string;
  listenAddress?: string;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  tlsClientCAFile?: string;
}

/**
 * Starts the observer, or returns undefined when Hubble is disabled.
 * @throws TendrilError HUBBLE_LISTEN when the socket cannot be bound.
 */
export async function startNodeObserver(
  cfg: NodeObserverConfig | undefined,
  o: {
    source: FlowSource;
    nodeName: string;
    logger: Logger;
    version?: string;
    /** Told why :4244 stays closed when the certificate files cannot be used (for status). */
    onTLSProblem?: (problem: { cause: string; hint?: string }) => void;
  },
): Promise<ObserverServer | undefined> {
  if (!cfg?.enabled) {
    o.logger.info('hubble disabled (enable-hubble=false)');
    return undefined;
  }
  const server = new ObserverServer({
    source: o.source,
    nodeName: o.nodeName,
    logger: o.logger,
    ...(o.version ? { version: o.version } : {}),
  });
  let tls: MutualTLS | undefined;
  const listen = cfg.listenAddress?.trim();
  if (listen) {
    if (cfg.tlsCertFile && cfg.tlsKeyFile && cfg.tlsClientCAFile) {
      try {
        tls = readMutualTLSFiles(
          { caFile: cfg.tlsClientCAFile, certFile: cfg.tlsCertFile, keyFile: cfg.tlsKeyFile },
          HUBBLE_NODE_TLS_FIX,
        );
      } catch (err) {
        // the datapath and the node socket keep working; only :4244 stays closed
        o.logger.error('hubble: the node certificate cannot be used; TCP is off', {
          address: listen,
          error: describeError(err),
        });
        o.onTLSProblem?.({
          cause: `${(err as Error).message}; ${listen} is not served`,
          ...(err instanceof TendrilError && err.hint ? { hint: err.hint } : {}),
        });
      }
    } else
      o.logger.info('hubble: no mesh certificate (hubble-tls-*); TCP is off, Unix socket only', {
        address: listen,
      });
  }
  await server.listen({
    ...(cfg.socketPath ? { socketPath: cfg.socketPath } : {}),
    ...(listen && tls
      ? { tcpAddress: listen.startsWith(':') ? `0.0.0.0${listen}` : listen, tls }
      : {}),
  });
  o.logger.info('hubble observer listening', { addresses: server.addresses });
  return server;
}

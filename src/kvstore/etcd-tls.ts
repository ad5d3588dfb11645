/**
 * Server identity for etcd endpoints given by IP address, without SNI.
 *
 * grpc-js hands the dialled host to `tls.connect` as `servername`. For an IP
 * endpoint ("https://172.30.1.10:32379") that puts an IP address in the TLS
 * ServerName extension, which RFC 6066 forbids; Node says so with a DEP0123
 * DeprecationWarning on stderr (and will ignore it in a future version).
 *
 * For each endpoint whose identity is an IP address this gives the endpoint's
 * gRPC channel:
 *   - `grpc.ssl_target_name_override` = IP_ENDPOINT_SNI, a DNS name (it is
 *     only the SNI: etcd serves one certificate whatever the client asks for),
 *   - credentials with the same CA, client certificate and key whose
 *     `checkServerIdentity` checks the certificate against that endpoint's
 *     IP address (its IP SANs), exactly what Node checks for an IP host.
 * Certificate verification against the CA is unchanged (grpc-js rejects an
 * unauthorized peer), and the identity stays pinned to the address dialled:
 * IP_ENDPOINT_SNI is never accepted as a name in a certificate.
 *
 * The per-endpoint settings are applied to the etcd3 client's hosts (etcd3
 * shares one set of credentials and channel options between all hosts and
 * has no option for this); `pinEndpointIdentities` reports false when the
 * etcd3 internals it needs are not there, and the client then keeps grpc-js's
 * default (IP as SNI, still verified).
 */
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import type { Etcd3 } from 'etcd3';

/** The SNI sent to etcd endpoints given by IP address (RFC 6066 allows only DNS names). */
export const IP_ENDPOINT_SNI = 'etcd.tendril.invalid';

/** The TLS material of an etcd client. */
export interface EtcdClientTLS {
  ca: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

interface GrpcCredentials {
  createSsl(
    rootCerts: Buffer,
    privateKey: Buffer | null,
    certChain: Buffer | null,
    verifyOptions: {
      checkServerIdentity: (host: string, cert: PeerCertificate) => Error | undefined;
    },
  ): unknown;
}

/** etcd3's per-endpoint Host (connection-pool.js): the fields its gRPC clients are built from. */
interface EtcdHost {
  host: string;
  channelCredentials: unknown;
  channelOptions: Record<string, unknown> | undefined;
}

/**
 * The IP address a server certificate must name for this endpoint URL:
 * `serverName` when it is an IP, else the URL's host when it is an IP, else
 * undefined (a DNS name, which is a valid SNI and checked by default).
 */
export function endpointIdentityIP(endpoint: string, serverName?: string): string | undefined {
  if (serverName) return isIP(serverName) ? serverName : undefined;
  const host = endpointHost(endpoint);
  return isIP(host) ? host : undefined;
}

/**
 * Gives each of `client`'s endpoints whose identity is an IP address a
 * DNS-name SNI and a certificate check against that IP (see the file
 * comment). `endpoints` are the URLs the client was created with, in order.
 * Returns false (changing nothing) when the etcd3 client does not have the
 * expected hosts; never throws.
 */
export function pinEndpointIdentities(
  client: Etcd3,
  endpoints: readonly string[],
  tls: EtcdClientTLS,
  serverName?: string,
): boolean {
  const hosts = (client as unknown as { pool?: { hosts?: unknown } }).pool?.hosts;
  if (!Array.isArray(hosts) || hosts.length !== endpoints.length) return false;
  if (!hosts.every(isEtcdHost)) return false;
  const grpc = etcd3Grpc();
  if (!grpc) return false;
  endpoints.forEach((endpoint, i) => {
    const ip = endpointIdentityIP(endpoint, serverName);
    if (!ip) return;
    const host = hosts[i]!;
    host.channelOptions = {
      ...host.channelOptions,
      'grpc.ssl_target_name_override': IP_ENDPOINT_SNI,
    };
    host.channelCredentials = grpc.createSsl(tls.ca, tls.key ?? null, tls.cert ?? null, {
      // grpc-js passes the override name as `host`; the identity is the IP.
      checkServerIdentity: (_host, cert) => checkServerIdentity(ip, cert),
    });
  });
  return true;
}

function isEtcdHost(h: unknown): h is EtcdHost {
  const o = h as Partial<EtcdHost> | null;
  return (
    typeof o === 'object' &&
    o !== null &&
    typeof o.host === 'string' &&
    'channelCredentials' in o &&
    (o.channelOptions === undefined || typeof o.channelOptions === 'object')
  );
}

/** grpc-js's `credentials`, the very module instance etcd3 uses (resolved from etcd3). */
function etcd3Grpc(): GrpcCredentials | undefined {
  try {
    const req = createRequire(import.meta.url);
    const fromEtcd3 = createRequire(req.resolve('etcd3'));
    const grpc = fromEtcd3('@grpc/grpc-js') as { credentials?: Partial<GrpcCredentials> };
    return typeof grpc.credentials?.createSsl === 'function'
      ? (grpc.credentials as GrpcCredentials)
      : undefined;
  } catch {
    return undefined;
  }
}

function endpointHost(endpoint: string): string {
  try {
    const u = new URL(endpoint.includes('://') ? endpoint : `https://${endpoint}`);
    return u.hostname.replace(/^\[(.*)\]$/, '$1');
  } catch {
    return '';
  }
}

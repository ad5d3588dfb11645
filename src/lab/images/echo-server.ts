/**
 * The built-in stand-in for the `mendhak/http-https-echo` image: answers any
 * method and path with a JSON description of the request, with the fields
 * (and Express semantics, including `trust proxy` for loopback, link-local
 * and unique-local peers) of that image: path, headers, method, body,
 * cookies, fresh, hostname, ip, ips, protocol, query, subdomains, xhr,
 * os.hostname, connection.servername, and `json` for JSON bodies. Listens on
 * HTTP_PORT (8080) and HTTPS_PORT (8443, a self-signed certificate made at
 * start). Honours x-set-response-status-code / x-set-response-delay-ms,
 * ECHO_BACK_TO_CLIENT=false, LOG_IGNORE_PATH, LOG_WITHOUT_NEWLINE and
 * DISABLE_REQUEST_LOGS as the image does.
 *
 * Run as a lab image: `node --import tsx src/lab/images/echo-server.ts`.
 */
import { webcrypto } from 'node:crypto';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIP } from 'node:net';
import { hostname as osHostname } from 'node:os';
import type { TLSSocket } from 'node:tls';
import * as x509 from '@peculiar/x509';

/** The JSON the echo server answers with. */
export interface EchoResponse {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  method: string;
  body: string;
  cookies: Record<string, string>;
  fresh: boolean;
  hostname: string | undefined;
  ip: string;
  ips: string[];
  protocol: string;
  query: Record<string, string | string[]>;
  subdomains: string[];
  xhr: boolean;
  os: { hostname: string };
  connection: { servername?: string };
  json?: unknown;
}

/** The request facts echoResponse needs (a plain object, so it is testable without sockets). */
export interface EchoRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  remoteAddress: string;
  encrypted: boolean;
  servername?: string;
  hostname?: string;
}

/** Strips the IPv4-mapped IPv6 prefix ("::ffff:10.0.0.1" -> "10.0.0.1"). */
export function plainIP(addr: string): string {
  return addr.startsWith('::ffff:') && isIP(addr.slice(7)) === 4 ? addr.slice(7) : addr;
}

/** Express's `trust proxy` ['loopback', 'linklocal', 'uniquelocal'] as the image sets it. */
export function trustedProxy(addr: string): boolean {
  const a = plainIP(addr);
  if (isIP(a) === 4) {
    const [o1, o2] = a.split('.').map(Number) as [number, number];
    return (
      o1 === 127 ||
      (o1 === 169 && o2 === 254) ||
      o1 === 10 ||
      (o1 === 172 && o2 >= 16 && o2 <= 31) ||
      (o1 === 192 && o2 === 168)
    );
  }
  const l = a.toLowerCase();
  return l === '::1' || /^fe[89ab]/.test(l) || /^f[cd]/.test(l);
}

function first(h: string | string[] | undefined): string | undefined {
  return Array.isArray(h) ? h[0] : h;
}

function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    const k = part.slice(0, i).trim();
    let v = part.slice(i + 1).trim();
    if (v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    if (k && !(k in out)) {
      try {
        out[k] = decodeURIComponent(v);
      } catch {
        out[k] = v;
      }
    }
  }
  return out;
}

/** Builds the JSON body for a request, as the image's Express handler does. */
export function echoResponse(req: EchoRequest): EchoResponse {
  const url = new URL(req.url, 'http://x');
  const remote = req.remoteAddress;
  const trusted = trustedProxy(remote);
  // proxy-addr: walk X-Forwarded-For right to left while the hop that told us is trusted.
  const forwarded = (first(req.headers['x-forwarded-for']) ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .reverse();
  const chain = [plainIP(remote)];
  for (let i = 0; i < forwarded.length; i++) {
    if (!trustedProxy(chain[i]!)) break;
    chain.push(forwarded[i]!);
  }
  const ip = chain[chain.length - 1]!;
  const ips = chain.slice(1).reverse();
  let protocol = req.encrypted ? 'https' : 'http';
  const xfp = first(req.headers['x-forwarded-proto']);
  if (trusted && xfp) protocol = xfp.split(',')[0]!.trim();
  let host = first(req.headers['x-forwarded-host']);
  if (!(trusted && host)) host = first(req.headers.host);
  else host = host.split(',')[0]!.trim();
  let hostname: string | undefined;
  if (host) {
    const offset = host.startsWith('[') ? host.indexOf(']') + 1 : 0;
    const colon = host.indexOf(':', offset);
    hostname = colon >= 0 ? host.slice(0, colon) : host;
  }
  const subdomains = hostname && isIP(hostname) === 0 ? hostname.split('.').reverse().slice(2) : [];
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of url.searchParams) {
    const prev = query[k];
    query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  const echo: EchoResponse = {
    path: url.pathname,
    headers: req.headers,
    method: req.method,
    body: req.body,
    cookies: parseCookies(first(req.headers.cookie)),
    fresh: false,
    hostname,
    ip,
    ips,
    protocol,
    query,
    subdomains,
    xhr: (first(req.headers['x-requested-with']) ?? '').toLowerCase() === 'xmlhttprequest',
    os: { hostname: req.hostname ?? osHostname() },
    connection: req.servername ? { servername: req.servername } : {},
  };
  if (/^application\/json\b|\+json\b/i.test(first(req.headers['content-type']) ?? '')) {
    try {
      echo.json = JSON.parse(req.body);
    } catch {
      // the image would fail the request; keep answering
    }
  }
  return echo;
}

function handler(env: NodeJS.ProcessEnv) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const sock = req.socket as TLSSocket;
      const echo = echoResponse({
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        remoteAddress: sock.remoteAddress ?? '',
        encrypted: Boolean(sock.encrypted),
        servername: typeof sock.servername === 'string' ? sock.servername : undefined,
      });
      const q = (k: string) => first(req.headers[k]) ?? (echo.query[k] as string | undefined);
      const status = parseInt(q('x-set-response-status-code') ?? '', 10);
      const delay = parseInt(q('x-set-response-delay-ms') ?? '', 10) || 0;
      setTimeout(() => {
        res.statusCode = status >= 100 && status < 600 ? status : 200;
        res.setHeader('X-Powered-By', 'Express');
        if (env.ECHO_BACK_TO_CLIENT === 'false') {
          res.end();
        } else {
          const body = JSON.stringify(echo, null, 2);
          res.setHeader('Content-Type', 'application/json; charset=utf-8');
          res.setHeader('Content-Length', Buffer.byteLength(body));
          res.end(req.method === 'HEAD' ? undefined : body);
        }
        if (env.DISABLE_REQUEST_LOGS !== 'true') {
          const ua = first(req.headers['user-agent']) ?? '-';
          process.stdout.write(
            `${echo.ip} - - [${new Date().toUTCString()}] "${req.method} ${req.url} HTTP/${req.httpVersion}" ${res.statusCode} - "-" "${ua}"\n`,
          );
        }
        if (env.LOG_IGNORE_PATH !== echo.path) {
          process.stdout.write(
            JSON.stringify(echo, null, env.LOG_WITHOUT_NEWLINE ? undefined : 4) + '\n',
          );
        }
      }, delay);
    });
  };
}

/** Makes a self-signed certificate (ECDSA P-256) for `name`; returns PEM key and certificate. */
export async function selfSignedCert(name: string): Promise<{ key: string; cert: string }> {
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Date.now().toString(16),
    name: `CN=${name}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 365 * 86400_000),
    keys: keys as unknown as Parameters<
      typeof x509.X509CertificateGenerator.createSelfSigned
    >[0]['keys'],
    signingAlgorithm: alg,
    extensions: [
      new x509.SubjectAlternativeNameExtension([
        { type: 'dns', value: name },
        { type: 'dns', value: 'localhost' },
      ]),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const key = `-----BEGIN PRIVATE KEY-----\n${pkcs8
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n?$/, '\n')}-----END PRIVATE KEY-----\n`;
  return { key, cert: cert.toString('pem') };
}

/** A running echo server. */
export interface EchoServer {
  http: Server;
  https: Server;
  close(): Promise<void>;
}

/** Starts the HTTP and HTTPS listeners (ports 0 pick free ones). */
export async function startEchoServer(options: {
  httpPort: number;
  httpsPort: number;
  host?: string;
  env?: NodeJS.ProcessEnv;
}): Promise<EchoServer> {
  const env = options.env ?? process.env;
  const h = handler(env);
  const tls = await selfSignedCert(osHostname());
  const http = createHttpServer(h);
  const https = createHttpsServer({ key: tls.key, cert: tls.cert }, h);
  const listen = (s: Server, port: number) =>
    new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      if (options.host) s.listen(port, options.host, () => resolve());
      else s.listen(port, () => resolve());
    });
  await listen(http, options.httpPort);
  await listen(https, options.httpsPort);
  const close = (s: Server) => new Promise<void>((r) => s.close(() => r()));
  return { http, https, close: async () => void (await Promise.all([close(http), close(https)])) };
}

const isMain =
  process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  const httpPort = Number(process.env.HTTP_PORT ?? 8080);
  const httpsPort = Number(process.env.HTTPS_PORT ?? 8443);
  const srv = await startEchoServer({ httpPort, httpsPort });
  process.stdout.write(`Listening on ports ${httpPort} and ${httpsPort}\n`);
  const shutDown = () => {
    process.stdout.write('Got a kill signal. Trying to exit gracefully.\n');
    void srv.close().then(() => {
      process.stdout.write('HTTP and HTTPS servers closed. Asking process to exit.\n');
      process.exit(0);
    });
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', shutDown);
  process.on('SIGINT', shutDown);
}

/**
 * A minimal DNS client over UDP or TCP (dns-packet), for tests, `tendril
 * status` health checks and debugging: one question, one answer.
 */
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import dnsPacket, { type DecodedPacket, type RecordType } from 'dns-packet';
import { TendrilError } from '../util/errors.js';

export interface DNSQueryOptions {
  server: string;
  port: number;
  name: string;
  type?: RecordType;
  /** Use TCP instead of UDP. */
  tcp?: boolean;
  /** Add an EDNS(0) OPT record with this UDP payload size. */
  ednsPayload?: number;
  timeoutMs?: number;
}

/** The decoded response, with `rcode` ("NOERROR", "NXDOMAIN", ...). */
export type DNSResponse = DecodedPacket & { rcode: string };

/**
 * Sends one query and returns the response.
 * @throws TendrilError DNS_TIMEOUT when no answer comes in time, DNS_QUERY_FAILED on socket errors.
 */
export async function queryDNS(o: DNSQueryOptions): Promise<DNSResponse> {
  const id = Math.floor(Math.random() * 65536);
  const packet = dnsPacket.encode({
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: o.type ?? 'A', name: o.name, class: 'IN' }],
    ...(o.ednsPayload
      ? {
          additionals: [
            {
              type: 'OPT',
              name: '.',
              udpPayloadSize: o.ednsPayload,
              flags: 0,
              options: [],
            } as never,
          ],
        }
      : {}),
  });
  const timeoutMs = o.timeoutMs ?? 2000;
  const what = `DNS ${o.type ?? 'A'} ${o.name} @${o.server}:${o.port}/${o.tcp ? 'tcp' : 'udp'}`;
  const raw = o.tcp
    ? await viaTCP(o, packet, timeoutMs, what)
    : await viaUDP(o, packet, id, timeoutMs, what);
  return dnsPacket.decode(raw) as DNSResponse;
}

function viaUDP(
  o: DNSQueryOptions,
  packet: Buffer,
  id: number,
  timeoutMs: number,
  what: string,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = createSocket(o.server.includes(':') ? 'udp6' : 'udp4');
    const timer = setTimeout(() => {
      sock.close();
      reject(
        new TendrilError('DNS_TIMEOUT', `${what}: no answer within ${timeoutMs} ms`, {
          hint: 'is the cluster DNS running? `tendril status` shows it',
        }),
      );
    }, timeoutMs);
    sock.on('message', (msg) => {
      if (msg.length < 2 || msg.readUInt16BE(0) !== id) return;
      clearTimeout(timer);
      sock.close();
      resolve(msg);
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      sock.close();
      reject(new TendrilError('DNS_QUERY_FAILED', `${what}: ${err.message}`, { cause: err }));
    });
    sock.send(packet, o.port, o.server);
  });
}

function viaTCP(
  o: DNSQueryOptions,
  packet: Buffer,
  timeoutMs: number,
  what: string,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: o.server, port: o.port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(
        new TendrilError('DNS_TIMEOUT', `${what}: no answer within ${timeoutMs} ms`, {
          hint: 'is the cluster DNS running? `tendril status` shows it',
        }),
      );
    }, timeoutMs);
    sock.on('connect', () => {
      const frame = Buffer.alloc(2 + packet.length);
      frame.writeUInt16BE(packet.length, 0);
      packet.copy(frame, 2);
      sock.write(frame);
    });
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        clearTimeout(timer);
        sock.end();
        resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
      }
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      sock.destroy();
      reject(new TendrilError('DNS_QUERY_FAILED', `${what}: ${err.message}`, { cause: err }));
    });
  });
}

/** Result of checkClusterDNS. */
export type DNSCheck =
  { ok: true; ms: number; address: string } | { ok: false; cause: string; hint: string };

/**
 * A functional health check of cluster DNS: resolves
 * kubernetes.default.svc.<domain> (every cluster has that Service). Never throws.
 */
export async function checkClusterDNS(o: {
  server: string;
  port?: number;
  domain?: string;
  timeoutMs?: number;
}): Promise<DNSCheck> {
  const name = `kubernetes.default.svc.${o.domain ?? 'cluster.local'}`;
  const t0 = performance.now();
  try {
    const r = await queryDNS({
      server: o.server,
      port: o.port ?? 53,
      name,
      timeoutMs: o.timeoutMs ?? 1000,
    });
    const a = (r.answers ?? []).find((x) => x.type === 'A') as { data?: string } | undefined;
    if (r.rcode === 'NOERROR' && a?.data)
      return { ok: true, ms: performance.now() - t0, address: a.data };
    return {
      ok: false,
      cause: `${name} -> ${r.rcode}${r.rcode === 'NOERROR' ? ' without an address' : ''}`,
      hint:
        r.rcode === 'REFUSED'
          ? 'the server is not authoritative for this cluster domain (check --domain)'
          : 'the DNS server runs but has not seen the kubernetes Service: is its API server watch failing? see its log',
    };
  } catch (err) {
    return {
      ok: false,
      cause: (err as Error).message,
      hint: 'is the cluster DNS running and reachable from here?',
    };
  }
}

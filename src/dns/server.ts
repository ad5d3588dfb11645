/**
 * The cluster DNS server: UDP and TCP on one address and port, answering
 * from a DNSRecordSource through resolveQuestion. Handles EDNS(0) payload
 * sizes, truncation (TC) over UDP (an answer never exceeds 512 bytes, or the
 * client's EDNS size up to 4096), several queries per TCP connection with
 * backpressure and a connection cap, and malformed packets (FORMERR, or
 * dropped when not even the header parses). Queries without exactly one
 * question are FORMERR, as CoreDNS answers them.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { createServer, type Server, type Socket as TCPSocket } from 'node:net';
import dnsPacket, { type Answer, type DecodedPacket, type Packet } from 'dns-packet';
import { TendrilError } from '../util/errors.js';
import { nopLogger, type Logger } from '../util/log.js';
import type { DNSRecordSource } from './records.js';
import { resolveQuestion, type RCode, type ResolverOptions } from './resolver.js';

export interface DNSServerOptions extends ResolverOptions {
  /** Address to listen on (e.g. 127.0.0.1, or the control plane's address). */
  host: string;
  /** Port (0: a free port, the same for UDP and TCP). */
  port: number;
  source: DNSRecordSource;
  logger?: Logger;
  /** Idle TCP connections are closed after this long (default 10 s). */
  tcpIdleMs?: number;
  /** Open TCP connections at most; more are closed at once (default 256). */
  maxTcpConnections?: number;
  /** Queries answered on one TCP connection before yielding to others (default 64). */
  tcpQueriesPerTurn?: number;
}

/** A running server. */
export interface DNSServer {
  host: string;
  port: number;
  /** Answered queries by rcode. */
  stats(): Record<string, number>;
  close(): Promise<void>;
}

const RCODES: Record<RCode, number> = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
};
const EDNS_PAYLOAD = 1232;

/**
 * Starts the server on UDP and TCP.
 * @throws TendrilError DNS_LISTEN when the address cannot be bound (in use, not local, needs root for port 53).
 */
export async function startDNSServer(options: DNSServerOptions): Promise<DNSServer> {
  const log = (options.logger ?? nopLogger).child({ subsys: 'dns' });
  const counts: Record<string, number> = {};
  const answer = (query: Buffer, transport: 'udp' | undefined): Buffer | undefined => {
    const res = handleQuery(query, options, transport, log);
    if (res) counts[res.rcode] = (counts[res.rcode] ?? 0) + 1;
    return res?.buf;
  };

  let udp: Socket | undefined;
  let tcp: Server | undefined;
  const conns = new Set<TCPSocket>();
  let port = options.port;
  for (let attempt = 0; ; attempt++) {
    try {
      udp = await bindUDP(options.host, port);
      port = udp.address().port;
      tcp = await bindTCP(options.host, port);
      break;
    } catch (err) {
      udp?.close();
      udp = undefined;
      const e = err as NodeJS.ErrnoException;
      if (options.port === 0 && e.code === 'EADDRINUSE' && attempt < 10) {
        port = 0;
        continue;
      }
      throw new TendrilError(
        'DNS_LISTEN',
        `cluster DNS: cannot listen on ${options.host}:${options.port}: ${e.message}`,
        {
          hint:
            e.code === 'EACCES'
              ? 'ports below 1024 need root (or CAP_NET_BIND_SERVICE)'
              : e.code === 'EADDRNOTAVAIL'
                ? `${options.host} is not an address of this host (or of the network namespace the DNS server runs in)`
                : 'another process uses that port; stop it or choose another --listen',
          cause: err,
        },
      );
    }
  }
  udp.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    const out = answer(msg, 'udp');
    if (out) udp!.send(out, rinfo.port, rinfo.address);
  });
  udp.on('error', (err) => log.warn('udp socket error', { error: err }));
  tcp.on('error', (err) => log.warn('tcp listener error', { error: err }));
  tcp.maxConnections = options.maxTcpConnections ?? 256;
  tcp.on('drop', () => log.debug('tcp connection over the cap closed'));
  const idle = options.tcpIdleMs ?? 10_000;
  const perTurn = options.tcpQueriesPerTurn ?? 64;
  tcp.on('connection', (sock) => {
    conns.add(sock);
    sock.setTimeout(idle, () => sock.destroy());
    let buf = Buffer.alloc(0);
    let scheduled = false;
    // Answers queries framed in `buf`. Stops reading while the socket's write
    // buffer is full (a client that does not read its answers gets no more of
    // them, and its further queries wait in its own send buffer), and after
    // `perTurn` queries yields to other connections.
    const work = (): void => {
      scheduled = false;
      let answered = 0;
      while (buf.length >= 2 && !sock.destroyed) {
        if (sock.writableNeedDrain) {
          sock.pause();
          sock.once('drain', () => {
            sock.resume();
            work();
          });
          return;
        }
        if (answered >= perTurn) {
          sock.pause();
          scheduled = true;
          setImmediate(() => {
            sock.resume();
            work();
          });
          return;
        }
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const msg = Buffer.from(buf.subarray(2, 2 + len));
        buf = buf.subarray(2 + len);
        answered++;
        const out = answer(msg, undefined);
        if (out) {
          const frame = Buffer.alloc(2 + out.length);
          frame.writeUInt16BE(out.length, 0);
          out.copy(frame, 2);
          sock.write(frame);
        }
      }
    };
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!scheduled && !sock.writableNeedDrain) work();
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => conns.delete(sock));
  });
  log.info('cluster DNS listening', { host: options.host, port, udp: true, tcp: true });
  return {
    host: options.host,
    port,
    stats: () => ({ ...counts }),
    close: async () => {
      for (const c of conns) c.destroy();
      await Promise.all([
        new Promise<void>((r) => udp!.close(() => r())),
        new Promise<void>((r) => tcp!.close(() => r())),
      ]);
    },
  };
}

/**
 * Builds the response to one query. `transport` 'udp' limits the size
 * (512, or the client's EDNS payload size) and sets TC when it does not fit.
 * Undefined when the packet is not a DNS query at all.
 */
export function handleQuery(
  query: Buffer,
  options: ResolverOptions & { source: DNSRecordSource },
  transport: 'udp' | undefined,
  log: Logger = nopLogger,
): { buf: Buffer; rcode: RCode } | undefined {
  if (query.length < 12) return undefined;
  const id = query.readUInt16BE(0);
  const flags = query.readUInt16BE(2);
  if (flags & 0x8000) return undefined; // a response, not a query
  const rd = flags & dnsPacket.RECURSION_DESIRED;
  // Checked on the header before decoding, as miekg/dns (CoreDNS) does: exactly one
  // question, no answers or authorities, at most two additionals (OPT, TSIG). The
  // refusal echoes no section, so it is never larger than the query's header
  // (a query of 230 compressed questions used to get a 59 KB answer).
  if (
    query.readUInt16BE(4) !== 1 ||
    query.readUInt16BE(6) !== 0 ||
    query.readUInt16BE(8) !== 0 ||
    query.readUInt16BE(10) > 2
  )
    return reply({ id, flags: rd, questions: [] }, 'FORMERR', [], [], [], undefined, transport);
  let req: DecodedPacket;
  try {
    req = dnsPacket.decode(query);
  } catch {
    return reply({ id, flags: rd, questions: [] }, 'FORMERR', [], [], [], undefined, transport);
  }
  const opcode = (flags >> 11) & 0xf;
  const edns = (req.additionals ?? []).find((a) => a.type === 'OPT') as
    { udpPayloadSize?: number } | undefined;
  const questions = req.questions ?? [];
  if (opcode !== 0)
    return reply({ id, flags: rd, questions }, 'NOTIMP', [], [], [], edns, transport);
  if (questions.length !== 1)
    return reply({ id, flags: rd, questions }, 'FORMERR', [], [], [], edns, transport);
  try {
    const r = resolveQuestion(questions[0]!, options.source, options);
    const f = rd | (r.authoritative ? dnsPacket.AUTHORITATIVE_ANSWER : 0);
    return reply(
      { id, flags: f, questions },
      r.rcode,
      r.answers,
      r.authorities,
      r.additionals,
      edns,
      transport,
    );
  } catch (err) {
    log.warn('answering failed', { name: questions[0]!.name, error: err });
    return reply({ id, flags: rd, questions }, 'SERVFAIL', [], [], [], edns, transport);
  }
}

function reply(
  head: { id: number; flags: number; questions: Packet['questions'] },
  rcode: RCode,
  answers: Answer[],
  authorities: Answer[],
  additionals: Answer[],
  edns: { udpPayloadSize?: number } | undefined,
  transport: 'udp' | undefined,
): { buf: Buffer; rcode: RCode } {
  const opt: Answer[] = edns
    ? [
        {
          type: 'OPT',
          name: '.',
          udpPayloadSize: EDNS_PAYLOAD,
          flags: 0,
          options: [],
        } as unknown as Answer,
      ]
    : [];
  const packet: Packet = {
    type: 'response',
    id: head.id,
    flags: head.flags | RCODES[rcode],
    questions: head.questions ?? [],
    answers,
    authorities,
    additionals: [...additionals, ...opt],
  };
  let buf = dnsPacket.encode(packet);
  const max =
    transport === 'udp' ? Math.max(512, Math.min(edns?.udpPayloadSize ?? 512, 4096)) : 65535;
  if (buf.length > max) {
    buf = dnsPacket.encode({
      ...packet,
      flags: (packet.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE,
      answers: [],
      authorities: [],
      additionals: opt,
    });
  }
  if (buf.length > max) {
    // Even the question does not fit (cannot happen with one valid question): header only.
    buf = dnsPacket.encode({
      ...packet,
      flags: (packet.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE,
      questions: [],
      answers: [],
      authorities: [],
      additionals: [],
    });
  }
  return { buf, rcode };
}

function bindUDP(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket({ type: host.includes(':') ? 'udp6' : 'udp4' });
    s.once('error', reject);
    s.bind(port, host, () => {
      s.off('error', reject);
      resolve(s);
    });
  });
}

function bindTCP(host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, host, () => {
      s.off('error', reject);
      resolve(s);
    });
  });
}

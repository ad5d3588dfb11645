/**
 * `nslookup [-type=A|AAAA|SRV|PTR|CNAME|TXT] [-port=N] [-timeout=SEC] NAME
 * [SERVER]` of the lab's busybox image, printing busybox's layout:
 *
 *   Server:		10.96.0.10
 *   Address:	10.96.0.10:53
 *
 *   Name:	kubernetes.default.svc.cluster.local
 *   Address: 10.96.0.1
 *
 * Unlike Debian's busybox 1.35 (which reports the NXDOMAIN of the other
 * search domains and exits 1 even when a name was found, and skips the search
 * list when a server is given), the name is tried with the pod's
 * /etc/resolv.conf search list (and `ndots`) until one answers, as the
 * resolver does; exit status 0 when found, 1 with `** server can't find
 * NAME: NXDOMAIN` when not.
 */
import { readFileSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { RecordType } from 'dns-packet';
import { queryDNS, type DNSResponse } from '../../../dns/client.js';
import type { AppletIO } from './nc.js';

const USAGE = `Usage: nslookup [-type=QUERY_TYPE] [-debug] HOST [DNS_SERVER]

Query DNS about HOST

QUERY_TYPE: soa,ns,a,aaaa,cname,mx,txt,ptr,srv,any
`;

/** What /etc/resolv.conf says. */
export interface ResolvConf {
  nameservers: string[];
  search: string[];
  ndots: number;
}

/** Parses resolv.conf text. */
export function parseResolvConf(text: string): ResolvConf {
  const rc: ResolvConf = { nameservers: [], search: [], ndots: 1 };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const [key, ...vals] = line.split(/\s+/);
    if (key === 'nameserver' && vals[0]) rc.nameservers.push(vals[0]);
    else if (key === 'search' || key === 'domain') rc.search = vals;
    else if (key === 'options')
      for (const v of vals) {
        const m = /^ndots:(\d+)$/.exec(v);
        if (m) rc.ndots = Number(m[1]);
      }
  }
  return rc;
}

/** The names the resolver tries for NAME, in order. */
export function candidates(name: string, rc: ResolvConf): string[] {
  if (name.endsWith('.')) return [name.slice(0, -1)];
  const searched = rc.search.map((d) => `${name}.${d}`);
  const dots = name.split('.').length - 1;
  return dots >= rc.ndots ? [name, ...searched] : [...searched, name];
}

function reverseName(ip: string): string {
  if (isIP(ip) === 4) return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
  const full = ip.includes('::')
    ? (() => {
        const [a, b] = ip.split('::') as [string, string];
        const left = a ? a.split(':') : [];
        const right = b ? b.split(':') : [];
        return [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
      })()
    : ip.split(':');
  return `${full
    .map((g) => g.padStart(4, '0'))
    .join('')
    .split('')
    .reverse()
    .join('.')}.ip6.arpa`;
}

function render(res: DNSResponse, type: string): string[] {
  const out: string[] = [];
  for (const a of res.answers ?? []) {
    const d = (a as { data?: unknown }).data;
    if (a.type === 'A' || a.type === 'AAAA') out.push(`Name:\t${a.name}\nAddress: ${String(d)}\n`);
    else if (a.type === 'CNAME') out.push(`${a.name}\tcanonical name = ${String(d)}\n`);
    else if (a.type === 'PTR') out.push(`${a.name}\tname = ${String(d)}\n`);
    else if (a.type === 'SRV') {
      const s = d as { priority: number; weight: number; port: number; target: string };
      out.push(`${a.name}\tservice = ${s.priority} ${s.weight} ${s.port} ${s.target}\n`);
    } else if (a.type === 'TXT') {
      const t = (Array.isArray(d) ? d : [d]).map((x) => String(x)).join('');
      out.push(`${a.name}\ttext = "${t}"\n`);
    } else if (type === 'ANY') out.push(`${a.name}\t${a.type}\n`);
  }
  return out;
}

/** Runs `nslookup ARGS`; resolves to the exit status. */
export async function nslookup(
  args: string[],
  io: AppletIO,
  resolvConfPath = '/etc/resolv.conf',
): Promise<number> {
  let type = 'A';
  let port = 53;
  let timeoutMs = 5000;
  const rest: string[] = [];
  for (const a of args) {
    const m = /^-(type|query|q|port|timeout|retry|debug)(?:=(.*))?$/.exec(a);
    if (!m) {
      if (a.startsWith('-')) {
        io.stderr.write(USAGE);
        return 1;
      }
      rest.push(a);
      continue;
    }
    if (m[1] === 'port') port = Number(m[2]);
    else if (m[1] === 'timeout') timeoutMs = Number(m[2]) * 1000;
    else if (m[1] !== 'debug' && m[1] !== 'retry') type = (m[2] ?? 'A').toUpperCase();
  }
  if (rest.length === 0 || rest.length > 2) {
    io.stderr.write(USAGE);
    return 1;
  }
  let rc: ResolvConf;
  try {
    rc = parseResolvConf(readFileSync(resolvConfPath, 'utf8'));
  } catch {
    rc = { nameservers: [], search: [], ndots: 1 };
  }
  let server = rest[1] ?? rc.nameservers[0] ?? '127.0.0.1';
  if (!isIP(server)) {
    try {
      server = (await lookup(server)).address;
    } catch {
      io.stderr.write(`nslookup: bad address '${rest[1]}'\n`);
      return 1;
    }
  }
  io.stdout.write(`Server:\t\t${server}\nAddress:\t${server}:${port}\n\n`);
  const name = rest[0]!;
  const reverse = isIP(name) !== 0;
  const names = reverse ? [reverseName(name)] : candidates(name, rc);
  const types: string[] = reverse ? ['PTR'] : type === 'A' ? ['A', 'AAAA'] : [type];
  let lastCode = 'NXDOMAIN';
  for (const n of names) {
    const lines: string[] = [];
    let answered = false;
    for (const t of types) {
      let res: DNSResponse;
      try {
        res = await queryDNS({ server, port, name: n, type: t as RecordType, timeoutMs });
        if (res.flags !== undefined && (res.flags & 0x0200) !== 0)
          res = await queryDNS({
            server,
            port,
            name: n,
            type: t as RecordType,
            timeoutMs,
            tcp: true,
          });
      } catch {
        io.stderr.write(`;; connection timed out; no servers could be reached\n\n`);
        return 1;
      }
      if (res.rcode === 'NOERROR') {
        answered = true;
        lines.push(...render(res, t));
      } else lastCode = res.rcode;
    }
    if (answered && lines.length > 0) {
      io.stdout.write(lines.join('') + '\n');
      return 0;
    }
    if (answered && lines.length === 0) lastCode = 'NOERROR (no answer)';
  }
  io.stdout.write(`** server can't find ${name}: ${lastCode}\n\n`);
  return 1;
}

/**
 * The cluster DNS answer logic, without sockets: one question in, an rcode
 * and records out. Authoritative for the cluster domain (cluster.local) and
 * the clusterset domain (clusterset.local); no recursion (REFUSED outside).
 *
 *   <svc>.<ns>.svc.<zone>                      A (ClusterIP, or endpoint IPs if headless), SRV (one per port)
 *   _<port>._<proto>.<svc>.<ns>.svc.<zone>     SRV -> <svc>.<ns>.svc.<zone>:<port> (+ A in additionals)
 *   <hostname>.<svc>.<ns>.svc.<zone>           A (headless endpoint with a hostname)
 *   <a-b-c-d>.<ns>.pod.<cluster zone>          A a.b.c.d
 *   <zone>                                     SOA, NS
 *
 * An existing name asked for a type it lacks (e.g. AAAA) gets NOERROR with
 * no answer (so resolvers asking A and AAAA together work); an unknown name
 * in a zone gets NXDOMAIN; both carry the zone's SOA for negative caching.
 */
import type { Answer, Question } from 'dns-packet';
import type { DNSRecordSource, DNSService } from './records.js';

export type RCode = 'NOERROR' | 'NXDOMAIN' | 'REFUSED' | 'SERVFAIL' | 'NOTIMP' | 'FORMERR';

export interface ResolveResult {
  rcode: RCode;
  answers: Answer[];
  authorities: Answer[];
  additionals: Answer[];
  /** True when the answer is from a zone we are authoritative for. */
  authoritative: boolean;
}

export interface ResolverOptions {
  /** Cluster domain (default cluster.local). */
  clusterDomain?: string;
  /** Clusterset domain (default clusterset.local). */
  clusterSetDomain?: string;
  /** TTL of answers (default 5 s, as CoreDNS's kubernetes plugin). */
  ttl?: number;
}

/** Answers one question from `source`. */
export function resolveQuestion(
  q: Question,
  source: DNSRecordSource,
  options: ResolverOptions = {},
): ResolveResult {
  const clusterZone = (options.clusterDomain ?? 'cluster.local').toLowerCase().replace(/\.$/, '');
  const setZone = (options.clusterSetDomain ?? 'clusterset.local').toLowerCase().replace(/\.$/, '');
  const ttl = options.ttl ?? 5;
  const qname = q.name.replace(/\.$/, '');
  const lname = qname.toLowerCase();
  const result = (
    rcode: RCode,
    answers: Answer[] = [],
    additionals: Answer[] = [],
    zone?: string,
  ): ResolveResult => ({
    rcode,
    answers,
    additionals,
    authorities: zone && (rcode === 'NXDOMAIN' || answers.length === 0) ? [soa(zone, ttl)] : [],
    authoritative: zone !== undefined,
  });
  if ((q.class ?? 'IN') !== 'IN' && q.class !== 'ANY') return result('REFUSED');

  const zone = [clusterZone, setZone].find((z) => lname === z || lname.endsWith('.' + z));
  if (!zone) return result('REFUSED');
  const clusterSet = zone === setZone && setZone !== clusterZone;
  const labels = lname === zone ? [] : lname.slice(0, -(zone.length + 1)).split('.');
  const type = q.type as string; // "ANY" (255) is missing from the typings

  // The zone apex.
  if (labels.length === 0) {
    if (type === 'SOA') return result('NOERROR', [soa(zone, ttl, qname)], [], zone);
    if (type === 'NS')
      return result(
        'NOERROR',
        [{ name: qname, type: 'NS', class: 'IN', ttl, data: `ns.dns.${zone}` }],
        [],
        zone,
      );
    return result('NOERROR', [], [], zone);
  }
  const last = labels[labels.length - 1]!;

  // Pod names: a-b-c-d.<ns>.pod.<cluster zone>
  if (!clusterSet && last === 'pod') {
    if (labels.length === 1 || labels.length === 2) return result('NOERROR', [], [], zone);
    if (labels.length === 3) {
      const ip = labels[0]!.replace(/-/g, '.');
      if (/^\d+\.\d+\.\d+\.\d+$/.test(ip) && ip.split('.').every((o) => Number(o) <= 255)) {
        return result(
          'NOERROR',
          type === 'A' || type === 'ANY' ? [a(qname, ip, ttl)] : [],
          [],
          zone,
        );
      }
    }
    return result('NXDOMAIN', [], [], zone);
  }
  if (last !== 'svc') return result('NXDOMAIN', [], [], zone);
  // svc.<zone> and <ns>.svc.<zone> exist as names (empty non-terminals).
  if (labels.length <= 2) return result('NOERROR', [], [], zone);

  const ns = labels[labels.length - 2]!;
  const lookup = (name: string): DNSService | undefined =>
    clusterSet ? source.clusterSetService(ns, name) : source.service(ns, name);
  const svcName = labels[labels.length - 3]!;
  const rest = labels.slice(0, -3);
  const svcFQDN = `${svcName}.${ns}.svc.${zone}`;
  const svc = lookup(svcName);
  if (!svc) return result('NXDOMAIN', [], [], zone);

  if (rest.length === 0) {
    if (type === 'A' || type === 'ANY')
      return result(
        'NOERROR',
        svc.ips.map((ip) => a(qname, ip, ttl)),
        [],
        zone,
      );
    if (type === 'SRV') {
      const answers: Answer[] = [];
      const additionals: Answer[] = [];
      for (const p of svc.ports) {
        answers.push(srv(qname, svcFQDN, p.port, ttl));
      }
      if (answers.length > 0) for (const ip of svc.ips) additionals.push(a(svcFQDN, ip, ttl));
      return result('NOERROR', answers, additionals, zone);
    }
    return result('NOERROR', [], [], zone);
  }
  if (rest.length === 1 && svc.headless && !rest[0]!.startsWith('_')) {
    const ip = svc.hostnames?.[rest[0]!];
    if (!ip) return result('NXDOMAIN', [], [], zone);
    return result('NOERROR', type === 'A' || type === 'ANY' ? [a(qname, ip, ttl)] : [], [], zone);
  }
  if (rest.length === 2 && rest[0]!.startsWith('_') && rest[1]!.startsWith('_')) {
    const portName = rest[0]!.slice(1);
    const proto = rest[1]!.slice(1).toUpperCase();
    const ports = svc.ports.filter(
      (p) => p.name !== '' && p.name === portName && p.protocol === proto,
    );
    if (ports.length === 0) return result('NXDOMAIN', [], [], zone);
    if (type !== 'SRV' && type !== 'ANY') return result('NOERROR', [], [], zone);
    const answers = ports.map((p) => srv(qname, svcFQDN, p.port, ttl));
    return result(
      'NOERROR',
      answers,
      svc.ips.map((ip) => a(svcFQDN, ip, ttl)),
      zone,
    );
  }
  if (rest.length === 1 && rest[0]!.startsWith('_')) return result('NOERROR', [], [], zone); // _port.<svc>... is an empty non-terminal
  return result('NXDOMAIN', [], [], zone);
}

function a(name: string, ip: string, ttl: number): Answer {
  return { name, type: 'A', class: 'IN', ttl, data: ip };
}

function srv(name: string, target: string, port: number, ttl: number): Answer {
  return { name, type: 'SRV', class: 'IN', ttl, data: { priority: 0, weight: 100, port, target } };
}

function soa(zone: string, ttl: number, name = zone): Answer {
  return {
    name,
    type: 'SOA',
    class: 'IN',
    ttl,
    data: {
      mname: `ns.dns.${zone}`,
      rname: `hostmaster.${zone}`,
      serial: Math.floor(Date.now() / 1000) % 0xffffffff,
      refresh: 7200,
      retry: 1800,
      expire: 86400,
      minimum: ttl,
    },
  };
}

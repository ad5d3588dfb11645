/**
 * Ports as the policy map holds them: a protocol number (0 = any) and a port
 * prefix (value + number of leading bits that must match, 0..16), so a port
 * range becomes a few prefixes, as Cilium's port masks.
 */

/** IP protocol numbers. */
export const PROTO = { ANY: 0, ICMP: 1, TCP: 6, UDP: 17, SCTP: 132 } as const;

/** One protocol/port prefix. */
export interface PortPrefix {
  /** IP protocol number; 0 = every protocol (then port and bits are 0). */
  protocol: number;
  port: number;
  /** Leading bits of `port` that must match: 16 = exactly this port, 0 = every port. */
  bits: number;
}

/** Splits [lo, hi] into the fewest port prefixes (as a CIDR range split). */
export function portRangePrefixes(lo: number, hi: number): Array<{ port: number; bits: number }> {
  const out: Array<{ port: number; bits: number }> = [];
  let cur = lo;
  while (cur <= hi) {
    let size = 0;
    // Largest aligned block starting at cur that stays within hi.
    while (size < 16) {
      const next = size + 1;
      if (cur % (1 << next) !== 0 || cur + (1 << next) - 1 > hi) break;
      size = next;
    }
    out.push({ port: cur, bits: 16 - size });
    cur += 1 << size;
  }
  return out;
}

/** The protocol numbers a policy protocol name stands for (ANY with a port = TCP, UDP, SCTP). */
export function protocolNumbers(protocol: string, withPort: boolean): number[] {
  switch (protocol) {
    case 'TCP':
      return [PROTO.TCP];
    case 'UDP':
      return [PROTO.UDP];
    case 'SCTP':
      return [PROTO.SCTP];
    default:
      return withPort ? [PROTO.TCP, PROTO.UDP, PROTO.SCTP] : [PROTO.ANY];
  }
}

/** Protocol number -> name ("TCP", "ANY", "proto-47"). */
export function protocolName(n: number): string {
  const e = Object.entries(PROTO).find(([, v]) => v === n);
  return e ? e[0] : `proto-${n}`;
}

/** True if prefix `outer` covers `inner` (protocol 0 covers everything). */
export function portPrefixCovers(outer: PortPrefix, inner: PortPrefix): boolean {
  if (outer.protocol === PROTO.ANY) return true;
  if (outer.protocol !== inner.protocol) return false;
  if (outer.bits > inner.bits) return false;
  const shift = 16 - outer.bits;
  return outer.bits === 0 || inner.port >>> shift === outer.port >>> shift;
}

/** True if a packet's protocol/port falls inside the prefix. */
export function portPrefixMatches(p: PortPrefix, protocol: number, port: number): boolean {
  return portPrefixCovers(p, { protocol, port, bits: 16 });
}

/** "TCP/80", "TCP/8000-8063", "UDP/*", "ANY". */
export function formatPortPrefix(p: PortPrefix): string {
  if (p.protocol === PROTO.ANY) return 'ANY';
  const name = protocolName(p.protocol);
  if (p.bits === 0) return `${name}/*`;
  if (p.bits === 16) return `${name}/${p.port}`;
  return `${name}/${p.port}-${p.port + (1 << (16 - p.bits)) - 1}`;
}

/**
 * The one IPv4 address and CIDR module: parsing, formatting, containment,
 * overlap checks and carving a node's /24 out of a cluster's pod CIDR (the
 * lab, the operator, routes, service VIPs and the lab API server's ClusterIP
 * allocator all use it). Pure functions, no I/O.
 */
import { TendrilError } from './errors.js';

/** A parsed IPv4 CIDR: network base (as an unsigned 32-bit number) and prefix length. */
export interface CIDR4 {
  base: number;
  bits: number;
}

/** Parses a dotted-quad IPv4 address into an unsigned 32-bit number; throws on bad input. */
export function parseIPv4(addr: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(addr.trim());
  if (!m)
    throw new TendrilError('INVALID_IP', `"${addr}" is not an IPv4 address`, {
      hint: 'write it as a.b.c.d, e.g. 10.244.0.1',
    });
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255))
    throw new TendrilError('INVALID_IP', `"${addr}" is not an IPv4 address (octet above 255)`);
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

/** Like {@link parseIPv4}, but returns undefined instead of throwing. */
export function tryParseIPv4(addr: string): number | undefined {
  try {
    return parseIPv4(addr);
  } catch {
    return undefined;
  }
}

/** Formats an unsigned 32-bit number as a dotted quad. */
export function formatIPv4(n: number): string {
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function mask(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/** Options of {@link parseCIDR}. */
export interface ParseCIDROptions {
  /** Clear host bits instead of refusing them ("10.96.0.5/24" -> 10.96.0.0/24). */
  maskHostBits?: boolean;
  /** Smallest prefix length accepted (default 0). */
  minBits?: number;
  /** Largest prefix length accepted (default 32). */
  maxBits?: number;
}

/**
 * Parses "a.b.c.d/n". Throws a TendrilError (code INVALID_CIDR) naming `what`
 * (e.g. "--pod-cidr") when the text is malformed, its prefix length is outside
 * [minBits, maxBits], or it has host bits set (unless maskHostBits).
 */
export function parseCIDR(text: string, what = 'CIDR', options: ParseCIDROptions = {}): CIDR4 {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(text.trim());
  if (!m) {
    throw new TendrilError('INVALID_CIDR', `${what} "${text}" is not an IPv4 CIDR`, {
      hint: 'write it as a.b.c.d/n, e.g. 10.244.0.0/16',
    });
  }
  const bits = Number(m[2]);
  if (bits > 32)
    throw new TendrilError('INVALID_CIDR', `${what} "${text}": prefix length ${bits} is above 32`);
  const minBits = options.minBits ?? 0;
  const maxBits = options.maxBits ?? 32;
  if (bits < minBits || bits > maxBits) {
    throw new TendrilError(
      'INVALID_CIDR',
      `${what} "${text}": prefix length ${bits} is outside ${minBits}..${maxBits}`,
      { hint: `use an IPv4 CIDR with a prefix length between ${minBits} and ${maxBits}` },
    );
  }
  let base: number;
  try {
    base = parseIPv4(m[1]!);
  } catch (err) {
    throw new TendrilError('INVALID_CIDR', `${what} "${text}" is not an IPv4 CIDR`, {
      cause: err,
      hint: 'write it as a.b.c.d/n',
    });
  }
  if (options.maskHostBits) base = (base & mask(bits)) >>> 0;
  if ((base & mask(bits)) >>> 0 !== base) {
    const fixed = `${formatIPv4((base & mask(bits)) >>> 0)}/${bits}`;
    throw new TendrilError('INVALID_CIDR', `${what} "${text}" has host bits set`, {
      hint: `did you mean ${fixed}?`,
    });
  }
  return { base, bits };
}

/** Formats a CIDR back to text. */
export function formatCIDR(c: CIDR4): string {
  return `${formatIPv4(c.base)}/${c.bits}`;
}

/** Number of addresses in the CIDR. */
export function cidrSize(c: CIDR4): number {
  return 2 ** (32 - c.bits);
}

/** True when the two CIDRs share at least one address. */
export function cidrsOverlap(a: CIDR4, b: CIDR4): boolean {
  const bits = Math.min(a.bits, b.bits);
  return (a.base & mask(bits)) >>> 0 === (b.base & mask(bits)) >>> 0;
}

/** True when `addr` (text or number) lies inside `c`; false for text that is not an address. */
export function cidrContains(c: CIDR4, addr: string | number): boolean {
  const n = typeof addr === 'number' ? addr : tryParseIPv4(addr);
  if (n === undefined) return false;
  return (n & mask(c.bits)) >>> 0 === c.base;
}

/** The n-th address of the CIDR (0 is the network address); throws when outside. */
export function nthAddress(c: CIDR4, n: number): string {
  if (n < 0 || n >= cidrSize(c)) {
    throw new TendrilError('CIDR_EXHAUSTED', `address #${n} is outside ${formatCIDR(c)}`);
  }
  return formatIPv4((c.base + n) >>> 0);
}

/**
 * The n-th subnet of length `bits` inside `c` (e.g. a node's /24 inside a
 * cluster's /16). Throws CIDR_EXHAUSTED when `c` has too few.
 */
export function nthSubnet(c: CIDR4, bits: number, n: number): CIDR4 {
  if (bits < c.bits) {
    throw new TendrilError('CIDR_TOO_SMALL', `${formatCIDR(c)} is smaller than a /${bits}`, {
      hint: `use a CIDR of /${bits} or larger`,
    });
  }
  const count = 2 ** (bits - c.bits);
  if (n < 0 || n >= count) {
    throw new TendrilError(
      'CIDR_EXHAUSTED',
      `${formatCIDR(c)} holds ${count} /${bits} subnet(s); #${n} does not fit`,
      {
        hint: `use a larger CIDR (e.g. a /16)`,
      },
    );
  }
  return { base: (c.base + n * 2 ** (32 - bits)) >>> 0, bits };
}

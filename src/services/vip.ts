/**
 * A small IPv4 allocator over a CIDR, for virtual IPs of imported services
 * when no API server assigns them. A key (e.g. "default/echo") first tries
 * an address derived from its hash, so the same key tends to get the same
 * VIP across restarts; collisions probe forward. The network and broadcast
 * addresses and any reserved ones (e.g. the API server's .1, DNS's .10) are
 * never handed out.
 */
import { createHash } from 'node:crypto';
import { TendrilError } from '../util/errors.js';
import {
  cidrContains,
  cidrSize,
  formatCIDR,
  formatIPv4,
  parseCIDR,
  parseIPv4,
  type CIDR4,
} from '../util/ipv4.js';

/** The allocator. Not persistent: reserve() the addresses already in use after a restart. */
export class CIDRAllocator {
  readonly cidr: string;
  private readonly range: CIDR4;
  private readonly base: number;
  private readonly size: number;
  private readonly byKey = new Map<string, number>();
  private readonly byIP = new Map<number, string>();

  /**
   * @param cidr e.g. "10.96.0.0/16" (prefix length 8..30)
   * @param options.reserved addresses never to allocate
   * @throws TendrilError SERVICE_INVALID_CIDR
   */
  constructor(cidr: string, options: { reserved?: readonly string[] } = {}) {
    try {
      this.range = parseCIDR(cidr, 'service CIDR', { maskHostBits: true, minBits: 8, maxBits: 30 });
    } catch (err) {
      throw new TendrilError(
        'SERVICE_INVALID_CIDR',
        `"${cidr}" is not an IPv4 CIDR with a prefix length from 8 to 30`,
        { hint: 'use e.g. 10.96.0.0/16', cause: err },
      );
    }
    this.size = cidrSize(this.range);
    this.base = this.range.base;
    this.cidr = formatCIDR(this.range);
    for (const ip of options.reserved ?? []) this.reserve(ip, '(reserved)');
  }

  /** True if `ip` lies in the CIDR. */
  contains(ip: string): boolean {
    return cidrContains(this.range, ip);
  }

  /**
   * The address of `key`, allocating one if it has none.
   * @throws TendrilError SERVICE_CIDR_EXHAUSTED when no address is free.
   */
  allocate(key: string): string {
    const have = this.byKey.get(key);
    if (have !== undefined) return formatIPv4(have);
    const usable = this.size - 2;
    const start = createHash('sha256').update(key).digest().readUInt32BE(0) % usable;
    for (let i = 0; i < usable; i++) {
      const n = this.base + 1 + ((start + i) % usable);
      if (this.byIP.has(n)) continue;
      this.byIP.set(n, key);
      this.byKey.set(key, n);
      return formatIPv4(n);
    }
    throw new TendrilError(
      'SERVICE_CIDR_EXHAUSTED',
      `no free address left in ${this.cidr} for ${key}`,
      { hint: 'delete unused imported services or use a larger service CIDR' },
    );
  }

  /**
   * Marks `ip` as used by `key` (e.g. VIPs found at start-up).
   * @throws TendrilError SERVICE_VIP_CONFLICT if another key holds it, SERVICE_INVALID_CIDR if outside the CIDR.
   */
  reserve(ip: string, key: string): void {
    if (!this.contains(ip))
      throw new TendrilError('SERVICE_INVALID_CIDR', `${ip} is not in ${this.cidr}`);
    const n = parseIPv4(ip);
    const owner = this.byIP.get(n);
    if (owner !== undefined && owner !== key)
      throw new TendrilError(
        'SERVICE_VIP_CONFLICT',
        `${ip} is already used by ${owner}, cannot give it to ${key}`,
      );
    const prev = this.byKey.get(key);
    if (prev !== undefined && prev !== n && key !== '(reserved)') this.byIP.delete(prev);
    this.byIP.set(n, key);
    if (key !== '(reserved)') this.byKey.set(key, n);
  }

  /** Frees the address of `key`; returns it, or undefined if it had none. */
  release(key: string): string | undefined {
    const n = this.byKey.get(key);
    if (n === undefined) return undefined;
    this.byKey.delete(key);
    this.byIP.delete(n);
    return formatIPv4(n);
  }

  /** The address of `key`, if allocated. */
  lookup(key: string): string | undefined {
    const n = this.byKey.get(key);
    return n === undefined ? undefined : formatIPv4(n);
  }

  /** How many addresses are in use (reserved ones included). */
  get used(): number {
    return this.byIP.size;
  }
}

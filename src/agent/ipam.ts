/**
 * The agent's IPAM: hands out pod addresses from the node's pod CIDR. Every
 * allocation is written to disk (temp file + fsync + rename) before the
 * address is returned, so an agent restart never hands out a live address
 * twice. Allocation goes round-robin after the last address given, so a
 * just-released address is not reused at once (stale ARP/conntrack).
 * Reserved: the network address (the node's tunnel address in tunnel mode)
 * and the broadcast address.
 */
import { readFileSync } from 'node:fs';
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
import { writeFileAtomicSync } from '../util/atomic-write.js';

/** Who holds an address: a container's interface (CNI's key), and the pod for humans. */
export interface IpamOwner {
  containerId: string;
  ifName: string;
  podNamespace?: string;
  podName?: string;
}

/** One allocation as persisted. */
export interface IpamAllocation extends IpamOwner {
  ip: string;
  allocatedAt: string;
}

interface IpamFile {
  version: 1;
  cidr: string;
  last: string | null;
  allocations: IpamAllocation[];
}

export interface IpamOptions {
  /** The node's pod CIDR, e.g. "10.244.1.0/24". */
  cidr: string;
  /** The JSON file allocations persist to. */
  stateFile: string;
}

/** The pod address pool of one node. */
export class Ipam {
  readonly cidr: CIDR4;
  readonly stateFile: string;
  private readonly byIp = new Map<string, IpamAllocation>();
  private last: number | null = null;

  /**
   * Opens the pool, restoring allocations from `stateFile`. Allocations outside
   * the CIDR (the node's CIDR changed) are kept out of the pool but reported by
   * `stale()`.
   * @throws TendrilError ipam.InvalidCIDR, ipam.CorruptState
   */
  constructor(options: IpamOptions) {
    this.cidr = parseCIDR(options.cidr, 'pod CIDR');
    if (this.cidr.bits > 30) {
      throw new TendrilError(
        'IPAM_INVALID_CIDR',
        `pod CIDR ${options.cidr} is too small (needs at least a /30)`,
      );
    }
    this.stateFile = options.stateFile;
    this.load();
  }

  private load(): void {
    let text: string;
    try {
      text = readFileSync(this.stateFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    let f: IpamFile;
    try {
      f = JSON.parse(text) as IpamFile;
      if (!Array.isArray(f.allocations)) throw new Error('no allocations array');
    } catch (err) {
      throw new TendrilError(
        'IPAM_CORRUPT_STATE',
        `read IPAM state ${this.stateFile}: ${(err as Error).message}`,
        {
          hint: 'the file is written atomically, so this means it was edited by hand; fix or remove it (removing it may reuse live addresses)',
          cause: err,
        },
      );
    }
    for (const a of f.allocations) this.byIp.set(a.ip, a);
    if (f.last && cidrContains(this.cidr, f.last)) this.last = parseIPv4(f.last);
  }

  private save(): void {
    const f: IpamFile = {
      version: 1,
      cidr: formatCIDR(this.cidr),
      last: this.last === null ? null : formatIPv4(this.last),
      allocations: [...this.byIp.values()],
    };
    writeFileAtomicSync(this.stateFile, JSON.stringify(f, null, 1) + '\n', { mode: 0o600 });
  }

  /** The allocation held by this container interface, if any. */
  get(containerId: string, ifName = 'eth0'): IpamAllocation | undefined {
    for (const a of this.byIp.values())
      if (a.containerId === containerId && a.ifName === ifName) return a;
    return undefined;
  }

  /** Every allocation inside the pool's CIDR. */
  list(): IpamAllocation[] {
    return [...this.byIp.values()].filter((a) => cidrContains(this.cidr, a.ip));
  }

  /** Allocations left from an earlier CIDR (not in the pool). */
  stale(): IpamAllocation[] {
    return [...this.byIp.values()].filter((a) => !cidrContains(this.cidr, a.ip));
  }

  /** Number of addresses pods can get (total minus reserved). */
  capacity(): number {
    return cidrSize(this.cidr) - 2;
  }

  /**
   * Allocates an address for the owner; idempotent (the same container
   * interface gets its existing address back). Persisted before returning.
   * @throws TendrilError ipam.Exhausted when no address is free.
   */
  allocate(owner: IpamOwner): IpamAllocation {
    const existing = this.get(owner.containerId, owner.ifName);
    if (existing) return existing;
    const size = cidrSize(this.cidr);
    const first = this.cidr.base + 1;
    const lastUsable = this.cidr.base + size - 2;
    let candidate = this.last === null ? first : this.last + 1;
    for (let i = 0; i < size - 2; i++) {
      if (candidate > lastUsable) candidate = first;
      const ip = formatIPv4(candidate >>> 0);
      if (!this.byIp.has(ip)) {
        const a: IpamAllocation = { ...owner, ip, allocatedAt: new Date().toISOString() };
        this.byIp.set(ip, a);
        this.last = candidate;
        this.save();
        return a;
      }
      candidate++;
    }
    throw new TendrilError(
      'IPAM_EXHAUSTED',
      `no free address in pod CIDR ${formatCIDR(this.cidr)} (${this.byIp.size} in use)`,
      {
        hint: 'delete pods on this node, or give the node a larger pod CIDR',
      },
    );
  }

  /** Releases the owner's address; returns it, or undefined if it held none (idempotent). */
  release(containerId: string, ifName = 'eth0'): IpamAllocation | undefined {
    const a = this.get(containerId, ifName);
    if (!a) return undefined;
    this.byIp.delete(a.ip);
    this.save();
    return a;
  }

  /** Releases every allocation of a container (all interfaces). Returns what was released. */
  releaseContainer(containerId: string): IpamAllocation[] {
    const gone = [...this.byIp.values()].filter((a) => a.containerId === containerId);
    if (gone.length === 0) return [];
    for (const a of gone) this.byIp.delete(a.ip);
    this.save();
    return gone;
  }
}


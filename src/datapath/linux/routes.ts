/**
 * Routes to other nodes' pod CIDRs, in the node's network namespace (the
 * agent runs inside it). Native routing: `<podCIDR> via <node IP>` over the
 * underlay. Tunnel mode: one VXLAN device per node ("tendril_vxlan", VNI 2,
 * UDP 8472 by default) whose MAC is derived from the node's underlay IP; per
 * remote node an FDB entry (its MAC -> its IP), a permanent neighbour for its
 * tunnel address (the network address of its pod CIDR) and a route
 * `<podCIDR> via <tunnel address> dev tendril_vxlan onlink`. Every route
 * carries protocol number ROUTE_PROTO so Tendril's routes can be listed and
 * removed without touching anything else.
 */
import {
  batchLines,
  bridge,
  ip,
  ipBatch,
  ipJson,
  IpCommandError,
  setSysctl,
  type BatchFailures,
} from './ip.js';
import type { NodeRoute, NodeRouteChanges, RoutingMode } from '../types.js';
import { formatIPv4, parseCIDR, parseIPv4 } from '../../util/ipv4.js';
import { TendrilError } from '../../util/errors.js';

/** Route protocol number marking Tendril's routes (`ip route show proto 199`). STABLE. */
export const ROUTE_PROTO = 199;
/** Route metrics are spread over 1..ROUTE_METRIC_SPREAD (see routeMetric). */
export const ROUTE_METRIC_SPREAD = 1024;

/**
 * The metric of the route to `podCIDR`: a hash of the CIDR in
 * 1..ROUTE_METRIC_SPREAD, the same for every upsert of that CIDR (so
 * `replace` replaces). Why not one metric for all: the kernel keeps routes'
 * shared attributes (fib_info) in a hash table keyed by protocol, scope,
 * source, metric and device but not the gateway, so thousands of routes via
 * different nodes on one device land in one bucket and each insert walks it:
 * 4,096 `route replace` lines took 0.5 s into an empty table and 5.0 s into
 * one of 20,000 (kernel 6.18); with spread metrics 0.16-0.22 s at any size.
 * Only Tendril's route exists for a pod CIDR, so its metric decides nothing.
 */
export function routeMetric(podCIDR: string): number {
  let h = 2166136261;
  for (let i = 0; i < podCIDR.length; i++) h = Math.imul(h ^ podCIDR.charCodeAt(i), 16777619);
  return 1 + ((h >>> 0) % ROUTE_METRIC_SPREAD);
}

/** Name of the VXLAN device in tunnel mode. STABLE. */
export const VXLAN_DEV = 'tendril_vxlan';
/** VXLAN header overhead subtracted from the underlay MTU in tunnel mode. */
export const VXLAN_OVERHEAD = 50;

export interface RouterConfig {
  mode: RoutingMode;
  /** This node's underlay address. */
  nodeIP: string;
  /** This node's pod CIDR (its network address is the tunnel address). */
  podCIDR: string;
  /** Underlay MTU. */
  mtu: number;
  tunnelPort?: number;
  vni?: number;
  /** Run in this netns path instead of the current one (tests, CLI). */
  netns?: string;
}

/** The MAC of a node's VXLAN device: 0e:74 + its underlay IPv4 bytes (locally administered). */
export function vtepMac(nodeIP: string): string {
  const n = parseIPv4(nodeIP);
  return [
    '0e',
    '74',
    ...[24, 16, 8, 0].map((s) => ((n >>> s) & 255).toString(16).padStart(2, '0')),
  ].join(':');
}

/** The node's underlay IP encoded in a VTEP MAC (inverse of vtepMac), or undefined. */
export function nodeIPFromVtepMac(mac: string): string | undefined {
  const p = mac.toLowerCase().split(':');
  if (p.length !== 6 || p[0] !== '0e' || p[1] !== '74') return undefined;
  return p
    .slice(2)
    .map((x) => parseInt(x, 16))
    .join('.');
}

/** The tunnel address of a node: the network address of its pod CIDR. */
export function tunnelAddress(podCIDR: string): string {
  return formatIPv4(parseCIDR(podCIDR, 'pod CIDR').base);
}

/** MTU pods get in a mode. */
export function podMtu(mode: RoutingMode, underlayMtu: number): number {
  return mode === 'tunnel' ? underlayMtu - VXLAN_OVERHEAD : underlayMtu;
}

interface RouteJson {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string | number;
  metric?: number;
}

/** Programs inter-node routes in one node's namespace. */
export class NodeRouter {
  private underlayDev: string | undefined;
  constructor(readonly config: RouterConfig) {}

  private get opts(): { netns?: string } {
    return this.config.netns ? { netns: this.config.netns } : {};
  }

  /**
   * Enables forwarding and, in tunnel mode, creates the VXLAN device (in
   * native mode, removes a leftover one). Idempotent.
   * @throws IpCommandError, TendrilError datapath.NoUnderlay
   */
  async init(): Promise<void> {
    await setSysctl('net.ipv4.ip_forward', '1', this.opts);
    const addrs = await ipJson<
      Array<{ ifname: string; mtu?: number; addr_info?: Array<{ local: string }> }>
    >(['addr', 'show'], this.opts);
    const dev = addrs.find((a) => a.addr_info?.some((x) => x.local === this.config.nodeIP));
    if (!dev) {
      throw new TendrilError(
        'DATAPATH_NO_UNDERLAY',
        `no interface holds the node address ${this.config.nodeIP}`,
        {
          hint: 'the agent must run in the node network namespace (the lab starts it there)',
        },
      );
    }
    this.underlayDev = dev.ifname;
    if (this.config.mode === 'tunnel') await this.ensureVxlan();
    else await this.removeVxlan();
  }

  private async ensureVxlan(): Promise<void> {
    const mac = vtepMac(this.config.nodeIP);
    const mtu = String(podMtu('tunnel', this.config.mtu));
    const want = { id: this.config.vni ?? 2, port: this.config.tunnelPort ?? 8472 };
    const existing = await ipJson<
      Array<{
        address?: string;
        linkinfo?: { info_data?: { id?: number; port?: number; local?: string } };
      }>
    >(['-d', 'link', 'show', 'dev', VXLAN_DEV], this.opts).catch(() => []);
    const cur = existing[0]?.linkinfo?.info_data;
    if (
      existing[0] &&
      (cur?.id !== want.id || cur?.port !== want.port || cur?.local !== this.config.nodeIP)
    ) {
      await ip(['link', 'del', VXLAN_DEV], this.opts);
      existing.length = 0;
    }
    if (!existing[0]) {
      await ip(
        [
          'link',
          'add',
          VXLAN_DEV,
          'type',
          'vxlan',
          'id',
          String(want.id),
          'dstport',
          String(want.port),
          'local',
          this.config.nodeIP,
          'dev',
          this.underlayDev!,
          'nolearning',
        ],
        this.opts,
      );
    }
    await ipBatch(
      [
        ['link', 'set', VXLAN_DEV, 'address', mac, 'mtu', mtu],
        ['addr', 'replace', `${tunnelAddress(this.config.podCIDR)}/32`, 'dev', VXLAN_DEV],
        ['link', 'set', VXLAN_DEV, 'up'],
      ],
      this.opts,
    );
  }

  private async removeVxlan(): Promise<void> {
    try {
      await ip(['link', 'del', VXLAN_DEV], this.opts);
    } catch (err) {
      if (!(err instanceof IpCommandError && err.missing)) throw err;
    }
  }

  /** Adds or replaces the route to another node's pods. @throws IpCommandError */
  async upsert(route: NodeRoute): Promise<void> {
    const proto = String(ROUTE_PROTO);
    if (this.config.mode === 'native') {
      await ip(
        [
          ...['route', 'replace', route.podCIDR, 'via', route.nodeIP, 'proto', proto],
          ...['metric', String(routeMetric(route.podCIDR))],
        ],
        this.opts,
      );
      return;
    }
    const mac = vtepMac(route.nodeIP);
    const gw = tunnelAddress(route.podCIDR);
    await bridge(
      ['fdb', 'replace', mac, 'dev', VXLAN_DEV, 'dst', route.nodeIP, 'self', 'permanent'],
      this.opts,
    );
    await ipBatch(
      [
        ['neigh', 'replace', gw, 'lladdr', mac, 'dev', VXLAN_DEV, 'nud', 'permanent'],
        [
          ...['route', 'replace', route.podCIDR, 'via', gw, 'dev', VXLAN_DEV, 'onlink'],
          ...['proto', proto, 'metric', String(routeMetric(route.podCIDR))],
        ],
      ],
      this.opts,
    );
  }

  /** Removes the route (and tunnel entries) for a pod CIDR; no error if absent. */
  async delete(podCIDR: string, last?: NodeRoute): Promise<void> {
    try {
      await ip(['route', 'del', podCIDR, 'proto', String(ROUTE_PROTO)], this.opts);
    } catch (err) {
      if (!(err instanceof IpCommandError && err.missing)) throw err;
    }
    if (this.config.mode === 'tunnel' && last) {
      await ip(['neigh', 'del', tunnelAddress(podCIDR), 'dev', VXLAN_DEV], this.opts).catch(
        () => undefined,
      );
      await bridge(
        ['fdb', 'del', vtepMac(last.nodeIP), 'dev', VXLAN_DEV, 'dst', last.nodeIP, 'self'],
        this.opts,
      ).catch(() => undefined);
    }
  }

  /**
   * Applies many route changes with one iproute2 process per kind of command
   * and up to BATCH_CHUNK_LINES lines (see batchLines), instead of a process
   * per route: deletes first, then upserts (in tunnel mode: FDB entries, then
   * neighbours and routes). A route the kernel refuses, or one whose pod CIDR
   * or node IP is malformed, fails alone: the others are applied. A missing
   * route counts as deleted; in tunnel mode a leftover neighbour or FDB entry
   * of a deleted route is not an error.
   * @returns the failures, by pod CIDR (empty: everything applied)
   * @throws IpCommandError when iproute2 cannot run at all (nothing applied)
   */
  async apply(changes: NodeRouteChanges): Promise<Map<string, Error>> {
    const errors = new Map<string, Error>();
    const proto = String(ROUTE_PROTO);
    const wellFormed = (r: NodeRoute): boolean => {
      try {
        parseCIDR(r.podCIDR, 'pod CIDR');
        parseIPv4(r.nodeIP);
        return true;
      } catch (err) {
        errors.set(
          r.podCIDR,
          new TendrilError(
            'DATAPATH_BAD_ROUTE',
            `route to pod CIDR "${r.podCIDR}" via node "${r.nodeIP}" is malformed: ${(err as Error).message}`,
            { cause: err, hint: "fix the remote node's pod CIDR or address in its cluster" },
          ),
        );
        return false;
      }
    };
    const ups = changes.upserts.filter(wellFormed);
    const dels = changes.deletes.filter(wellFormed);
    /** Lines, each owned by a pod CIDR; `tolerate`: failures that do not count. */
    type Line = { text: string; owner: string; tolerate: 'missing' | 'any' | 'none' };
    const runLines = async (bin: 'ip' | 'bridge', lines: Line[]) => {
      const failed: BatchFailures = await batchLines(
        bin,
        lines.map((l) => l.text),
        this.opts,
      );
      for (const [n, msg] of failed) {
        const l = lines[n]!;
        const err = new IpCommandError(
          `${bin} ${l.text}${this.config.netns ? ` (in ${this.config.netns})` : ''}`,
          msg,
          null,
        );
        if (l.tolerate === 'any' || (l.tolerate === 'missing' && err.missing)) continue;
        if (!errors.has(l.owner)) errors.set(l.owner, err);
      }
    };
    if (this.config.mode === 'native') {
      await runLines('ip', [
        ...dels.map((r): Line => ({
          text: `route del ${r.podCIDR} proto ${proto}`,
          owner: r.podCIDR,
          tolerate: 'missing',
        })),
        ...ups.map((r): Line => ({
          text: `route replace ${r.podCIDR} via ${r.nodeIP} proto ${proto} metric ${routeMetric(r.podCIDR)}`,
          owner: r.podCIDR,
          tolerate: 'none',
        })),
      ]);
      return errors;
    }
    await runLines(
      'ip',
      dels.flatMap((r): Line[] => [
        { text: `route del ${r.podCIDR} proto ${proto}`, owner: r.podCIDR, tolerate: 'missing' },
        {
          text: `neigh del ${tunnelAddress(r.podCIDR)} dev ${VXLAN_DEV}`,
          owner: r.podCIDR,
          tolerate: 'any',
        },
      ]),
    );
    await runLines('bridge', [
      ...dels.map((r): Line => ({
        text: `fdb del ${vtepMac(r.nodeIP)} dev ${VXLAN_DEV} dst ${r.nodeIP} self`,
        owner: r.podCIDR,
        tolerate: 'any',
      })),
      ...ups.map((r): Line => ({
        text: `fdb replace ${vtepMac(r.nodeIP)} dev ${VXLAN_DEV} dst ${r.nodeIP} self permanent`,
        owner: r.podCIDR,
        tolerate: 'none',
      })),
    ]);
    await runLines(
      'ip',
      ups
        .filter((r) => !errors.has(r.podCIDR))
        .flatMap((r): Line[] => {
          const gw = tunnelAddress(r.podCIDR);
          return [
            {
              text: `neigh replace ${gw} lladdr ${vtepMac(r.nodeIP)} dev ${VXLAN_DEV} nud permanent`,
              owner: r.podCIDR,
              tolerate: 'none',
            },
            {
              text: `route replace ${r.podCIDR} via ${gw} dev ${VXLAN_DEV} onlink proto ${proto} metric ${routeMetric(r.podCIDR)}`,
              owner: r.podCIDR,
              tolerate: 'none',
            },
          ];
        }),
    );
    return errors;
  }

  /** Tendril's routes now in the kernel (for adoption after a restart). */
  async list(): Promise<NodeRoute[]> {
    const routes = await ipJson<RouteJson[]>(
      ['route', 'show', 'proto', String(ROUTE_PROTO)],
      this.opts,
    );
    const out: NodeRoute[] = [];
    // tunnel routes: the node IP is in the neighbour's MAC (all neighbours in one call)
    let neighMac: Map<string, string> | undefined;
    if (routes.some((r) => r.dev === VXLAN_DEV)) {
      const neigh = await ipJson<Array<{ dst: string; lladdr?: string }>>(
        ['neigh', 'show', 'dev', VXLAN_DEV],
        this.opts,
      ).catch(() => []);
      neighMac = new Map(neigh.filter((n) => n.lladdr).map((n) => [n.dst, n.lladdr!]));
    }
    for (const r of routes) {
      if (!r.gateway) continue;
      if (r.dev === VXLAN_DEV) {
        const mac = neighMac?.get(r.gateway);
        const nodeIP = mac ? nodeIPFromVtepMac(mac) : undefined;
        out.push({ podCIDR: r.dst, nodeIP: nodeIP ?? r.gateway, clusterId: 0 });
      } else out.push({ podCIDR: r.dst, nodeIP: r.gateway, clusterId: 0 });
    }
    await this.migrateMetrics(routes);
    return out;
  }

  /**
   * Routes an older agent made with another metric (0) get routeMetric's:
   * the new route is added first, then the old one deleted, so the pod CIDR
   * is never without a route (a later `replace` with the new metric would
   * otherwise add a second route behind the old one). Best effort: an old
   * route whose new one the kernel refused is kept.
   */
  private async migrateMetrics(routes: RouteJson[]): Promise<void> {
    const proto = String(ROUTE_PROTO);
    const stale = routes.filter((r) => r.gateway && (r.metric ?? 0) !== routeMetric(r.dst));
    if (stale.length === 0) return;
    const via = (r: RouteJson) =>
      r.dev === VXLAN_DEV ? `via ${r.gateway} dev ${VXLAN_DEV} onlink` : `via ${r.gateway}`;
    const added = await batchLines(
      'ip',
      stale.map(
        (r) => `route replace ${r.dst} ${via(r)} proto ${proto} metric ${routeMetric(r.dst)}`,
      ),
      this.opts,
    ).catch(() => undefined);
    if (!added) return;
    await batchLines(
      'ip',
      stale
        .filter((_, i) => !added.has(i))
        .map((r) => `route del ${r.dst} via ${r.gateway} proto ${proto} metric ${r.metric ?? 0}`),
      this.opts,
    ).catch(() => undefined);
  }

  /** Removes every Tendril route and the VXLAN device (uninstall). */
  async teardown(): Promise<void> {
    await ip(['route', 'flush', 'proto', String(ROUTE_PROTO)], this.opts).catch(() => undefined);
    await this.removeVxlan();
  }
}

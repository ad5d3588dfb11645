/**
 * The Linux Datapath: kernel routes (./routes.ts), the pinned ipcache and
 * endpoints maps (./maps.ts), and the socket load balancer (./lb/, plugged in
 * through the SocketLB interface). `init()` never throws for a missing kernel
 * feature: a part that cannot start (no bpffs, no cgroup v2, not root) is left
 * out, its operations become no-ops, and `problems()` says what, why and what
 * to do, so the agent keeps serving CNI and routes and reports the rest.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import type { BpfMap } from '../bpf/map.js';
import type {
  Datapath,
  Endpoint,
  EndpointPolicySpec,
  Frontend,
  IPCacheChanges,
  IPCacheEntry,
  NodeRoute,
  NodeRouteChanges,
  ServiceEntry,
} from '../types.js';
import type { Logger } from '../../util/log.js';
import { nopLogger } from '../../util/log.js';
import { ipJson } from './ip.js';
import { TendrilError } from '../../util/errors.js';
import {
  IPCACHE_MAX_ENTRIES,
  IPCacheWriter,
  keyToPrefix,
  openEndpointsMap,
  openIPCacheMap,
  prefixToKey,
  type EndpointValue,
  type IPCacheKey,
  type IPCacheValue,
} from './maps.js';
import { NodeRouter, type RouterConfig } from './routes.js';
import { BpfPolicyDatapath, PolicyEnforcer } from './policy/policy-datapath.js';
import { openEventMaps, type EventMaps } from './events.js';

/** Something wrong with the datapath, for status. */
export interface DatapathProblem {
  component: string;
  cause: string;
  hint?: string;
}

/**
 * What the agent needs from the socket load balancer (src/datapath/linux/lb/).
 * `attach` pins its maps and links under the bpffs directory and attaches the
 * cgroup programs to `cgroupPath`, reusing pinned ones after a restart.
 */
export interface SocketLB {
  upsertService(svc: ServiceEntry): Promise<void> | void;
  deleteService(frontend: Frontend): Promise<void> | void;
  /** Services now in the maps (for adoption after a restart). */
  listServices?(): Promise<ServiceEntry[]> | ServiceEntry[];
  /** Whether the cgroup programs are attached. */
  attached(): boolean;
  close(): Promise<void> | void;
}

/** Creates the socket LB for a node; throws when it cannot (the datapath records why). */
export type SocketLBFactory = (o: {
  bpffsDir: string;
  cgroupPath: string;
  logger: Logger;
  /** Flow events (./events.ts): absent when Hubble is disabled. */
  events?: EventMaps;
}) => Promise<SocketLB>;

export interface LinuxDatapathOptions {
  router: RouterConfig;
  bpffsDir: string;
  cgroupPath: string;
  logger?: Logger;
  socketLB?: SocketLBFactory;
  /**
   * Flow events (Hubble): the ring buffer's size in bytes. When set, init() opens the
   * pinned event maps (`eventMaps`) and the policy and socket-LB programs write to them;
   * when absent the programs are the variants that emit nothing.
   */
  events?: { ringBytes: number };
  /** Sizes of the BPF maps from settings (default: the map's own constant). */
  mapSizes?: { ipcache?: number };
}

/** Above this share of a map's max entries, status warns (before updates fail). */
export const MAP_PRESSURE_WARN_RATIO = 0.9;

/** A BPF map would be over its max entries; code DATAPATH_MAP_FULL. */
export class MapFullError extends TendrilError {
  constructor(
    readonly map: string,
    readonly maxEntries: number,
    readonly setting: string,
    key: string,
  ) {
    super(
      'DATAPATH_MAP_FULL',
      `the ${map} BPF map is full (${maxEntries} entries): ${key} not added`,
      {
        hint: `raise ${setting} (\`tendril install --set ${setting}=N\`, then restart the agents), or reduce what the map holds`,
      },
    );
    this.name = 'MapFullError';
  }
}

/** The datapath of one node, driven by its agent. */
export class LinuxDatapath implements Datapath {
  readonly router: NodeRouter;
  private ipcache: BpfMap<IPCacheKey, IPCacheValue> | undefined;
  private ipcacheWriter: IPCacheWriter | undefined;
  private endpointsMap: BpfMap<string, EndpointValue> | undefined;
  private lb: SocketLB | undefined;
  /** The flow event maps (undefined when events are off or could not be opened). */
  eventMaps: EventMaps | undefined;
  private readonly probs = new Map<string, DatapathProblem>();
  private readonly log: Logger;

  constructor(private readonly o: LinuxDatapathOptions) {
    this.router = new NodeRouter(o.router);
    this.log = (o.logger ?? nopLogger).child({ subsys: 'datapath' });
  }

  /** Starts every part it can; records problems for the rest. */
  async init(): Promise<void> {
    try {
      await this.router.init();
      this.probs.delete('routing');
    } catch (err) {
      this.problem('routing', err, 'the agent must run as root inside the node network namespace');
    }
    if (!bpffsMounted()) {
      this.probs.set('bpf-maps', {
        component: 'bpf-maps',
        cause: 'bpffs is not mounted at /sys/fs/bpf',
        hint: 'mount it: mount -t bpf bpf /sys/fs/bpf (scripts/setup.sh does this)',
      });
    } else {
      try {
        mkdirSync(this.o.bpffsDir, { recursive: true });
        this.ipcache = openIPCacheMap(this.o.bpffsDir, this.ipcacheMax);
        this.ipcacheWriter = new IPCacheWriter(this.ipcache);
        // adopted entries count towards the map's fill
        for (const [k] of this.ipcache.entries()) this.ipcacheKeys.add(keyToPrefix(k));
        this.endpointsMap = openEndpointsMap(this.o.bpffsDir);
        this.probs.delete('bpf-maps');
        if (this.o.events) {
          try {
            this.eventMaps = openEventMaps(this.o.bpffsDir, this.o.events.ringBytes);
            this.probs.delete('flow-events');
          } catch (err) {
            this.problem('flow-events', err, 'the events ring buffer needs root and bpffs');
          }
        }
        try {
          this.policy = new PolicyEnforcer(
            BpfPolicyDatapath.open({
              bpffsDir: this.o.bpffsDir,
              logger: this.log,
              ipcacheMaxEntries: this.ipcacheMax,
              ...(this.eventMaps ? { events: this.eventMaps } : {}),
            }),
          );
          this.probs.delete('policy');
        } catch (err) {
          this.problem(
            'policy',
            err,
            'policy enforcement needs root (CAP_BPF), bpffs and TCX (kernel >= 6.6)',
          );
        }
      } catch (err) {
        this.problem('bpf-maps', err, 'creating BPF maps needs root (CAP_BPF) and a mounted bpffs');
      }
    }
    if (!this.o.socketLB) {
      this.probs.set('socket-lb', {
        component: 'socket-lb',
        cause: 'no socket load balancer is built into this agent',
        hint: 'services are not translated at the socket; pods can still reach each other by IP',
      });
    } else if (!existsSync(this.o.cgroupPath)) {
      this.probs.set('socket-lb', {
        component: 'socket-lb',
        cause: `cgroup v2 directory ${this.o.cgroupPath} does not exist`,
        hint: 'cgroup v2 must be mounted (TENDRIL_CGROUP2) and the lab kubelet must have created the node cgroup',
      });
    } else {
      try {
        this.lb = await this.o.socketLB({
          bpffsDir: this.o.bpffsDir,
          cgroupPath: this.o.cgroupPath,
          logger: this.log,
          ...(this.eventMaps ? { events: this.eventMaps } : {}),
        });
        this.probs.delete('socket-lb');
      } catch (err) {
        this.problem('socket-lb', err, 'attaching cgroup programs needs root, cgroup v2 and bpffs');
      }
    }
  }

  private problem(component: string, err: unknown, hint: string): void {
    const e = err as { message?: string; hint?: string };
    this.probs.set(component, {
      component,
      cause: e?.message ?? String(err),
      hint: e?.hint ?? hint,
    });
    this.log.warn('datapath part unavailable', { component, error: err });
  }

  /** What does not work, with causes and hints. */
  problems(): DatapathProblem[] {
    return [...this.probs.values()];
  }

  /** Whether the socket LB programs are attached. */
  socketLBAttached(): boolean {
    return this.lb?.attached() ?? false;
  }

  async upsertService(svc: ServiceEntry): Promise<void> {
    if (this.lb) await this.lb.upsertService(svc);
  }
  async deleteService(frontend: Frontend): Promise<void> {
    if (this.lb) await this.lb.deleteService(frontend);
  }
  async listServices(): Promise<ServiceEntry[]> {
    return this.lb?.listServices ? await this.lb.listServices() : [];
  }

  async upsertIPCache(entry: IPCacheEntry): Promise<void> {
    // one entry through applyIPCache: the same map-size check and writer
    const err = (await this.applyIPCache({ upserts: [entry], deletes: [] })).get(entry.prefix);
    if (err) throw err;
  }
  /**
   * Many ipcache changes with few syscalls (IPCacheWriter: BPF batch updates);
   * a new prefix that would not fit fails with MapFullError, as in upsertIPCache.
   */
  async applyIPCache(changes: IPCacheChanges): Promise<Map<string, Error>> {
    const failed = new Map<string, Error>();
    if (!this.ipcache || !this.ipcacheWriter) return failed;
    for (const prefix of changes.deletes) {
      try {
        await this.deleteIPCache(prefix);
      } catch (err) {
        failed.set(prefix, err as Error);
      }
    }
    let room = this.ipcacheMax - this.ipcacheKeys.size;
    const writes: IPCacheEntry[] = [];
    for (const e of changes.upserts) {
      if (!this.ipcacheKeys.has(e.prefix) && room-- <= 0)
        failed.set(
          e.prefix,
          new MapFullError('ipcache', this.ipcacheMax, 'bpf-ipcache-map-max', e.prefix),
        );
      else writes.push(e);
    }
    const refused = this.ipcacheWriter.write(writes);
    for (const [k, err] of refused) failed.set(k, err);
    const before = this.ipcacheKeys.size;
    for (const e of writes) if (!refused.has(e.prefix)) this.ipcacheKeys.add(e.prefix);
    if (this.ipcacheKeys.size !== before) this.checkPressure();
    return failed;
  }
  async deleteIPCache(prefix: string): Promise<void> {
    if (!this.ipcache) return;
    this.ipcache.delete(prefixToKey(prefix));
    if (this.ipcacheKeys.delete(prefix)) this.checkPressure();
  }

  /** How full the sized maps are: entries, max, ratio. */
  mapPressure(): Array<{ map: string; entries: number; maxEntries: number; ratio: number }> {
    return [
      {
        map: 'ipcache',
        entries: this.ipcacheKeys.size,
        maxEntries: this.ipcacheMax,
        ratio: this.ipcacheKeys.size / this.ipcacheMax,
      },
    ];
  }

  /** Status warns once a map is MAP_PRESSURE_WARN_RATIO full (the problem clears below it). */
  private checkPressure(): void {
    const full = this.mapPressure().filter((p) => p.ratio >= MAP_PRESSURE_WARN_RATIO);
    if (full.length === 0) {
      this.probs.delete('bpf-map-pressure');
      return;
    }
    this.probs.set('bpf-map-pressure', {
      component: 'bpf-map-pressure',
      cause: full
        .map(
          (p) =>
            `${p.map} map ${Math.floor(p.ratio * 100)}% full (${p.entries} of ${p.maxEntries})`,
        )
        .join('; '),
      hint: 'raise bpf-ipcache-map-max (`tendril install --set bpf-ipcache-map-max=N`) before updates fail',
    });
  }
  private readonly ipcacheKeys = new Set<string>();
  private get ipcacheMax(): number {
    return this.o.mapSizes?.ipcache ?? IPCACHE_MAX_ENTRIES;
  }
  /** ipcache entries now in the map (adoption after restart). */
  listIPCache(): IPCacheEntry[] {
    if (!this.ipcache) return [];
    const out: IPCacheEntry[] = [];
    for (const [k, v] of this.ipcache.entries()) {
      out.push({
        prefix: keyToPrefix(k),
        identity: v.identity,
        ...(v.hostIP !== '0.0.0.0' ? { hostIP: v.hostIP } : {}),
      });
    }
    return out;
  }

  async upsertNodeRoute(route: NodeRoute): Promise<void> {
    if (this.probs.has('routing'))
      throw new Error(`routing unavailable: ${this.probs.get('routing')!.cause}`);
    await this.router.upsert(route);
  }
  async deleteNodeRoute(podCIDR: string): Promise<void> {
    await this.router.delete(podCIDR);
  }
  /** Route changes in batches (one iproute2 process per few thousand routes); failures by pod CIDR. */
  async applyNodeRoutes(changes: NodeRouteChanges): Promise<Map<string, Error>> {
    if (this.probs.has('routing') && changes.upserts.length > 0) {
      const err = new Error(`routing unavailable: ${this.probs.get('routing')!.cause}`);
      const out = await this.router.apply({ upserts: [], deletes: changes.deletes });
      for (const r of changes.upserts) out.set(r.podCIDR, err);
      return out;
    }
    return this.router.apply(changes);
  }

  async upsertEndpoint(ep: Endpoint): Promise<void> {
    if (!this.endpointsMap) return;
    const links = await ipJson<Array<{ ifindex: number }>>([
      'link',
      'show',
      'dev',
      ep.hostIfName,
    ]).catch(() => []);
    this.endpointsMap.update(ep.ip, {
      id: ep.id,
      identity: ep.identity,
      ifindex: links[0]?.ifindex ?? 0,
      flags: 0,
    });
    this.epIps.set(ep.id, ep.ip);
    this.policy?.setEndpoint(ep.id, ep.hostIfName);
  }
  async deleteEndpoint(id: number): Promise<void> {
    const ip = this.epIps.get(id);
    if (ip) this.endpointsMap?.delete(ip);
    this.epIps.delete(id);
    this.policy?.removeEndpoint(id);
  }
  private readonly epIps = new Map<number, string>();

  /** Restores the id -> IP index from the pinned endpoints map (after a restart). */
  listEndpointIps(): Array<{ id: number; ip: string }> {
    if (!this.endpointsMap) return [];
    const out: Array<{ id: number; ip: string }> = [];
    for (const [ip, v] of this.endpointsMap.entries()) {
      out.push({ id: v.id, ip });
      this.epIps.set(v.id, ip);
    }
    return out;
  }

  /** The policy enforcer (undefined when policy maps could not be opened). */
  policy: PolicyEnforcer | undefined;

  async upsertEndpointPolicy(policy: EndpointPolicySpec): Promise<void> {
    this.policy?.setPolicy(policy);
  }
  async deleteEndpointPolicy(id: number): Promise<void> {
    this.policy?.removeEndpoint(id);
  }

  /** Closes file descriptors; pinned maps and links stay (an agent restart resumes from them). */
  async close(): Promise<void> {
    this.policy?.datapath.close();
    await this.lb?.close();
    this.ipcache?.close();
    this.endpointsMap?.close();
    this.eventMaps?.ring.close();
    this.eventMaps?.lost.close();
  }
}

/** True when a bpffs is mounted at /sys/fs/bpf in this mount namespace. */
export function bpffsMounted(): boolean {
  try {
    return /\s\/sys\/fs\/bpf\s+bpf\s/.test(readFileSync('/proc/self/mounts', 'utf8'));
  } catch {
    return false;
  }
}

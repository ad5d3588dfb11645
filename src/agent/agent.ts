/**
 * The node agent's composition root: IPAM, endpoints, and one reconciler per
 * datapath table (services, ipcache, node routes, endpoints) plus the
 * CiliumEndpoint publisher. Sources (Kubernetes watchers, the mesh) call the
 * set* methods with desired state; the reconcilers drive the Datapath.
 * Nothing here touches the kernel directly, so it runs against FakeDatapath
 * in unit tests.
 */
import type { KubeClientOptions } from '../k8s/client.js';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type {
  Backend,
  Datapath,
  Endpoint,
  IPCacheEntry,
  LBAlgorithm,
  NodeRoute,
  RoutingMode,
  ServiceEntry,
} from '../datapath/types.js';
import { frontendKey } from '../datapath/fake.js';
import { clusterIdOf, setMaxConnectedClusters } from '../identity/numeric.js';
import { cidrContains, parseCIDR } from '../util/ipv4.js';
import type { Logger } from '../util/log.js';
import { nopLogger } from '../util/log.js';
import { TendrilError } from '../util/errors.js';
import type {
  AgentStatus,
  EndpointInfo,
  EndpointRegistration,
  IpamRequest,
  IpamResponse,
  Problem,
} from './api/types.js';
import { EndpointManager, type IdentityResolver, type PodLookup } from './endpoints.js';
import { Ipam } from './ipam.js';
import { Reconciler } from './reconciler.js';
import { POD_GATEWAY, hostIfNameFor } from '../datapath/linux/veth.js';
import { pendingReleaseDir } from './cni/plugin.js';
import { AgentPolicy } from './policy.js';
import { LOCAL_IDENTITY_SCOPE } from '../policy/cidr-identities.js';
import type { EnforcementMode } from '../policy/engine.js';
import { FlowRing, DEFAULT_FLOW_RING_CAPACITY } from '../observe/ring.js';
import type { EventMaps } from '../datapath/linux/events.js';
import { AgentFlowMetadata } from './flow-metadata.js';
import { startFlows, type FlowPipeline } from './flows.js';
import { startDnsSnoop, type DnsSnoop } from './dns-names.js';
import { sameServiceEntry } from '../services/catalog-store.js';

/** Cilium's reserved identities that the agent puts in the ipcache. */
export const ReservedIdentity = {
  host: 1,
  world: 2,
  health: 4,
  remoteNode: 6,
  kubeApiserver: 7,
} as const;

export interface AgentConfig {
  node: string;
  nodeIP: string;
  podCIDR: string;
  clusterName: string;
  clusterId: number;
  /** 255 or 511 (default 255): the identity layout of the mesh (src/identity/numeric.ts). */
  maxConnectedClusters?: number;
  /** Max entries of the BPF ipcache map (`bpf-ipcache-map-max`; default 65,536). */
  ipcacheMapMax?: number;
  routingMode: RoutingMode;
  /** MTU of pod interfaces. */
  podMtu: number;
  lbAlgorithm: LBAlgorithm;
  /** Directory of the agent's state files (ipam.json, endpoints.json). */
  stateDir: string;
  socketPath: string;
  bpffsDir: string;
  cgroupPath: string;
  apiServerURL?: string;
  /** How to reach the API server from a kubeconfig (CA, client certificate, token, tokenFile). */
  apiAuth?: KubeClientOptions;
  /** Policy enforcement mode (default "default"). */
  policyEnforcement?: EnforcementMode;
  /** policy-default-local-cluster (default true). */
  policyDefaultLocalCluster?: boolean;
  /** Hubble: the flow ring and the Observer API (src/observe). */
  hubble?: HubbleConfig;
}

/** The agent's Hubble settings (config keys enable-hubble, hubble-*). */
export interface HubbleConfig {
  enabled: boolean;
  /** Flows the ring keeps (hubble-flow-buffer-size, default 4095). */
  flowBufferSize: number;
  /** Node-local Observer API socket. */
  socketPath?: string;
  /** TCP address with mutual TLS (":4244"); empty: off. */
  listenAddress?: string;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  tlsClientCAFile?: string;
  /** Bytes of the datapath's BPF ring buffer of flow events (bpf-events-ring-size). */
  eventsRingBytes?: number;
}

/** Optional introspection a datapath may offer (LinuxDatapath does). */
export interface DatapathExtras {
  init?(): Promise<void>;
  problems?(): Array<{ component: string; cause: string; hint?: string }>;
  socketLBAttached?(): boolean;
  listIPCache?(): IPCacheEntry[];
  listServices?(): Promise<ServiceEntry[]>;
  listNodeRoutes?(): Promise<NodeRoute[]>;
  /** The flow event maps the programs write to (absent or undefined: no events). */
  eventMaps?: EventMaps | undefined;
  close?(): Promise<void>;
}

/** Publishes endpoints where the cluster can see them (CiliumEndpoint objects). */
export interface EndpointPublisher {
  upsert(ep: EndpointInfo): Promise<void>;
  delete(ep: EndpointInfo): Promise<void>;
}

export interface AgentDeps {
  datapath: Datapath & DatapathExtras;
  logger?: Logger;
  podLookup?: PodLookup;
  resolveIdentity?: IdentityResolver;
  publisher?: EndpointPublisher;
  /** Name of the datapath for status ("linux", "fake"). */
  datapathName?: string;
  /**
   * Hold policy writes until the sources release them (agent.policy.release())
   * once policies and identities are listed: the Kubernetes sources do. With
   * start({waitForMesh}) they also wait for the mesh's identities (meshSynced).
   */
  holdPolicy?: boolean;
}

/** A node of this cluster or a remote one, as routing needs it. */
export interface NodeInfo {
  name: string;
  ip: string;
  podCIDR?: string;
  clusterId?: number;
}

export class Agent {
  readonly ipam: Ipam;
  readonly endpoints: EndpointManager;
  readonly services: Reconciler<ServiceEntry>;
  readonly ipcache: Reconciler<IPCacheEntry>;
  readonly routes: Reconciler<NodeRoute>;
  readonly dpEndpoints: Reconciler<Endpoint>;
  readonly ceps: Reconciler<EndpointInfo> | undefined;
  readonly policy: AgentPolicy;
  /** The agent's flows (Hubble): the ring the observer API and metrics read. Empty when disabled. */
  readonly flows: FlowRing;
  /** Names for flows; sources feed it (peers, cluster names, service names). */
  readonly flowMeta: AgentFlowMetadata;
  private flowPipeline: FlowPipeline | undefined;
  private dnsSnoop: DnsSnoop | undefined;
  private readonly ipcacheSources = new Map<string, Map<string, IPCacheEntry>>();
  private readonly nodeSources = new Map<string, NodeInfo[]>();
  /** Order in which node sources were first set (the tie-break for a CIDR or IP announced twice). */
  private readonly nodeSourceIndex = new Map<string, number>();
  /** Each node source's routes and node ipcache entries (see setNodeSources). */
  private readonly nodeContrib = new Map<
    string,
    { routes: Map<string, NodeRoute>; ipc: Map<string, IPCacheEntry> }
  >();
  /** Pod CIDR -> the node sources that announce it. */
  private readonly routeOwners = new Map<string, Set<string>>();
  /** Node IP prefix -> the node sources that have it. */
  private readonly nodeIPOwners = new Map<string, Set<string>>();
  private readonly identities = new Set<number>();
  private readonly log: Logger;
  private readonly startedAt = new Date().toISOString();
  private readonly extraProblems = new Map<string, Problem>();
  readonly k8s: { url: string; synced: boolean; lastError?: string };
  private readonly pendingSync = new Set<string>();

  constructor(
    readonly config: AgentConfig,
    private readonly deps: AgentDeps,
  ) {
    this.log = (deps.logger ?? nopLogger).child({ subsys: 'agent', node: config.node });
    // the identity layout is process-wide: one agent per process
    setMaxConnectedClusters(config.maxConnectedClusters ?? 255);
    this.k8s = { url: config.apiServerURL ?? '', synced: false };
    this.flows = new FlowRing(config.hubble?.flowBufferSize ?? DEFAULT_FLOW_RING_CAPACITY);
    this.ipam = new Ipam({ cidr: config.podCIDR, stateFile: join(config.stateDir, 'ipam.json') });
    this.endpoints = new EndpointManager({
      stateFile: join(config.stateDir, 'endpoints.json'),
      ...(deps.podLookup ? { podLookup: deps.podLookup } : {}),
      ...(deps.resolveIdentity ? { resolveIdentity: deps.resolveIdentity } : {}),
      logger: this.log,
    });
    const dp = deps.datapath;
    const logger = this.log;
    // Adopted remote-cluster state waits for the mesh source (meshSynced) when the agent
    // was started with waitForMesh; without it, hold.isRemote is never consulted.
    const localId = config.clusterId;
    const remoteBackend = (b: Backend) => b.clusterId !== 0 && b.clusterId !== localId;
    this.services = new Reconciler<ServiceEntry>({
      name: 'services',
      keyOf: (s) => frontendKey(s.frontend),
      // field by field, not JSON text: setServices hands over every entry on each change
      equal: sameServiceEntry,
      ops: {
        upsert: (s) => dp.upsertService(s),
        delete: (_k, last) => dp.deleteService(last.frontend),
      },
      hold: {
        isRemote: (s) => s.backends.some(remoteBackend),
        merge: (want, adopted) => {
          const have = new Set(want.backends.map((b) => `${b.ip}:${b.port}`));
          const extra = adopted.backends.filter(
            (b) => remoteBackend(b) && !have.has(`${b.ip}:${b.port}`),
          );
          return extra.length ? { ...want, backends: [...want.backends, ...extra] } : want;
        },
      },
      logger,
    });
    this.ipcache = new Reconciler<IPCacheEntry>({
      name: 'ipcache',
      keyOf: (e) => e.prefix,
      ops: { upsert: (e) => dp.upsertIPCache(e), delete: (k) => dp.deleteIPCache(k) },
      // a mesh sync of 250,000 entries: BPF batch updates, not a syscall (and a promise) each
      ...(dp.applyIPCache
        ? {
            applyMany: (ups: IPCacheEntry[], dels: Array<{ key: string }>) =>
              dp.applyIPCache!({ upserts: ups, deletes: dels.map((d) => d.key) }),
          }
        : {}),
      equal: (a, b) => a.identity === b.identity && a.hostIP === b.hostIP,
      hold: { isRemote: (e) => !this.isLocalAddress(e.prefix, e.identity) },
      logger,
    });
    this.routes = new Reconciler<NodeRoute>({
      name: 'routes',
      keyOf: (r) => r.podCIDR,
      ops: { upsert: (r) => dp.upsertNodeRoute(r), delete: (k) => dp.deleteNodeRoute(k) },
      // thousands of remote nodes: one iproute2 process per batch, not per route
      ...(dp.applyNodeRoutes
        ? {
            applyMany: (ups: NodeRoute[], dels: Array<{ last: NodeRoute }>) =>
              dp.applyNodeRoutes!({ upserts: ups, deletes: dels.map((d) => d.last) }),
          }
        : {}),
      equal: (a, b) => a.podCIDR === b.podCIDR && a.nodeIP === b.nodeIP,
      hold: {
        isRemote: (r) =>
          r.clusterId ? r.clusterId !== localId : !this.isLocalAddress(r.podCIDR, 0),
      },
      logger,
    });
    this.dpEndpoints = new Reconciler<Endpoint>({
      name: 'endpoints',
      keyOf: (e) => String(e.id),
      ops: { upsert: (e) => dp.upsertEndpoint(e), delete: (k) => dp.deleteEndpoint(Number(k)) },
      logger,
    });
    if (deps.publisher) {
      const pub = deps.publisher;
      this.ceps = new Reconciler<EndpointInfo>({
        name: 'ciliumendpoints',
        keyOf: (e) => `${e.podNamespace}/${e.podName}`,
        ops: { upsert: (e) => pub.upsert(e), delete: (_k, last) => pub.delete(last) },
        equal: (a, b) => a.ip === b.ip && a.identity === b.identity && a.id === b.id,
        logger,
        minBackoffMs: 200,
      });
    }
    this.endpoints.onChange((ev, ep) => this.onEndpoint(ev, ep));
    this.policy = new AgentPolicy({
      clusterName: config.clusterName,
      ...(config.policyEnforcement ? { enforcement: config.policyEnforcement } : {}),
      ...(config.policyDefaultLocalCluster !== undefined
        ? { defaultLocalCluster: config.policyDefaultLocalCluster }
        : {}),
      datapath: {
        upsertEndpointPolicy: (p) => {
          this.flowMeta.addRules([...p.ingress.entries, ...p.egress.entries].map((e) => e.rule));
          return dp.upsertEndpointPolicy(p);
        },
        deleteEndpointPolicy: (id) => dp.deleteEndpointPolicy(id),
      },
      logger,
      // the prefixes policies name, with their node-local CIDR identities, in the ipcache
      onCidrIdentities: (all) =>
        this.setIPCacheSource(
          'policy-cidr',
          all.map((c) => ({ prefix: c.prefix, identity: c.identity })),
        ),
    });
    this.flowMeta = new AgentFlowMetadata({
      nodeName: config.node,
      clusterId: config.clusterId,
      clusterName: config.clusterName,
      cgroupRoot: config.cgroupPath,
      engine: this.policy.engine,
      enforcing: (id, dir) =>
        (this.policy.policyOf(id)?.[dir].policies ?? []).map((r) => ({
          name: r.name,
          namespace: r.namespace ?? '',
          kind: r.kind,
          labels: [],
          revision: 0,
        })),
    });
    this.endpoints.onChange((ev, ep) => this.flowMeta.onEndpoint(ev, ep));
    if (deps.holdPolicy) this.policy.hold();
    this.endpoints.onChange((ev, ep) =>
      ev === 'delete' ? this.policy.deleteEndpoint(ep.id) : this.policy.upsertEndpoint(ep),
    );
  }

  /**
   * Starts the datapath (recording, not throwing, what it cannot do), adopts
   * kernel state left by an earlier run, and applies CNI DELs queued while
   * the agent was down.
   */
  async start(
    options: {
      waitFor?: string[];
      waitForMesh?: boolean;
      /**
       * With waitForMesh and a held policy: the longest wait for the mesh's identities
       * before policy is written without them (ms, default 60,000, as Cilium's
       * clustermesh-sync-timeout).
       */
      policyMeshTimeoutMs?: number;
    } = {},
  ): Promise<void> {
    const dp = this.deps.datapath;
    this.starting = true;
    if (dp.init) await dp.init();
    try {
      if (dp.listNodeRoutes) this.routes.adopt(await dp.listNodeRoutes());
      if (dp.listIPCache) {
        const entries = dp.listIPCache();
        this.ipcache.adopt(entries);
        // CIDR identities of the previous run keep their numbers (the pinned policy maps use them)
        this.policy.restoreCidrIdentities(
          entries.filter((e) => e.identity > LOCAL_IDENTITY_SCOPE && !e.hostIP),
        );
      }
      if (dp.listServices) this.services.adopt(await dp.listServices());
    } catch (err) {
      this.log.warn('could not read kernel state for adoption', { error: err });
    }
    for (const w of options.waitFor ?? []) this.pendingSync.add(w);
    if (this.pendingSync.size === 0) this.allSynced();
    if (options.waitForMesh && this.policy.holding) {
      // a remote cluster's allowed pods must be in the first policy written, or a restart
      // drops their traffic until the mesh delivers them
      this.policy.hold('mesh');
      this.policyMeshTimer = setTimeout(() => {
        this.policyMeshTimer = undefined;
        if (!this.policy.heldBy.includes('mesh')) return;
        this.log.warn('policy written without the mesh identities: the mesh did not sync', {
          waitedMs: options.policyMeshTimeoutMs ?? 60_000,
        });
        this.policy.release('mesh');
      }, options.policyMeshTimeoutMs ?? 60_000);
      this.policyMeshTimer.unref?.();
    }
    if (!options.waitForMesh) this.meshSynced();
    this.applyPendingReleases();
    if (this.config.hubble?.enabled !== false && dp.eventMaps) {
      this.flowPipeline = startFlows(dp.eventMaps, this.flowMeta, this.flows, this.log);
      // DNS answers crossing the node name the flows' addresses (source/destination_names)
      this.dnsSnoop = startDnsSnoop({
        onAnswer: (a) => this.flowMeta.dnsNames.record(a),
        logger: this.log,
      });
      this.flowMeta.dnsDrain = () => this.dnsSnoop?.drain();
    }
    this.endpoints.start({ clusterId: this.config.clusterId });
    this.starting = false;
  }
  /** True while start() runs (status says so: the datapath is not complete yet). */
  private starting = false;
  /** Bounds the policy's wait for the mesh (start({waitForMesh})). */
  private policyMeshTimer: NodeJS.Timeout | undefined;

  /**
   * The mesh source delivered the mesh's state (or the mesh is not enabled):
   * adopted remote routes, ipcache entries and backends it did not confirm are
   * removed now, not when the Kubernetes sources synced.
   */
  meshSynced(): void {
    if (this.policyMeshTimer) clearTimeout(this.policyMeshTimer);
    this.policyMeshTimer = undefined;
    this.policy.release('mesh');
    this.services.remoteSynced();
    this.ipcache.remoteSynced();
    this.routes.remoteSynced();
  }

  /** True for a prefix inside this cluster's known pod CIDRs, or an identity of this cluster. */
  private isLocalAddress(prefix: string, identity: number): boolean {
    if (identity !== 0 && clusterIdOf(identity) === this.config.clusterId) return true;
    const addr = prefix.split('/')[0]!;
    for (const c of this.localPodCIDRs()) {
      try {
        if (cidrContains(parseCIDR(c), addr)) return true;
      } catch {
        // not IPv4
      }
    }
    return false;
  }

  /** A source finished its initial sync; once all have, stale adopted state is removed. */
  sourceSynced(name: string): void {
    if (!this.pendingSync.delete(name)) return;
    if (this.pendingSync.size === 0) this.allSynced();
  }

  private allSynced(): void {
    this.k8s.synced = true;
    this.services.synced();
    this.ipcache.synced();
    this.routes.synced();
    this.dpEndpoints.synced();
    this.ceps?.synced();
  }

  private applyPendingReleases(): void {
    const dir = pendingReleaseDir(this.config.socketPath);
    if (!existsSync(dir)) return;
    for (const f of readdirSync(dir)) {
      try {
        const { containerId, ifName } = JSON.parse(readFileSync(join(dir, f), 'utf8')) as {
          containerId: string;
          ifName: string;
        };
        this.deleteEndpoint(containerId, ifName);
        this.log.info('applied a CNI DEL queued while the agent was down', { containerId });
      } catch (err) {
        this.log.warn('bad queued release', { file: f, error: err });
      }
      rmSync(join(dir, f), { force: true });
    }
  }

  /** Stops reconcilers and timers; the kernel state stays (pinned). */
  async stop(): Promise<void> {
    this.endpoints.stop();
    if (this.policyMeshTimer) clearTimeout(this.policyMeshTimer);
    this.policy.stop();
    for (const r of [this.services, this.ipcache, this.routes, this.dpEndpoints, this.ceps])
      r?.stop();
    await this.flowPipeline?.stop();
    await this.dnsSnoop?.stop();
    await this.deps.datapath.close?.();
  }

  // ---- CNI-facing ---------------------------------------------------------

  /** Allocates a pod address (idempotent per container interface). @throws TendrilError ipam.Exhausted */
  allocate(req: IpamRequest): IpamResponse {
    if (!req.containerId || !req.ifName)
      throw new TendrilError('AGENT_BAD_REQUEST', 'containerId and ifName are required');
    const a = this.ipam.allocate({
      containerId: req.containerId,
      ifName: req.ifName,
      ...(req.podNamespace ? { podNamespace: req.podNamespace } : {}),
      ...(req.podName ? { podName: req.podName } : {}),
    });
    this.log.info('address allocated', {
      ip: a.ip,
      pod: `${req.podNamespace}/${req.podName}`,
      containerId: req.containerId,
    });
    return {
      ip: a.ip,
      prefixLength: 32,
      gateway: POD_GATEWAY,
      mtu: this.config.podMtu,
      hostIfName: hostIfNameFor(req.containerId, req.ifName),
      podCIDR: this.config.podCIDR,
    };
  }

  /** Registers the endpoint the CNI plugin created. @throws TendrilError agent.BadRequest */
  async registerEndpoint(reg: EndpointRegistration): Promise<EndpointInfo> {
    if (!reg.containerId || !reg.ip || !reg.hostIfName)
      throw new TendrilError('AGENT_BAD_REQUEST', 'containerId, ip and hostIfName are required');
    const held = this.ipam.get(reg.containerId, reg.ifName ?? 'eth0');
    if (!held || held.ip !== reg.ip) {
      throw new TendrilError(
        'AGENT_BAD_REQUEST',
        `address ${reg.ip} is not allocated to container ${reg.containerId}`,
        {
          hint: 'allocate it first (POST /v1/ipam)',
        },
      );
    }
    return this.endpoints.register({ ...reg, ifName: reg.ifName ?? 'eth0' });
  }

  /** Removes an endpoint and releases its address (idempotent). Returns whether anything existed. */
  deleteEndpoint(containerId: string, ifName = 'eth0'): boolean {
    const ep = this.endpoints.deregister(containerId, ifName);
    const a = this.ipam.release(containerId, ifName);
    if (ep || a) this.log.info('endpoint removed', { containerId, ip: a?.ip ?? ep?.ip });
    return Boolean(ep || a);
  }

  /**
   * Releases addresses (and endpoints) of pods that no longer exist, when no
   * CNI DEL came (a pod removed while its node was down, a crashed runtime).
   * `podExists(namespace, name)` answers from the synced pod cache; only
   * allocations older than `graceMs` are considered, so an ADD in progress is
   * never touched. Returns the released IPs.
   */
  async collectGarbage(
    podExists: (namespace: string, name: string) => boolean,
    graceMs = 60_000,
    removeLink?: (hostIfName: string) => Promise<void>,
  ): Promise<string[]> {
    const released: string[] = [];
    const now = Date.now();
    for (const a of this.ipam.list()) {
      if (!a.podNamespace || !a.podName) continue;
      if (now - Date.parse(a.allocatedAt) < graceMs) continue;
      if (podExists(a.podNamespace, a.podName)) continue;
      const ep = this.endpoints.get(a.containerId, a.ifName);
      if (ep && removeLink) await removeLink(ep.hostIfName).catch(() => undefined);
      this.deleteEndpoint(a.containerId, a.ifName);
      released.push(a.ip);
      this.log.info('released the address of a pod that no longer exists', {
        ip: a.ip,
        pod: `${a.podNamespace}/${a.podName}`,
      });
    }
    return released;
  }

  private onEndpoint(ev: 'upsert' | 'delete', ep: EndpointInfo): void {
    const prefix = `${ep.ip}/32`;
    if (ev === 'delete') {
      this.dpEndpoints.remove(String(ep.id));
      this.ceps?.remove(`${ep.podNamespace}/${ep.podName}`);
      this.localIPCache().delete(prefix);
      this.ipcacheChanged(prefix, 'local');
      return;
    }
    this.dpEndpoints.set({
      id: ep.id,
      podNamespace: ep.podNamespace,
      podName: ep.podName,
      containerId: ep.containerId,
      ip: ep.ip,
      hostIfName: ep.hostIfName,
      identity: ep.identity,
    });
    if (ep.identity > 0) {
      this.localIPCache().set(prefix, { prefix, identity: ep.identity });
      this.ipcacheChanged(prefix, 'local');
      if (ep.podName) this.ceps?.set(ep);
    }
  }

  private localIPCache(): Map<string, IPCacheEntry> {
    let m = this.ipcacheSources.get('local');
    if (!m) this.ipcacheSources.set('local', (m = new Map()));
    return m;
  }

  // ---- sources --------------------------------------------------------------

  /** Replaces one source's ipcache entries ("k8s": CiliumEndpoints, "remote:<cluster>": the mesh, ...). */
  setIPCacheSource(source: string, entries: IPCacheEntry[]): void {
    const next = new Map(entries.map((e) => [e.prefix, e]));
    const prev = this.ipcacheSources.get(source) ?? new Map<string, IPCacheEntry>();
    this.ipcacheSources.set(source, next);
    this.sourceOrder = undefined; // holds the replaced map
    const touched = new Set<string>([...prev.keys(), ...next.keys()]);
    for (const p of touched) {
      const a = prev.get(p);
      const b = next.get(p);
      if (a && b && a.identity === b.identity && a.hostIP === b.hostIP) continue;
      this.ipcacheChanged(p, source);
    }
  }

  /** Upserts or deletes one entry of a source (incremental updates from watchers). */
  updateIPCacheEntry(source: string, prefix: string, entry: IPCacheEntry | undefined): void {
    let m = this.ipcacheSources.get(source);
    if (!m) this.ipcacheSources.set(source, (m = new Map()));
    if (entry) m.set(prefix, entry);
    else m.delete(prefix);
    this.ipcacheChanged(prefix, source);
  }

  /**
   * ipcacheSources' maps by precedence (rank), cached: dropped when a source's map
   * is replaced, rebuilt when a source is added (sources are never removed).
   */
  private sourceOrder: Array<Map<string, IPCacheEntry>> | undefined;
  private sourceCount = 0;
  /** Source name -> its place in sourceOrder (rebuilt with it). */
  private sourcePos = new Map<string, number>();
  private sourceNames: string[] = [];
  /**
   * Prefix -> the source whose entry is in the ipcache (the first in sourceOrder
   * that has it), so a change from one source is resolved without looking at
   * every other source (250 remote clusters: 250 lookups per entry before).
   */
  private readonly ipcacheWinner = new Map<string, string>();

  /**
   * Recomputes the ipcache entry of `prefix`. `source`: the one source whose
   * entry for it changed (the others did not), which makes this O(1) unless
   * the winning source dropped it.
   */
  private ipcacheChanged(prefix: string, source?: string): void {
    if (!this.sourceOrder || this.sourceCount !== this.ipcacheSources.size) {
      this.sourceCount = this.ipcacheSources.size;
      this.sourceNames = [...this.ipcacheSources.keys()].sort((a, b) => rank(a) - rank(b));
      this.sourceOrder = this.sourceNames.map((k) => this.ipcacheSources.get(k)!);
      this.sourcePos = new Map(this.sourceNames.map((k, i) => [k, i]));
    }
    const w = this.ipcacheWinner.get(prefix);
    if (source !== undefined) {
      // every source's change goes through here, so no winner means no other source has it
      const e = this.ipcacheSources.get(source)?.get(prefix);
      if (w === undefined) {
        if (e) {
          this.ipcacheWinner.set(prefix, source);
          this.ipcache.set(e);
        } else this.ipcache.remove(prefix);
        return;
      }
      if (e && (w === source || this.sourcePos.get(source)! < this.sourcePos.get(w)!)) {
        this.ipcacheWinner.set(prefix, source);
        this.ipcache.set(e);
        return;
      }
      // a source before it holds the prefix: nothing changes
      if (w !== source) return;
    }
    const order = this.sourceOrder;
    for (let i = 0; i < order.length; i++) {
      const e = order[i]!.get(prefix);
      if (e) {
        this.ipcacheWinner.set(prefix, this.sourceNames[i]!);
        this.ipcache.set(e);
        return;
      }
    }
    this.ipcacheWinner.delete(prefix);
    this.ipcache.remove(prefix);
  }

  /** The pod CIDRs of this cluster's nodes (this node's and every local node's known). */
  localPodCIDRs(): string[] {
    const out = new Set<string>([this.config.podCIDR]);
    for (const n of this.nodeSources.get('local') ?? []) if (n.podCIDR) out.add(n.podCIDR);
    return [...out];
  }

  /**
   * Sets the nodes of a cluster ("local" for this cluster, the cluster name for
   * remote ones): routes to every other node's pod CIDR, node IPs in the ipcache.
   */
  setNodes(source: string, nodes: NodeInfo[]): void {
    this.setNodeSources([[source, nodes]]);
  }

  /**
   * setNodes for several sources at once: the routes and node ipcache entries
   * (over every source's nodes) are recomputed once, not once per source (the
   * mesh source hands over many remote clusters' nodes in one push).
   */
  setNodeSources(updates: Iterable<readonly [string, NodeInfo[]]>): void {
    // Incremental: only the updated sources' nodes are looked at, so N clusters
    // arriving one push at a time cost O(total nodes), not O(N x total nodes).
    const routesTouched = new Set<string>();
    const ipcTouched = new Set<string>();
    for (const [source, nodes] of updates) {
      this.nodeSources.set(source, nodes);
      if (!this.nodeSourceIndex.has(source))
        this.nodeSourceIndex.set(source, this.nodeSourceIndex.size);
      for (const n of nodes)
        if (n.clusterId && n.clusterId !== this.config.clusterId && source !== 'k8s')
          this.flowMeta.setClusterName(n.clusterId, source);
      const prev = this.nodeContrib.get(source);
      const next = this.nodeContribution(source, nodes);
      this.nodeContrib.set(source, next);
      for (const [owners, before, after, touched] of [
        [this.routeOwners, prev?.routes, next.routes, routesTouched],
        [this.nodeIPOwners, prev?.ipc, next.ipc, ipcTouched],
      ] as const) {
        for (const k of before?.keys() ?? [])
          if (!after.has(k)) {
            const o = owners.get(k);
            o?.delete(source);
            if (o?.size === 0) owners.delete(k);
            touched.add(k);
          }
        for (const [k, v] of after) {
          if (before?.get(k) === v) continue;
          let o = owners.get(k);
          if (!o) owners.set(k, (o = new Set()));
          o.add(source);
          touched.add(k);
        }
      }
    }
    // a CIDR announced twice (misconfiguration) keeps the first source's (in the order
    // sources were first set); a node IP in two sources: the last one's entry
    for (const cidr of routesTouched) {
      const src = this.pickNodeSource(this.routeOwners.get(cidr), 'first');
      const r = src === undefined ? undefined : this.nodeContrib.get(src)!.routes.get(cidr);
      if (r) this.routes.set(r);
      else this.routes.remove(cidr);
    }
    let ipcMap = this.ipcacheSources.get('nodes');
    for (const prefix of ipcTouched) {
      const src = this.pickNodeSource(this.nodeIPOwners.get(prefix), 'last');
      const e = src === undefined ? undefined : this.nodeContrib.get(src)!.ipc.get(prefix);
      const cur = ipcMap?.get(prefix);
      if (cur === e || (cur && e && cur.identity === e.identity && cur.hostIP === e.hostIP))
        continue;
      this.updateIPCacheEntry('nodes', prefix, e);
      ipcMap ??= this.ipcacheSources.get('nodes');
    }
  }

  /** Which source of `owners` wins: the first or the last in the order sources were first set. */
  private pickNodeSource(
    owners: Set<string> | undefined,
    which: 'first' | 'last',
  ): string | undefined {
    if (!owners || owners.size === 0) return undefined;
    let best: string | undefined;
    let bestIdx = 0;
    for (const s of owners) {
      const i = this.nodeSourceIndex.get(s)!;
      if (best === undefined || (which === 'first' ? i < bestIdx : i > bestIdx)) {
        best = s;
        bestIdx = i;
      }
    }
    return best;
  }

  /** One source's routes (first per CIDR) and node ipcache entries (last per IP). */
  private nodeContribution(
    src: string,
    nodes: NodeInfo[],
  ): { routes: Map<string, NodeRoute>; ipc: Map<string, IPCacheEntry> } {
    const prev = this.nodeContrib.get(src);
    const routes = new Map<string, NodeRoute>();
    const ipc = new Map<string, IPCacheEntry>();
    for (const n of nodes) {
      const self = src === 'local' && n.name === this.config.node;
      const prefix = `${n.ip}/32`;
      const identity = self ? ReservedIdentity.host : ReservedIdentity.remoteNode;
      // the same object as before when unchanged (lets the diff skip it by identity)
      const oldE = prev?.ipc.get(prefix);
      ipc.set(prefix, oldE && oldE.identity === identity ? oldE : { prefix, identity });
      if (self || !n.podCIDR || n.ip === this.config.nodeIP) continue;
      if (n.podCIDR === this.config.podCIDR || routes.has(n.podCIDR)) continue;
      const clusterId = n.clusterId ?? (src === 'local' ? this.config.clusterId : 0);
      const oldR = prev?.routes.get(n.podCIDR);
      routes.set(
        n.podCIDR,
        oldR && oldR.nodeIP === n.ip && oldR.clusterId === clusterId
          ? oldR
          : { podCIDR: n.podCIDR, nodeIP: n.ip, clusterId },
      );
    }
    return { routes, ipc };
  }

  /** Replaces the service table (from the service catalog). */
  setServices(entries: ServiceEntry[]): void {
    this.flowMeta.setServiceEntries(entries);
    this.services.replaceAll(
      entries.map((e) => ({ ...e, algorithm: e.algorithm ?? this.config.lbAlgorithm })),
    );
  }

  /** Identities known in the cluster (for status counts). */
  setIdentityCount(ids: Iterable<number>): void {
    this.flowMeta.identitiesChanged();
    this.identities.clear();
    for (const i of ids) this.identities.add(i);
  }

  /** Records a problem of a source (k8s unreachable, mesh error); undefined clears it. */
  setProblem(component: string, problem: Omit<Problem, 'component'> | undefined): void {
    if (problem) this.extraProblems.set(component, { component, ...problem });
    else this.extraProblems.delete(component);
    if (component === 'k8s') {
      if (problem) this.k8s.lastError = problem.cause;
      else delete this.k8s.lastError;
    }
  }

  /** Replaces the problems reported about Services (invalid ports, bad annotations, ...). */
  setServiceIssues(
    issues: ReadonlyArray<{
      namespace: string;
      name: string;
      kind: string;
      code: string;
      message: string;
    }>,
  ): void {
    for (const k of [...this.extraProblems.keys()])
      if (k.startsWith('service/')) this.extraProblems.delete(k);
    for (const i of issues) {
      const component = `service/${i.namespace}/${i.name}`;
      const prev = this.extraProblems.get(component);
      this.extraProblems.set(component, {
        component,
        cause: prev
          ? `${prev.cause}; ${i.message}`
          : `${i.kind} ${i.namespace}/${i.name}: ${i.message} (${i.code})`,
        hint: `fix it: tendril describe svc ${i.name} -n ${i.namespace}`,
      });
    }
  }

  /** The agent's status for `tendril status`. */
  status(): AgentStatus {
    const dp = this.deps.datapath;
    const problems: Problem[] = [...(dp.problems?.() ?? []), ...this.extraProblems.values()];
    if (this.starting)
      problems.push({
        component: 'agent',
        cause: 'starting: attaching the datapath',
        hint: 'wait a few seconds',
      });
    const recs = [
      this.services.status(),
      this.ipcache.status(),
      this.routes.status(),
      this.dpEndpoints.status(),
      ...(this.ceps ? [this.ceps.status()] : []),
      this.policy.status(),
    ];
    for (const r of recs) {
      if (r.lastError)
        problems.push({
          component: `reconciler/${r.name}`,
          cause: r.lastError,
          hint: 'the agent retries with backoff; see the agent log',
        });
    }
    const waiting = this.endpoints.list().filter((e) => e.state !== 'ready');
    if (waiting.length > 0) {
      problems.push({
        component: 'identity',
        cause: `${waiting.length} endpoint(s) waiting for an identity (${waiting
          .slice(0, 3)
          .map((e) => `${e.podNamespace}/${e.podName}`)
          .join(', ')})`,
        hint: 'is the operator running? see `tendril status` and the operator log',
      });
    }
    const fatal = problems.some((p) => p.component === 'routing');
    const remoteNodes = [...this.nodeSources]
      .filter(([s]) => s !== 'local')
      .reduce((n, [, l]) => n + l.length, 0);
    return {
      node: this.config.node,
      clusterName: this.config.clusterName,
      clusterId: this.config.clusterId,
      nodeIP: this.config.nodeIP,
      podCIDR: this.config.podCIDR,
      routingMode: this.config.routingMode,
      datapath: this.deps.datapathName ?? 'linux',
      socketLB: { attached: dp.socketLBAttached?.() ?? false, cgroup: this.config.cgroupPath },
      k8s: { ...this.k8s },
      counts: {
        endpoints: this.endpoints.list().length,
        services: this.services.status().desired,
        identities: this.identities.size,
        ipcache: this.ipcache.status().desired,
        nodes: this.nodeSources.get('local')?.length ?? 0,
        remoteNodes,
      },
      ipam: {
        cidr: this.config.podCIDR,
        used: this.ipam.list().length,
        capacity: this.ipam.capacity(),
      },
      reconcilers: recs,
      policy: this.policy.summary(),
      problems,
      startedAt: this.startedAt,
      pid: process.pid,
      // a user's invalid Service is reported, but does not make the agent unhealthy
      health: fatal
        ? 'Error'
        : problems.some((p) => !p.component.startsWith('service/'))
          ? 'Warning'
          : 'OK',
    };
  }
}

function rank(source: string): number {
  const base = source.split(':')[0]!;
  const i = ['local', 'nodes', 'k8s', 'remote'].indexOf(base);
  return i < 0 ? 99 : i;
}

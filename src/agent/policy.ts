/**
 * The agent's network policy: policies (CNP, CCNP, NetworkPolicy), identities
 * (the cluster's CiliumIdentities and every remote cluster's, from the mesh) and
 * the node's endpoints go into the policy engine (src/policy/); each endpoint's
 * computed policy goes through a reconciler to the datapath (its policy map and
 * programs). Changes are batched: a burst of events recomputes once.
 */
import type { Datapath, EndpointPolicySpec } from '../datapath/types.js';
import { parseLabels } from '../identity/labels.js';
import type { KubeObject } from '../k8s/objects.js';
import {
  CidrIdentityAllocator,
  PolicyEngine,
  cidrIdentityLabels,
  policyCidrPrefixes,
  type CidrIdentity,
  endpointPolicySpec,
  formatPolicyRef,
  type EndpointPolicy,
  type EnforcementMode,
  type NamedPort,
  type PolicyRef,
} from '../policy/index.js';
import type { Logger } from '../util/log.js';
import { nopLogger } from '../util/log.js';
import { Coalescer } from './coalesce.js';
import { Reconciler } from './reconciler.js';
import type { ReconcilerStatus } from './api/types.js';

/** Options of the agent's policy. */
export interface AgentPolicyOptions {
  clusterName: string;
  enforcement?: EnforcementMode;
  defaultLocalCluster?: boolean;
  datapath: Pick<Datapath, 'upsertEndpointPolicy' | 'deleteEndpointPolicy'>;
  logger?: Logger;
  /**
   * The longest wait between recomputations during a burst of changes (ms, default
   * 500). A lone change is recomputed on the next turn of the event loop; only after
   * an expensive recomputation does the next wait, twice its duration at most this
   * (src/agent/coalesce.ts).
   */
  batchMs?: number;
  /**
   * Called with every CIDR identity (prefix -> node-local identity) whenever
   * the set changes; the agent writes them to the ipcache.
   */
  onCidrIdentities?: (all: CidrIdentity[]) => void;
}

/** A local endpoint as policy needs it. */
export interface PolicyEndpointInput {
  id: number;
  identity: number;
  podNamespace: string;
  podName: string;
  namedPorts?: NamedPort[];
}

/** One endpoint's computed policy as the agent API returns it. */
export interface EndpointPolicyReport {
  endpointId: number;
  podNamespace: string;
  podName: string;
  identity: number;
  enforcement: EnforcementMode;
  ingress: EndpointPolicySpec['ingress'] & { policies: string[] };
  egress: EndpointPolicySpec['egress'] & { policies: string[] };
}

/** What `tendril status` shows of a node's policy. */
export interface PolicySummary {
  enforcement: EnforcementMode;
  /** Endpoints with a computed policy. */
  endpoints: number;
  /** Of those, endpoints with ingress or egress enforced (default deny). */
  enforced: number;
  /** While policy writes are held (after a start): what they wait for (`sources`, `mesh`). */
  held?: string[];
}

/** Computes and applies network policy for the node's endpoints. */
export class AgentPolicy {
  readonly engine: PolicyEngine;
  private readonly reconciler: Reconciler<EndpointPolicySpec>;
  private readonly endpoints = new Map<number, PolicyEndpointInput>();
  private readonly remote = new Map<string, Map<number, string>>();
  private readonly log: Logger;
  private readonly runs: Coalescer;
  /** A change not yet recomputed. */
  private dirty = false;
  private last = new Map<number, EndpointPolicy>();
  /** Resolves a pod's named container ports (set by the Kubernetes source). */
  namedPortsOf: ((namespace: string, name: string) => NamedPort[] | undefined) | undefined;
  /** Policy objects that could not be translated, by "kind ns/name". */
  readonly problems = new Map<string, string>();
  /** Node-local identities of the prefixes policies name (toCIDR, fromCIDR, ipBlock, except). */
  readonly cidrIdentities = new CidrIdentityAllocator();
  /** What hold() waits for: 'sources' (policies and local identities), 'mesh' (remote identities). */
  private readonly gates = new Set<string>();

  constructor(private readonly o: AgentPolicyOptions) {
    this.log = (o.logger ?? nopLogger).child({ subsys: 'policy' });
    this.engine = new PolicyEngine({
      clusterName: o.clusterName,
      ...(o.enforcement ? { enforcement: o.enforcement } : {}),
      ...(o.defaultLocalCluster !== undefined
        ? { defaultLocalCluster: o.defaultLocalCluster }
        : {}),
    });
    this.runs = new Coalescer(() => this.recompute(), { maxDelayMs: o.batchMs ?? 500 });
    this.reconciler = new Reconciler<EndpointPolicySpec>({
      name: 'policy',
      keyOf: (p) => String(p.endpointId),
      ops: {
        upsert: (p) => o.datapath.upsertEndpointPolicy(p),
        delete: (k) => o.datapath.deleteEndpointPolicy(Number(k)),
      },
      logger: this.log,
      minBackoffMs: 100,
    });
  }

  /** Adds or replaces a policy object. A bad one is recorded in `problems`, not thrown. */
  upsertPolicy(obj: KubeObject): void {
    const name = `${obj.kind} ${obj.metadata.namespace ? `${obj.metadata.namespace}/` : ''}${obj.metadata.name}`;
    try {
      this.engine.upsertPolicy(obj);
      this.problems.delete(name);
    } catch (err) {
      this.problems.set(name, (err as Error).message);
      this.log.warn('policy not applied', { policy: name, error: err });
    }
    this.syncCidrIdentities();
    this.schedule();
  }

  /** Removes a policy object. */
  deletePolicy(ref: PolicyRef): void {
    this.engine.deletePolicy(ref);
    this.syncCidrIdentities();
    this.schedule();
  }

  /**
   * Holds every datapath write (and CIDR identity change) until every gate
   * held is released: after a restart the pinned maps keep enforcing the
   * previous policy while the policies and identities are listed again,
   * instead of a partial computation (no policy yet: allow-all; no identities
   * yet: allowed peers missing, a remote cluster's pods among them) reaching
   * the datapath. Gates: `sources` (the Kubernetes sources: policies and the
   * cluster's identities listed), `mesh` (the mesh's identities delivered).
   */
  hold(gate = 'sources'): void {
    this.gates.add(gate);
  }

  /** Releases a gate of hold(); once none is left, CIDR identities are synced and everything recomputed. */
  release(gate = 'sources'): void {
    if (!this.gates.delete(gate) || this.gates.size > 0) return;
    this.syncCidrIdentities();
    this.schedule();
  }

  /** True while hold() is in effect. */
  get holding(): boolean {
    return this.gates.size > 0;
  }

  /** The gates still held. */
  get heldBy(): string[] {
    return [...this.gates];
  }

  /**
   * Restores CIDR identities found in the datapath's ipcache after a restart
   * (entries in the local identity scope), so a prefix keeps its identity
   * and the policy maps written by the previous run stay valid.
   */
  restoreCidrIdentities(entries: readonly CidrIdentity[]): void {
    const restored = this.cidrIdentities.restore(entries);
    for (const c of restored) this.engine.upsertIdentity(c.identity, cidrIdentityLabels(c.prefix));
    if (restored.length > 0) this.o.onCidrIdentities?.(this.cidrIdentities.list());
  }

  /** Allocates / releases CIDR identities for the prefixes the held policies name. */
  private syncCidrIdentities(): void {
    if (this.holding) return;
    let change: ReturnType<CidrIdentityAllocator['sync']>;
    try {
      change = this.cidrIdentities.sync(policyCidrPrefixes(this.engine.policySpecs()));
    } catch (err) {
      this.log.warn('CIDR identities not allocated', { error: err });
      return;
    }
    if (change.added.length === 0 && change.removed.length === 0) return;
    for (const c of change.removed) this.engine.deleteIdentity(c.identity);
    for (const c of change.added)
      this.engine.upsertIdentity(c.identity, cidrIdentityLabels(c.prefix));
    this.o.onCidrIdentities?.(this.cidrIdentities.list());
  }

  /** Adds or replaces an identity (labels in Cilium's text form). */
  upsertIdentity(id: number, labels: string): void {
    try {
      this.engine.upsertIdentity(id, parseLabels(labels));
    } catch (err) {
      this.log.warn('identity with unparsable labels ignored', { id, error: err });
      return;
    }
    this.schedule();
  }

  /** Removes an identity. */
  deleteIdentity(id: number): void {
    this.engine.deleteIdentity(id);
    this.schedule();
  }

  /** Replaces the identities of a remote cluster (numeric id -> label text). */
  setClusterIdentities(cluster: string, ids: ReadonlyMap<number, string>): void {
    const prev = this.remote.get(cluster) ?? new Map<number, string>();
    for (const [id] of prev) if (!ids.has(id)) this.engine.deleteIdentity(id);
    let changed = false;
    for (const [id, labels] of ids) {
      if (prev.get(id) === labels) continue;
      changed = true;
      try {
        this.engine.upsertIdentity(id, parseLabels(labels));
      } catch (err) {
        this.log.warn('remote identity with unparsable labels ignored', {
          cluster,
          id,
          error: err,
        });
      }
    }
    this.remote.set(cluster, new Map(ids));
    if (changed || prev.size !== ids.size) this.schedule();
  }

  /** Adds or replaces a local endpoint (once it has an identity). */
  upsertEndpoint(ep: PolicyEndpointInput): void {
    if (ep.identity <= 0) return;
    this.endpoints.set(ep.id, ep);
    const namedPorts = ep.namedPorts ?? this.namedPortsOf?.(ep.podNamespace, ep.podName);
    this.engine.upsertEndpoint({
      id: ep.id,
      identity: ep.identity,
      ...(namedPorts ? { namedPorts } : {}),
    });
    this.schedule();
  }

  /** Removes a local endpoint. */
  deleteEndpoint(id: number): void {
    this.endpoints.delete(id);
    this.engine.deleteEndpoint(id);
    this.schedule();
  }

  /** The endpoint with this pod, if local. */
  endpointOf(namespace: string, name: string): PolicyEndpointInput | undefined {
    for (const ep of this.endpoints.values())
      if (ep.podNamespace === namespace && ep.podName === name) return ep;
    return undefined;
  }

  /** The last computed policy of an endpoint. */
  policyOf(id: number): EndpointPolicy | undefined {
    return this.last.get(id);
  }

  /** Every local endpoint's computed policy, for the agent API (`tendril policy get|trace`). */
  report(): EndpointPolicyReport[] {
    const out: EndpointPolicyReport[] = [];
    for (const [id, p] of this.last) {
      const ep = this.endpoints.get(id);
      const spec = endpointPolicySpec(p);
      const names = (refs: PolicyRef[]) => refs.map(formatPolicyRef);
      out.push({
        endpointId: id,
        podNamespace: ep?.podNamespace ?? '',
        podName: ep?.podName ?? '',
        identity: p.identity,
        enforcement: this.engine.enforcement,
        ingress: { ...spec.ingress, policies: names(p.ingress.policies) },
        egress: { ...spec.egress, policies: names(p.egress.policies) },
      });
    }
    return out.sort((a, b) => a.endpointId - b.endpointId);
  }

  /**
   * For `tendril status`: the enforcement mode, how many endpoints have a
   * computed policy, and how many of them have a direction enforced.
   */
  summary(): PolicySummary {
    let enforced = 0;
    for (const p of this.last.values()) if (p.ingress.enforced || p.egress.enforced) enforced++;
    return {
      enforcement: this.engine.enforcement,
      endpoints: this.last.size,
      enforced,
      ...(this.holding ? { held: this.heldBy } : {}),
    };
  }

  private schedule(): void {
    if (this.holding) return;
    this.dirty = true;
    this.runs.schedule();
  }

  /** Recomputes every endpoint now and hands the results to the reconciler. */
  recompute(): void {
    this.dirty = false;
    const t0 = performance.now();
    this.last = this.engine.computeAll();
    this.reconciler.replaceAll([...this.last.values()].map(endpointPolicySpec));
    this.log.debug('policy computed', {
      endpoints: this.last.size,
      policies: this.engine.policyCount,
      ms: Math.round(performance.now() - t0),
    });
  }

  /** Waits until the datapath holds what was computed (tests, benchmarks). */
  async idle(): Promise<void> {
    if (this.dirty && !this.holding) this.runs.runNow();
    await this.reconciler.whenIdle();
  }

  /** The reconciler's status. */
  status(): ReconcilerStatus {
    return this.reconciler.status();
  }

  /** Stops timers. */
  stop(): void {
    this.runs.stop();
    this.reconciler.stop();
  }
}

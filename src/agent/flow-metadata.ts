/**
 * What the agent knows that names a flow's peers, indexed for the flow builder's
 * hot path (src/agent/flows.ts): local endpoints by id and address, other pods by
 * address (CiliumEndpoints), identity labels (the policy engine's identity cache),
 * cluster names, services by frontend and backend, and the policies behind the
 * rule ids the policy programs report.
 */
import { formatLabel } from '../identity/labels.js';
import type { EndpointInfo } from './api/types.js';
import type { ServiceEntry } from '../datapath/types.js';
import type { FlowPolicy, FlowService } from '../observe/flow.js';
import type { FlowMetadata, FlowPod } from './flows.js';
import type { PolicyEngine } from '../policy/engine.js';
import { ruleIdOf } from '../datapath/linux/policy/policy-datapath.js';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DnsNameCache } from './dns-names.js';

/** A rule's origin text ("CiliumNetworkPolicy ns/name spec.ingress[0]") as a Hubble Policy. */
export function policyOfRuleText(text: string): FlowPolicy | undefined {
  const m =
    /^(CiliumNetworkPolicy|CiliumClusterwideNetworkPolicy|NetworkPolicy) (?:([^/\s]+)\/)?(\S+)/.exec(
      text,
    );
  if (!m) return undefined;
  return { kind: m[1]!, namespace: m[2] ?? '', name: m[3]!, labels: [], revision: 0 };
}

function podOf(ep: EndpointInfo): FlowPod {
  const labels = Object.entries(ep.labels)
    .map(([k, v]) => `k8s:${k}=${v}`)
    .concat(`k8s:io.kubernetes.pod.namespace=${ep.podNamespace}`)
    .sort();
  return {
    id: ep.id,
    namespace: ep.podNamespace,
    podName: ep.podName,
    ...(ep.identity > 0 ? { identity: ep.identity } : {}),
    labels,
    workloads: workloadOf(ep.podName, ep.labels),
  };
}

/**
 * A pod's workload. Owner references of a Deployment's pods name the ReplicaSet
 * `<deployment>-<hash>`; without the Pod object here, the same is read from the
 * pod-template-hash label (set on every ReplicaSet pod) and the pod's name.
 */
export function workloadOf(podName: string, labels: Record<string, string>) {
  const hash = labels['pod-template-hash'];
  if (hash) {
    const i = podName.indexOf(`-${hash}-`);
    if (i > 0) return [{ name: podName.slice(0, i), kind: 'Deployment' }];
  }
  const rev = labels['controller-revision-hash'];
  if (rev) {
    const m = /^(.*)-\d+$/.exec(podName);
    if (m) return [{ name: m[1]!, kind: 'StatefulSet' }];
  }
  return [];
}

/** The agent's FlowMetadata. Fed through its set and on methods. */
export class AgentFlowMetadata implements FlowMetadata {
  readonly nodeName: string;
  readonly #byId = new Map<number, FlowPod>();
  readonly #byIp = new Map<string, FlowPod>();
  readonly #peers = new Map<string, FlowPod>();
  /** Pods of connected clusters by address, per cluster (the mesh's ipcache entries). */
  readonly #remotePeers = new Map<string, Map<string, FlowPod>>();
  readonly #clusters = new Map<number, string>();
  readonly #labels = new Map<number, string[]>();
  readonly #rules = new Map<number, FlowPolicy | null>();
  #svcNames = new Map<string, FlowService>(); // ClusterIP -> service
  #frontends = new Map<string, FlowService>();
  #backends = new Map<string, FlowService>();
  #entries: ServiceEntry[] = [];
  /** The frontend/backend index is out of date (rebuilt on the next lookup, not per change). */
  #stale = false;
  #enforcing: (id: number, dir: 'ingress' | 'egress') => FlowPolicy[] = () => [];
  #version = 0;

  /** Bumped by every change of endpoints, peers, cluster names, services or identities. */
  get version(): number {
    return this.#version;
  }
  /** Names DNS answers gave addresses (fed by the agent's DNS capture). */
  readonly dnsNames = new DnsNameCache();
  /** Local pods by UID (their cgroup directories carry it). */
  readonly #byUid = new Map<string, { pod: FlowPod; ip: string }>();
  /** cgroup id -> pod UID, from the last scan of the node's cgroup directory. */
  #cgroups = new Map<number, string>();
  #cgroupScannedAt = 0;
  readonly #cgroupRoot: string | undefined;

  constructor(o: {
    nodeName: string;
    clusterId: number;
    clusterName: string;
    engine?: PolicyEngine;
    enforcing?: (id: number, dir: 'ingress' | 'egress') => FlowPolicy[];
    /** The node's cgroup v2 directory (pods' cgroups are below it): TRANSLATED flows name their pod. */
    cgroupRoot?: string;
  }) {
    this.nodeName = o.nodeName;
    this.#cgroupRoot = o.cgroupRoot;
    this.#clusters.set(o.clusterId, o.clusterName);
    this.engine = o.engine;
    if (o.enforcing) this.#enforcing = o.enforcing;
  }
  private readonly engine: PolicyEngine | undefined;

  /** A local endpoint changed. */
  onEndpoint(ev: 'upsert' | 'delete', ep: EndpointInfo): void {
    this.#version++;
    const old = this.#byId.get(ep.id);
    if (old) for (const [ip, p] of this.#byIp) if (p === old) this.#byIp.delete(ip);
    if (old) for (const [uid, p] of this.#byUid) if (p.pod === old) this.#byUid.delete(uid);
    if (ev === 'delete') {
      this.#byId.delete(ep.id);
      return;
    }
    const pod = podOf(ep);
    this.#byId.set(ep.id, pod);
    if (ep.ip) this.#byIp.set(ep.ip, pod);
    if (ep.podUid) this.#byUid.set(ep.podUid, { pod, ip: ep.ip });
  }

  /**
   * The local pod whose cgroup has this id (a socket translation reports the
   * cgroup of the process that connected). Pod cgroups are directories named
   * by (or containing) the pod's UID below the node's cgroup; a miss rescans
   * them, at most once a second.
   */
  podByCgroup(cgroupId: number): { pod: FlowPod; ip: string } | undefined {
    if (!cgroupId || !this.#cgroupRoot || this.#byUid.size === 0) return undefined;
    let uid = this.#cgroups.get(cgroupId);
    if (uid === undefined && Date.now() - this.#cgroupScannedAt > 1000) {
      this.#cgroupScannedAt = Date.now();
      this.#cgroups = scanCgroups(this.#cgroupRoot, [...this.#byUid.keys()]);
      uid = this.#cgroups.get(cgroupId);
    }
    return uid === undefined ? undefined : this.#byUid.get(uid);
  }

  /** The names DNS answers gave this address (see dns-names.ts). */
  namesOfIP(ip: string): string[] | undefined {
    return this.dnsNames.size ? this.dnsNames.names(ip) : undefined;
  }

  /** Takes in the DNS answers captured but not yet recorded (the capture's drain). */
  dnsDrain: (() => void) | undefined;

  /**
   * The names of the frontend a socket translation connected to: on a miss,
   * answers already captured are taken in first (the answer reached the node
   * before the client could connect; its worker thread may just be late).
   */
  namesOfFrontend(ip: string): string[] | undefined {
    const n = this.namesOfIP(ip);
    if (n || !this.dnsDrain) return n;
    this.dnsDrain();
    return this.namesOfIP(ip);
  }

  /** A pod elsewhere (a CiliumEndpoint) at `ip`, or none. */
  setPeer(ip: string, pod: { namespace: string; podName: string } | undefined): void {
    this.#version++;
    if (pod) this.#peers.set(ip, { id: 0, ...pod });
    else this.#peers.delete(ip);
  }

  /**
   * Replaces the pods of connected cluster CLUSTER by address (the mesh
   * exports each pod's namespace and name with its ipcache entry); an empty
   * list forgets the cluster.
   */
  setRemotePeers(
    cluster: string,
    pods: Iterable<{ ip: string; namespace: string; podName: string }>,
  ): void {
    const m = new Map<string, FlowPod>();
    for (const p of pods) m.set(p.ip, { id: 0, namespace: p.namespace, podName: p.podName });
    if (m.size) this.#remotePeers.set(cluster, m);
    else this.#remotePeers.delete(cluster);
  }

  /**
   * One address of connected cluster CLUSTER: its pod, or undefined when the
   * address is gone or names no pod (the incremental form of setRemotePeers).
   */
  updateRemotePeer(
    cluster: string,
    ip: string,
    pod: { namespace: string; podName: string } | undefined,
  ): void {
    let m = this.#remotePeers.get(cluster);
    if (pod) {
      if (!m) this.#remotePeers.set(cluster, (m = new Map()));
      m.set(ip, { id: 0, namespace: pod.namespace, podName: pod.podName });
    } else if (m?.delete(ip) && m.size === 0) this.#remotePeers.delete(cluster);
  }

  /** A remote cluster's name. */
  setClusterName(id: number, name: string): void {
    this.#version++;
    this.#clusters.set(id, name);
  }

  /** The services' names by ClusterIP (the service catalog). */
  setServiceNames(
    list: ReadonlyArray<{ namespace: string; name: string; clusterIPs: string[] }>,
  ): void {
    const m = new Map<string, FlowService>();
    for (const s of list)
      for (const ip of s.clusterIPs) m.set(ip, { name: s.name, namespace: s.namespace });
    this.#svcNames = m;
    this.#invalidate();
  }

  /** The service table (frontends and their backends). */
  setServiceEntries(entries: ServiceEntry[]): void {
    this.#entries = entries;
    this.#invalidate();
  }

  /**
   * The service table changed: the index is rebuilt when a flow next asks, so a
   * burst of catalog changes (a mesh bulk sync: 10,000 services) costs one
   * rebuild, not one per change.
   */
  #invalidate(): void {
    this.#version++;
    this.#stale = true;
  }

  #index(): void {
    this.#stale = false;
    const fe = new Map<string, FlowService>();
    const be = new Map<string, FlowService>();
    for (const e of this.#entries) {
      const svc = this.#svcNames.get(e.frontend.ip);
      if (!svc) continue;
      const p = e.frontend.protocol === 'UDP' ? 17 : 6;
      fe.set(`${e.frontend.ip}:${e.frontend.port}/${p}`, svc);
      for (const b of e.backends) be.set(`${b.ip}:${b.port}/${p}`, svc);
    }
    this.#frontends = fe;
    this.#backends = be;
  }

  /** Forgets cached identity labels (identities changed). */
  identitiesChanged(): void {
    this.#version++;
    this.#labels.clear();
  }

  endpoint(id: number): FlowPod | undefined {
    return this.#byId.get(id);
  }
  podByIP(ip: string): FlowPod | undefined {
    const p = this.#byIp.get(ip) ?? this.#peers.get(ip);
    if (p || this.#remotePeers.size === 0) return p;
    for (const m of this.#remotePeers.values()) {
      const r = m.get(ip);
      if (r) return r;
    }
    return undefined;
  }
  identityLabels(identity: number): string[] | undefined {
    let l = this.#labels.get(identity);
    if (l) return l;
    const idx = this.engine?.cache.labelsOf(identity);
    if (!idx) return undefined;
    l = [...idx.values()].flat().map(formatLabel).sort();
    if (this.#labels.size > 16_384) this.#labels.clear();
    this.#labels.set(identity, l);
    return l;
  }
  clusterName(clusterId: number): string | undefined {
    return this.#clusters.get(clusterId);
  }
  serviceByFrontend(ip: string, port: number, proto: number): FlowService | undefined {
    if (this.#stale) this.#index();
    return this.#frontends.get(`${ip}:${port}/${proto}`);
  }
  serviceByBackend(ip: string, port: number, proto: number): FlowService | undefined {
    if (this.#stale) this.#index();
    return this.#backends.get(`${ip}:${port}/${proto}`);
  }
  /** Registers the rule texts of written policy (PolicyMapEntry.rule) so their ids resolve. */
  addRules(texts: Iterable<string>): void {
    for (const t of texts) {
      const id = ruleIdOf(t);
      if (!this.#rules.has(id)) this.#rules.set(id, policyOfRuleText(t) ?? null);
    }
  }
  policyOfRule(ruleId: number): FlowPolicy | undefined {
    return this.#rules.get(ruleId) ?? undefined;
  }
  enforcingPolicies(endpointId: number, direction: 'ingress' | 'egress'): FlowPolicy[] {
    return this.#enforcing(endpointId, direction);
  }
}

/**
 * cgroup id (the directory's inode number on cgroup v2) -> pod UID for the
 * directories below ROOT (three levels: kubelet nests pods in QoS slices)
 * whose name contains one of UIDS (with dashes, or underscores as systemd
 * writes them).
 */
function scanCgroups(root: string, uids: string[]): Map<number, string> {
  const out = new Map<number, string>();
  const match = (name: string) =>
    uids.find((u) => name.includes(u) || name.includes(u.replace(/-/g, '_')));
  const walk = (dir: string, depth: number) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const p = join(dir, e.name);
      const uid = match(e.name);
      if (uid) {
        try {
          out.set(statSync(p).ino, uid);
        } catch {
          // removed meanwhile
        }
      } else if (depth < 3) walk(p, depth + 1);
    }
  };
  walk(root, 1);
  return out;
}

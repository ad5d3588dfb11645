/**
 * The agent's flow pipeline: datapath events (src/datapath/linux/events.ts) read
 * from the BPF ring buffer, decoded, enriched into Hubble `Flow`s (who the peers
 * are, which service, which policy) and pushed to the agent's FlowRing. Lost
 * events (ring buffer full, per-CPU counter) and records that do not decode are
 * added to the ring's lost count.
 *
 * `FlowBuilder` is kernel-free (metadata comes through `FlowMetadata`), so it is
 * unit-tested and benchmarked with synthetic records; `FlowBuilder.run` attaches
 * it to a RingBufferReader.
 */
import { randomBytes } from 'node:crypto';
import { clusterIdOf } from '../identity/numeric.js';
import {
  EventFlags,
  EventType,
  decodeEvent,
  type DatapathEvent,
} from '../datapath/linux/events.js';
import {
  DropReason,
  type DropReasonName,
  type Flow,
  type FlowEndpoint,
  type FlowPolicy,
  type FlowService,
  type TCPFlags,
  type Workload,
} from '../observe/flow.js';
import type { FlowRing } from '../observe/ring.js';
import { openRingBuffer } from '../datapath/bpf/ringbuf.js';
import { readLostEvents, type EventMaps } from '../datapath/linux/events.js';
import type { Logger } from '../util/log.js';

/** A pod as flows name it. */
export interface FlowPod {
  /** Local endpoint id (0 for a pod on another node). */
  id: number;
  namespace: string;
  podName: string;
  /** Its security identity, when known. */
  identity?: number;
  /** Labels as `source:key=value`, sorted. */
  labels?: string[];
  workloads?: Workload[];
}

/** Where the builder learns names. Every lookup is on the hot path: keep them O(1). */
export interface FlowMetadata {
  nodeName: string;
  /** The local endpoint with this id. */
  endpoint(id: number): FlowPod | undefined;
  /** A pod (local or not) with this address. */
  podByIP(ip: string): FlowPod | undefined;
  /** An identity's labels (`k8s:app=x`, `reserved:world`), sorted. */
  identityLabels(identity: number): string[] | undefined;
  /** A cluster's name by its id. */
  clusterName(clusterId: number): string | undefined;
  /** The service whose frontend (ClusterIP:port) or backend this is. */
  serviceByFrontend(ip: string, port: number, proto: number): FlowService | undefined;
  serviceByBackend(ip: string, port: number, proto: number): FlowService | undefined;
  /** The policy a policy map entry's ruleId came from. */
  policyOfRule(ruleId: number): FlowPolicy | undefined;
  /** The policies enforcing a direction on an endpoint (what a default-deny drop is due to). */
  enforcingPolicies(endpointId: number, direction: 'ingress' | 'egress'): FlowPolicy[];
  /**
   * Changes whenever any name above may have changed. When present, the builder
   * reuses the FlowEndpoint it built for the same peer until it changes
   * (flows share those objects: consumers must not modify a flow).
   */
  readonly version?: number;
  /** Names DNS answers gave this address (source_names / destination_names). */
  namesOfIP?(ip: string): string[] | undefined;
  /** The same for the frontend of a socket translation (may take in answers not yet recorded). */
  namesOfFrontend?(ip: string): string[] | undefined;
  /** The local pod (and its address) whose cgroup has this id: the source of a socket translation. */
  podByCgroup?(cgroupId: number): { pod: FlowPod; ip: string } | undefined;
}

const DROP_NAMES = new Map<number, DropReasonName>(
  Object.entries(DropReason).map(([k, v]) => [v, k as DropReasonName]),
);

const TCP_FLAG_BITS: Array<[keyof TCPFlags, number]> = [
  ['FIN', 0x01],
  ['SYN', 0x02],
  ['RST', 0x04],
  ['PSH', 0x08],
  ['ACK', 0x10],
  ['URG', 0x20],
  ['ECE', 0x40],
  ['CWR', 0x80],
];

/** tcpFlags(b) for every flag byte, built on first use (flows share them). */
const TCP_FLAGS_BY_BYTE: ({ flags: TCPFlags; summary: string } | undefined)[] = new Array(256);

function tcpFlagsOf(b: number): { flags: TCPFlags; summary: string } {
  let f = TCP_FLAGS_BY_BYTE[b];
  if (f === undefined) {
    const t = tcpFlags(b);
    f = TCP_FLAGS_BY_BYTE[b] = { flags: t.flags, summary: `TCP Flags: ${t.text}` };
  }
  return f;
}

/** `{type, subType}` objects by `type << 8 | subType`, shared by flows. */
const EVENT_TYPES = new Map<number, { type: number; subType: number }>();

function eventTypeOf(type: number, subType: number): { type: number; subType: number } {
  const k = (type << 8) | subType;
  let e = EVENT_TYPES.get(k);
  if (e === undefined) EVENT_TYPES.set(k, (e = { type, subType }));
  return e;
}

/**
 * The empty name list every flow without DNS names shares (frozen: flows are read-only).
 * Per-flow arrays here were two of a flow's ~10 objects; see FlowBuilder.build on GC.
 */
const NO_NAMES: string[] = Object.freeze([]) as unknown as string[];

/** Hex digits of 0..4095, three wide: the low part of a flow's uuid. */
const HEX3 = Array.from({ length: 4096 }, (_, i) => i.toString(16).padStart(3, '0'));

/** Peers the endpoint cache holds before it starts over. */
const ENDPOINT_CACHE_MAX = 16_384;

function tcpFlags(b: number): { flags: TCPFlags; text: string } {
  const flags: TCPFlags = {};
  const names: string[] = [];
  for (const [name, bit] of TCP_FLAG_BITS)
    if (b & bit) {
      flags[name] = true;
      names.push(name);
    }
  return { flags, text: names.join(', ') };
}

/**
 * A flow's uuid: a random (version 4) prefix per builder and a 48-bit sequence, so
 * uuids are unique per agent run without drawing randomness per flow.
 */
function uuidPrefix(): string {
  const h = randomBytes(10).toString('hex');
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-`;
}

/**
 * Turns datapath events into flows. `ktimeToUnixNs` maps bpf_ktime_get_ns
 * (CLOCK_MONOTONIC) to wall time; the default measures the offset once.
 */
export class FlowBuilder {
  readonly #meta: FlowMetadata;
  readonly #ring: FlowRing;
  /** Wall-clock ms at ktime 0 (ms keep the sum exact as a Number). */
  readonly #offsetMs: number;
  readonly #uuidPrefix = uuidPrefix();
  #uuidSeq = 0;
  /** `#uuidPrefix` and the sequence's upper 36 bits, rebuilt every 4096 flows. */
  #uuidBlock = '';
  /** Summaries of drop flows by TCP flags byte and reason (`TCP Flags: ACK (POLICY_DENIED)`). */
  readonly #dropSummaries = new Map<number, string>();
  /** The single-policy lists of allow/deny flows by ruleId, shared by flows (bounded). */
  readonly #rulePolicies = new Map<number, FlowPolicy[]>();
  /** #service's answers by address, then port * 256 + proto (null: none); bounded. */
  readonly #services = new Map<string, Map<number, FlowService | null>>();
  #servicesCount = 0;
  /** Backend "ip:port/proto" -> service, from socket translations seen. */
  readonly #translated = new Map<string, FlowService>();
  /** Backend address -> the DNS names of the frontend a socket translation went through. */
  readonly #translatedNames = new Map<string, string[]>();
  #lostReported = 0;
  /** FlowEndpoints by local endpoint id, and by peer address then identity (see FlowMetadata.version). */
  readonly #localEps = new Map<number, FlowEndpoint>();
  readonly #peerEps = new Map<string, Map<number, FlowEndpoint>>();
  #peerEpCount = 0;
  #metaVersion: number | undefined;
  /** Records read. */
  events = 0;

  constructor(meta: FlowMetadata, ring: FlowRing, options: { monoToUnixOffsetMs?: number } = {}) {
    this.#meta = meta;
    this.#ring = ring;
    // process.hrtime is CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns.
    this.#offsetMs =
      options.monoToUnixOffsetMs ?? Date.now() - Number(process.hrtime.bigint() / 1_000_000n);
  }

  /** Decodes, enriches and pushes one ring-buffer record; a bad record counts as lost. */
  ingest(record: Buffer): Flow | undefined {
    this.events++;
    let ev: DatapathEvent;
    try {
      ev = decodeEvent(record);
    } catch {
      this.#ring.addLost(1);
      return undefined;
    }
    const flow = this.build(ev);
    this.#ring.push(flow);
    return flow;
  }

  /** Adds what the datapath's lost counter gained since the last call. */
  reportLost(totalLost: number): void {
    if (totalLost > this.#lostReported) this.#ring.addLost(totalLost - this.#lostReported);
    this.#lostReported = totalLost;
  }

  /** Enriches one decoded event into a Flow. */
  build(ev: DatapathEvent): Flow {
    const ms = Math.floor(ev.ktimeNs / 1_000_000);
    const unixMs = ms + this.#offsetMs;
    const seconds = Math.floor(unixMs / 1000);
    const nanos = (unixMs - seconds * 1000) * 1_000_000 + (ev.ktimeNs - ms * 1_000_000);
    const meta = this.#meta;
    const seq = (this.#uuidSeq = (this.#uuidSeq + 1) % 0x1000000000000);
    const low = seq & 0xfff;
    if (low === 0 || this.#uuidBlock === '')
      this.#uuidBlock =
        this.#uuidPrefix +
        Math.floor(seq / 4096)
          .toString(16)
          .padStart(9, '0');
    // One new string per flow (a cons of two shared ones): strings have no allocation
    // site, so with V8 pretenuring the flows (the ring keeps them) every young object a
    // flow points to is copied out of the young generation at each scavenge.
    const base = { time: { seconds, nanos }, uuid: this.#uuidBlock + HEX3[low]! };
    if (ev.type === EventType.TraceSock) return this.#sockFlow(ev, base);

    const egressSide = (ev.flags & EventFlags.Egress) !== 0;
    const reply = (ev.flags & EventFlags.Reply) !== 0;
    // The connection's direction relative to the endpoint: a reply travels against it.
    const connEgress = egressSide !== reply;
    const localIsSource = egressSide; // host-side ingress carries what the pod sends
    const caching = this.#checkCache();
    const peerIp = localIsSource ? ev.daddr : ev.saddr;
    let localEp = caching ? this.#localEps.get(ev.endpoint) : undefined;
    if (localEp === undefined) {
      const local = meta.endpoint(ev.endpoint);
      localEp = this.#endpoint(localIsSource ? ev.saddr : ev.daddr, undefined, local);
      if (caching && local) this.#localEps.set(ev.endpoint, localEp);
    }
    const peerEp = caching
      ? this.#peerEndpoint(peerIp, ev.identity)
      : this.#endpoint(peerIp, ev.identity, undefined);
    const source = localIsSource ? localEp : peerEp;
    const destination = localIsSource ? peerEp : localEp;

    // The service of a translated connection: its backend is the server side.
    const svc = reply
      ? this.#service(ev.saddr, ev.sport, ev.proto)
      : this.#service(ev.daddr, ev.dport, ev.proto);

    let flow: Flow;
    if (ev.type === EventType.Trace && ev.proto === 6 && svc === undefined) {
      // The commonest flow in one literal, its keys in the order the general path below
      // adds them: a property added after an object literal goes to a separate backing
      // store, one more object per flow for the collector.
      const f = tcpFlagsOf(ev.tcpFlags);
      flow = {
        time: base.time,
        uuid: base.uuid,
        nodeName: this.#meta.nodeName,
        sourceNames: NO_NAMES,
        destinationNames: NO_NAMES,
        verdict: 'FORWARDED',
        IP: { source: ev.saddr, destination: ev.daddr, ipVersion: 'IPv4' },
        source,
        destination,
        Type: 'L3_L4',
        eventType: eventTypeOf(ev.type, ev.subType),
        trafficDirection: connEgress ? 'EGRESS' : 'INGRESS',
        isReply: reply,
        traceObservationPoint: egressSide ? 'FROM_ENDPOINT' : 'TO_ENDPOINT',
        l4: { TCP: { sourcePort: ev.sport, destinationPort: ev.dport, flags: f.flags } },
        Summary: f.summary,
      };
      this.#names(flow, ev);
      return flow;
    }

    // No object spread here: copying `base` by spread costs ~20x the rest of build() in V8.
    flow = {
      time: base.time,
      uuid: base.uuid,
      nodeName: this.#meta.nodeName,
      sourceNames: NO_NAMES,
      destinationNames: NO_NAMES,
      verdict: ev.type === EventType.Drop ? 'DROPPED' : 'FORWARDED',
      IP: { source: ev.saddr, destination: ev.daddr, ipVersion: 'IPv4' },
      source,
      destination,
      Type: 'L3_L4',
      eventType: eventTypeOf(ev.type, ev.subType),
      trafficDirection: connEgress ? 'EGRESS' : 'INGRESS',
      isReply: reply,
    };
    if (ev.type === EventType.Trace)
      flow.traceObservationPoint = egressSide ? 'FROM_ENDPOINT' : 'TO_ENDPOINT';
    this.#names(flow, ev);

    let summary: string;
    if (ev.proto === 6) {
      const f = tcpFlagsOf(ev.tcpFlags);
      flow.l4 = { TCP: { sourcePort: ev.sport, destinationPort: ev.dport, flags: f.flags } };
      summary = f.summary;
    } else if (ev.proto === 17) {
      flow.l4 = { UDP: { sourcePort: ev.sport, destinationPort: ev.dport } };
      summary = 'UDP';
    } else if (ev.proto === 1) {
      flow.l4 = { ICMPv4: { type: 0, code: 0 } };
      summary = 'ICMPv4';
    } else summary = `IP protocol ${ev.proto}`;

    if (svc) {
      if (reply) flow.sourceService = svc;
      else flow.destinationService = svc;
    }

    if (ev.type === EventType.Drop) {
      const name = DROP_NAMES.get(ev.subType) ?? 'DROP_REASON_UNKNOWN';
      flow.dropReasonDesc = name;
      const dir = egressSide ? 'egress' : 'ingress';
      const by = ev.ruleId ? this.#ruleList(ev.ruleId) : meta.enforcingPolicies(ev.endpoint, dir);
      if (egressSide) flow.egressDeniedBy = by;
      else flow.ingressDeniedBy = by;
      const key = (ev.subType << 16) | (ev.proto === 6 ? 256 | ev.tcpFlags : ev.proto);
      let s = this.#dropSummaries.get(key);
      if (s === undefined) {
        s = `${summary} (${name})`;
        if (this.#dropSummaries.size < 4096) this.#dropSummaries.set(key, s);
      }
      summary = s;
    } else if (ev.type === EventType.PolicyVerdict) {
      const by = ev.ruleId ? this.#ruleList(ev.ruleId) : [];
      if (egressSide) flow.egressAllowedBy = by;
      else flow.ingressAllowedBy = by;
    }
    flow.Summary = summary;
    return flow;
  }

  #sockFlow(ev: DatapathEvent, base: Pick<Flow, 'time' | 'uuid'>): Flow {
    const fe = this.#meta.serviceByFrontend(ev.origDaddr!, ev.origDport!, ev.proto);
    if (fe) {
      if (this.#translated.size > 65_536) {
        this.#translated.clear();
        this.#services.clear();
        this.#servicesCount = 0;
      }
      const key = `${ev.daddr}:${ev.dport}/${ev.proto}`;
      if (this.#translated.get(key) !== fe) {
        this.#translated.set(key, fe);
        this.#services.get(ev.daddr)?.delete(ev.dport * 256 + ev.proto);
      }
    }
    const flow: Flow = {
      time: base.time,
      uuid: base.uuid,
      nodeName: this.#meta.nodeName,
      sourceNames: NO_NAMES,
      destinationNames: NO_NAMES,
      verdict: 'TRANSLATED',
      IP: { source: '0.0.0.0', destination: ev.daddr, ipVersion: 'IPv4' },
      destination: this.#checkCache()
        ? this.#peerEndpoint(ev.daddr, -1)
        : this.#endpoint(ev.daddr, undefined, undefined),
      Type: 'SOCK',
      eventType: eventTypeOf(EventType.TraceSock, ev.subType),
      trafficDirection: 'EGRESS',
      sockXlatePoint: 'SOCK_XLATE_POINT_POST_DIRECTION_FWD',
      socketCookie: Number(ev.cookie ?? 0n),
      cgroupId: Number(ev.cgroupId ?? 0n),
      Summary: `${ev.origDaddr}:${ev.origDport} -> ${ev.daddr}:${ev.dport}`,
    };
    if (ev.proto === 6) flow.l4 = { TCP: { sourcePort: 0, destinationPort: ev.dport } };
    else if (ev.proto === 17) flow.l4 = { UDP: { sourcePort: 0, destinationPort: ev.dport } };
    if (fe) flow.destinationService = fe;
    const names =
      (this.#meta.namesOfFrontend ?? this.#meta.namesOfIP)?.call(this.#meta, ev.origDaddr!) ??
      this.#meta.namesOfIP?.(ev.daddr);
    if (names) {
      flow.destinationNames = names;
      // the connection's later flows carry the backend's address: they keep the frontend's names
      if (this.#translatedNames.size > 65_536) this.#translatedNames.clear();
      this.#translatedNames.set(ev.daddr, names);
    }
    const src = flow.cgroupId ? this.#meta.podByCgroup?.(flow.cgroupId) : undefined;
    if (src) {
      flow.source = this.#endpoint(src.ip, undefined, src.pod);
      if (flow.IP) flow.IP.source = src.ip;
    }
    return flow;
  }

  /** Sets the DNS names of the flow's addresses. */
  #names(flow: Flow, ev: DatapathEvent): void {
    const meta = this.#meta;
    if (!meta.namesOfIP) return;
    const sn = meta.namesOfIP(ev.saddr) ?? this.#translatedNames.get(ev.saddr);
    if (sn) flow.sourceNames = sn;
    const dn = meta.namesOfIP(ev.daddr) ?? this.#translatedNames.get(ev.daddr);
    if (dn) flow.destinationNames = dn;
  }

  /** `[the policy of ruleId]` (empty when unknown), shared while the metadata is unchanged. */
  #ruleList(ruleId: number): FlowPolicy[] {
    if (!this.#checkCache()) {
      const p = this.#meta.policyOfRule(ruleId);
      return p ? [p] : [];
    }
    let l = this.#rulePolicies.get(ruleId);
    if (l === undefined) {
      const p = this.#meta.policyOfRule(ruleId);
      if (!p) return [];
      l = Object.freeze([p]) as unknown as FlowPolicy[];
      if (this.#rulePolicies.size >= 4096) this.#rulePolicies.clear();
      this.#rulePolicies.set(ruleId, l);
    }
    return l;
  }

  #service(ip: string, port: number, proto: number): FlowService | undefined {
    if (!this.#checkCache()) return this.#serviceLookup(ip, port, proto);
    // memoized per server address and port: no key string built per flow
    let byPort = this.#services.get(ip);
    const k = port * 256 + proto;
    const hit = byPort?.get(k);
    if (hit !== undefined) return hit === null ? undefined : hit;
    const svc = this.#serviceLookup(ip, port, proto);
    if (this.#servicesCount >= ENDPOINT_CACHE_MAX) {
      this.#services.clear();
      this.#servicesCount = 0;
      byPort = undefined;
    }
    if (byPort === undefined) this.#services.set(ip, (byPort = new Map()));
    byPort.set(k, svc ?? null);
    this.#servicesCount++;
    return svc;
  }

  #serviceLookup(ip: string, port: number, proto: number): FlowService | undefined {
    return (
      this.#translated.get(`${ip}:${port}/${proto}`) ?? this.#meta.serviceByBackend(ip, port, proto)
    );
  }

  /** True when endpoints may be cached; empties the caches when the metadata changed. */
  #checkCache(): boolean {
    const v = this.#meta.version;
    if (v === undefined) return false;
    if (v !== this.#metaVersion) {
      this.#localEps.clear();
      this.#rulePolicies.clear();
      this.#services.clear();
      this.#servicesCount = 0;
      this.#peerEps.clear();
      this.#peerEpCount = 0;
      this.#metaVersion = v;
    }
    return true;
  }

  /** The peer at IP with IDENTITY (-1: unknown, take the pod's), cached. */
  #peerEndpoint(ip: string, identity: number): FlowEndpoint {
    let byId = this.#peerEps.get(ip);
    let ep = byId?.get(identity);
    if (ep !== undefined) return ep;
    ep = this.#endpoint(ip, identity < 0 ? undefined : identity, undefined);
    // an identity whose labels are not known yet is looked up again next time
    if (ep.identity > 0 && ep.labels.length === 0) return ep;
    if (this.#peerEpCount >= ENDPOINT_CACHE_MAX) {
      this.#peerEps.clear();
      this.#peerEpCount = 0;
      byId = undefined;
    }
    if (byId === undefined) this.#peerEps.set(ip, (byId = new Map()));
    byId.set(identity, ep);
    this.#peerEpCount++;
    return ep;
  }

  #endpoint(ip: string, identity: number | undefined, known: FlowPod | undefined): FlowEndpoint {
    const meta = this.#meta;
    const pod = known ?? meta.podByIP(ip);
    const id = identity ?? pod?.identity ?? 0;
    const labels = pod?.labels ?? (id ? meta.identityLabels(id) : undefined) ?? [];
    return {
      ID: pod?.id ?? 0,
      identity: id,
      clusterName: (id ? meta.clusterName(clusterIdOf(id)) : undefined) ?? '',
      namespace: pod?.namespace ?? '',
      labels,
      podName: pod?.podName ?? '',
      workloads: pod?.workloads ?? [],
    };
  }

  /**
   * Reads records until the reader ends, polling the datapath's lost counter
   * every `lostIntervalMs`. Resolves when the reader is closed.
   */
  async run(
    reader: AsyncIterable<Buffer> & {
      read(): Promise<Buffer | undefined>;
      tryRead?(): Buffer | undefined;
    },
    readLost: () => number,
    lostIntervalMs = 1000,
  ): Promise<void> {
    const timer = setInterval(() => {
      try {
        this.reportLost(readLost());
      } catch {
        /* maps closed during shutdown */
      }
    }, lostIntervalMs);
    timer.unref();
    try {
      for (;;) {
        // records of an arrived batch synchronously; a promise only to wait for the next
        let rec = reader.tryRead?.();
        if (rec === undefined) {
          rec = await reader.read();
          if (rec === undefined) break;
        }
        this.ingest(rec);
      }
    } finally {
      clearInterval(timer);
      try {
        this.reportLost(readLost());
      } catch {
        /* closed */
      }
    }
  }
}

/** A running flow pipeline. */
export interface FlowPipeline {
  builder: FlowBuilder;
  /** Stops reading (the reader's worker exits) and waits for it. */
  stop(): Promise<void>;
}

/**
 * How long the ring-buffer reader lets records gather after a read: a busy node
 * then wakes the agent ~100 times a second rather than once per event (each
 * wake-up is a context switch on a CPU that is serving packets).
 */
export const FLOW_EVENTS_BATCH_DELAY_MS = 10;

/** Starts reading the datapath's event ring into `ring`. */
export function startFlows(
  maps: EventMaps,
  meta: FlowMetadata,
  ring: FlowRing,
  log: Logger,
): FlowPipeline {
  const builder = new FlowBuilder(meta, ring);
  const reader = openRingBuffer(maps.ring, { batchDelayMs: FLOW_EVENTS_BATCH_DELAY_MS });
  const done = builder
    .run(reader, () => readLostEvents(maps))
    .catch((err: unknown) => {
      log.warn('flow events reader stopped', { error: err });
    });
  return {
    builder,
    async stop() {
      await reader.close();
      await done;
    },
  };
}

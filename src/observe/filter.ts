/**
 * Flow filters with Hubble's semantics (pkg/hubble/filters): a list of
 * filters ORs (a flow passes a whitelist when any filter matches), the fields
 * set in one filter AND, and inside one field any listed value may match. A
 * flow is returned when it passes the whitelist (or the whitelist is empty)
 * and matches no blacklist filter.
 *
 * Filters arrive as `flow.FlowFilter` messages in @grpc/proto-loader's
 * camelCase form; they are compiled once per request so a bad value (an IP
 * that is neither an address nor a CIDR, a port above 65535, a label selector
 * that does not parse) is rejected before any flow is sent.
 */
import { TendrilError } from '../util/errors.js';
import { cidrContains, parseCIDR, tryParseIPv4 } from '../util/ipv4.js';
import { matchesSelector, parseLabelSelector, type Selector } from '../k8s/selectors.js';
import {
  DropReason,
  TrafficDirection,
  Verdict,
  type DropReasonName,
  type Flow,
  type FlowEndpoint,
  type TrafficDirectionName,
  type VerdictName,
} from './flow.js';

/** A workload in a filter. */
export interface WorkloadFilter {
  name?: string;
  kind?: string;
}

/** An event type in a filter (match_sub_type: 0 is a valid sub type). */
export interface EventTypeFilter {
  type?: number;
  matchSubType?: boolean;
  subType?: number;
}

/** Hubble's `flow.FlowFilter` (the fields Tendril evaluates), camelCase as proto-loader decodes it. */
export interface FlowFilter {
  uuid?: string[];
  sourceIp?: string[];
  sourcePod?: string[];
  sourceFqdn?: string[];
  sourceLabel?: string[];
  sourceService?: string[];
  sourceWorkload?: WorkloadFilter[];
  sourceClusterName?: string[];
  destinationIp?: string[];
  destinationPod?: string[];
  destinationFqdn?: string[];
  destinationLabel?: string[];
  destinationService?: string[];
  destinationWorkload?: WorkloadFilter[];
  destinationClusterName?: string[];
  trafficDirection?: (TrafficDirectionName | number)[];
  verdict?: (VerdictName | number)[];
  dropReasonDesc?: (DropReasonName | number)[];
  eventType?: EventTypeFilter[];
  protocol?: string[];
  sourcePort?: string[];
  destinationPort?: string[];
  reply?: boolean[];
  sourceIdentity?: number[];
  destinationIdentity?: number[];
  tcpFlags?: Record<string, boolean>[];
  nodeName?: string[];
  ipVersion?: (string | number)[];
}

/** A filter that does not compile. */
export class FlowFilterError extends TendrilError {
  constructor(message: string, hint?: string) {
    super('INVALID_FLOW_FILTER', message, hint ? { hint } : {});
    this.name = 'FlowFilterError';
  }
}

type Pred = (f: Flow) => boolean;

const any = <T>(xs: readonly T[] | undefined): xs is readonly T[] => !!xs && xs.length > 0;

/** Splits `ns/name-prefix` (Hubble's parseNamespaceName): `ns/` is a whole namespace. */
export function parseNamespaceName(s: string): { namespace: string; prefix: string } {
  const i = s.indexOf('/');
  return i < 0
    ? { namespace: '', prefix: s }
    : { namespace: s.slice(0, i), prefix: s.slice(i + 1) };
}

function podPred(values: readonly string[], side: 'source' | 'destination'): Pred {
  const names = values.map((v) => {
    const p = parseNamespaceName(v);
    if (!p.namespace && !p.prefix)
      throw new FlowFilterError(`${side}_pod: empty pod filter "${v}"`, 'write [namespace/]pod');
    return p;
  });
  return (f) => {
    const ep = f[side];
    if (!ep || (!ep.namespace && !ep.podName)) return false;
    return names.some(
      (n) => n.namespace === ep.namespace && (n.prefix === '' || ep.podName.startsWith(n.prefix)),
    );
  };
}

function servicePred(values: readonly string[], side: 'source' | 'destination'): Pred {
  const names = values.map(parseNamespaceName);
  const key = side === 'source' ? 'sourceService' : 'destinationService';
  return (f) => {
    const s = f[key];
    if (!s || !s.name) return false;
    return names.some(
      (n) => n.namespace === s.namespace && (n.prefix === '' || s.name.startsWith(n.prefix)),
    );
  };
}

/** Label sources Cilium prefixes keys with (`k8s:app=x`). */
const LABEL_SOURCE = /(^|[\s,(!])(k8s|reserved|container|cidr|unspec|any|cilium):/g;

/**
 * Compiles a label selector the way Hubble reads it: Kubernetes selector
 * syntax, keys optionally with a Cilium source (`k8s:app=echo`; without one
 * any source matches).
 */
export function compileLabelSelector(text: string, what = 'label'): (labels: string[]) => boolean {
  let sel: Selector;
  try {
    sel = parseLabelSelector(
      text.replace(LABEL_SOURCE, (_m, pre: string, src: string) =>
        src === 'any' ? pre : `${pre}${src}.`,
      ),
    );
  } catch (err) {
    throw new FlowFilterError(
      `${what}: invalid label selector "${text}": ${(err as Error).message}`,
      'write a Kubernetes label selector, e.g. app=echo or k8s:app in (a,b)',
    );
  }
  return (labels) => matchesSelector(sel, labelMap(labels));
}

/** `k8s:app=echo` -> { app: 'echo', 'k8s.app': 'echo' } (both forms selectable). */
function labelMap(labels: readonly string[]): Record<string, string> {
  const m: Record<string, string> = {};
  for (const l of labels) {
    const eq = l.indexOf('=');
    const full = eq < 0 ? l : l.slice(0, eq);
    const value = eq < 0 ? '' : l.slice(eq + 1);
    const colon = full.indexOf(':');
    const key = colon < 0 ? full : full.slice(colon + 1);
    m[key] = value;
    if (colon >= 0) m[`${full.slice(0, colon)}.${key}`] = value;
  }
  return m;
}

function labelPred(values: readonly string[], side: 'source' | 'destination'): Pred {
  const sels = values.map((v) => compileLabelSelector(v, `${side}_label`));
  return (f) => {
    const ep = f[side];
    return !!ep && sels.some((s) => s(ep.labels ?? []));
  };
}

function ipPred(values: readonly string[], side: 'source' | 'destination'): Pred {
  const ms = values.map((v): ((ip: string) => boolean) => {
    if (v.includes('/')) {
      if (v.includes(':')) return (ip) => ip === v;
      let c;
      try {
        c = parseCIDR(v, `${side}_ip`);
      } catch (err) {
        throw new FlowFilterError(`${side}_ip: ${(err as Error).message}`);
      }
      return (ip) => tryParseIPv4(ip) !== undefined && cidrContains(c, ip);
    }
    if (tryParseIPv4(v) === undefined && !/^[0-9a-fA-F:]+$/.test(v))
      throw new FlowFilterError(
        `${side}_ip: "${v}" is neither an IP address nor a CIDR`,
        'write an address (10.0.0.1) or a CIDR (10.0.0.0/24)',
      );
    return (ip) => ip === v;
  });
  return (f) => {
    const ip = f.IP?.[side];
    return !!ip && ms.some((m) => m(ip));
  };
}

/** Parses a port filter value. @throws FlowFilterError naming the port. */
export function parsePort(v: string, what: string): number {
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new FlowFilterError(`${what}: invalid port "${v}"`, 'a port is a number 0..65535');
  return n;
}

function l4Ports(f: Flow): { sourcePort: number; destinationPort: number } | undefined {
  return f.l4?.TCP ?? f.l4?.UDP;
}

function portPred(values: readonly string[], side: 'source' | 'destination'): Pred {
  const ports = new Set(values.map((v) => parsePort(v, `${side}_port`)));
  const key = side === 'source' ? 'sourcePort' : 'destinationPort';
  return (f) => {
    const p = l4Ports(f);
    return !!p && ports.has(p[key]);
  };
}

/** Protocol names Hubble's protocol filter takes. */
export const FILTER_PROTOCOLS = ['tcp', 'udp', 'sctp', 'icmp', 'icmpv4', 'icmpv6'] as const;

function protocolPred(values: readonly string[]): Pred {
  const want = values.map((v) => v.toLowerCase());
  for (const w of want)
    if (!(FILTER_PROTOCOLS as readonly string[]).includes(w))
      throw new FlowFilterError(
        `protocol: unknown protocol "${w}"`,
        `use one of ${FILTER_PROTOCOLS.join(', ')}`,
      );
  return (f) =>
    want.some((w) => {
      switch (w) {
        case 'tcp':
          return !!f.l4?.TCP;
        case 'udp':
          return !!f.l4?.UDP;
        case 'icmp':
          return !!f.l4?.ICMPv4 || !!f.l4?.ICMPv6;
        case 'icmpv4':
          return !!f.l4?.ICMPv4;
        case 'icmpv6':
          return !!f.l4?.ICMPv6;
        default:
          return false;
      }
    });
}

function enumNames<T extends Record<string, number>>(
  table: T,
  values: readonly (string | number)[],
  what: string,
): Set<string> {
  const byNum = new Map(Object.entries(table).map(([k, v]) => [v, k]));
  return new Set(
    values.map((v) => {
      const name = typeof v === 'number' ? byNum.get(v) : v in table ? v : undefined;
      if (name === undefined)
        throw new FlowFilterError(
          `${what}: unknown value "${v}"`,
          `use one of ${Object.keys(table).join(', ')}`,
        );
      return name;
    }),
  );
}

/** Glob with `*` (Hubble's node name patterns: `k8s*`, `cluster1/*`). */
function globRe(p: string): RegExp {
  return new RegExp(
    `^${p
      .split('*')
      .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
}

function compileOne(ff: FlowFilter): Pred {
  const preds: Pred[] = [];
  if (any(ff.uuid)) {
    const s = new Set(ff.uuid);
    preds.push((f) => s.has(f.uuid));
  }
  if (any(ff.sourceIp)) preds.push(ipPred(ff.sourceIp, 'source'));
  if (any(ff.destinationIp)) preds.push(ipPred(ff.destinationIp, 'destination'));
  if (any(ff.sourcePod)) preds.push(podPred(ff.sourcePod, 'source'));
  if (any(ff.destinationPod)) preds.push(podPred(ff.destinationPod, 'destination'));
  if (any(ff.sourceService)) preds.push(servicePred(ff.sourceService, 'source'));
  if (any(ff.destinationService)) preds.push(servicePred(ff.destinationService, 'destination'));
  if (any(ff.sourceLabel)) preds.push(labelPred(ff.sourceLabel, 'source'));
  if (any(ff.destinationLabel)) preds.push(labelPred(ff.destinationLabel, 'destination'));
  if (any(ff.sourceFqdn)) {
    const s = new Set(ff.sourceFqdn);
    preds.push((f) => f.sourceNames.some((n) => s.has(n)));
  }
  if (any(ff.destinationFqdn)) {
    const s = new Set(ff.destinationFqdn);
    preds.push((f) => f.destinationNames.some((n) => s.has(n)));
  }
  for (const side of ['source', 'destination'] as const) {
    const wl = side === 'source' ? ff.sourceWorkload : ff.destinationWorkload;
    if (any(wl))
      preds.push((f) =>
        (f[side]?.workloads ?? []).some((w) =>
          wl.some((x) => (!x.name || x.name === w.name) && (!x.kind || x.kind === w.kind)),
        ),
      );
    const cl = side === 'source' ? ff.sourceClusterName : ff.destinationClusterName;
    if (any(cl)) {
      const res = cl.map(globRe);
      preds.push((f) => {
        const c = f[side]?.clusterName;
        return !!c && res.some((r) => r.test(c));
      });
    }
    const ids = side === 'source' ? ff.sourceIdentity : ff.destinationIdentity;
    if (any(ids)) {
      const s = new Set(ids.map(Number));
      preds.push((f) => s.has((f[side] as FlowEndpoint | undefined)?.identity ?? -1));
    }
  }
  if (any(ff.sourcePort)) preds.push(portPred(ff.sourcePort, 'source'));
  if (any(ff.destinationPort)) preds.push(portPred(ff.destinationPort, 'destination'));
  if (any(ff.protocol)) preds.push(protocolPred(ff.protocol));
  if (any(ff.verdict)) {
    const s = enumNames(Verdict, ff.verdict, 'verdict');
    preds.push((f) => s.has(f.verdict));
  }
  if (any(ff.dropReasonDesc)) {
    const s = enumNames(DropReason, ff.dropReasonDesc, 'drop_reason_desc');
    preds.push((f) => f.verdict === 'DROPPED' && s.has(f.dropReasonDesc ?? 'DROP_REASON_UNKNOWN'));
  }
  if (any(ff.trafficDirection)) {
    const s = enumNames(TrafficDirection, ff.trafficDirection, 'traffic_direction');
    preds.push((f) => s.has(f.trafficDirection));
  }
  if (any(ff.eventType)) {
    const ets = ff.eventType;
    preds.push((f) =>
      ets.some(
        (e) =>
          (e.type ?? 0) === f.eventType.type &&
          (!e.matchSubType || (e.subType ?? 0) === f.eventType.subType),
      ),
    );
  }
  if (any(ff.reply)) {
    const rs = ff.reply;
    preds.push((f) => f.isReply !== undefined && rs.includes(f.isReply));
  }
  if (any(ff.tcpFlags)) {
    const fl = ff.tcpFlags;
    preds.push((f) => {
      const have = f.l4?.TCP?.flags as Record<string, boolean | undefined> | undefined;
      if (!have) return false;
      return fl.some((want) => Object.entries(want).every(([k, v]) => !v || have[k] === true));
    });
  }
  if (any(ff.nodeName)) {
    const res = ff.nodeName.map(globRe);
    preds.push((f) => res.some((r) => r.test(f.nodeName)));
  }
  if (any(ff.ipVersion)) {
    const s = new Set(ff.ipVersion.map((v) => (v === 1 ? 'IPv4' : v === 2 ? 'IPv6' : String(v))));
    preds.push((f) => !!f.IP && s.has(f.IP.ipVersion));
  }
  return (f) => preds.every((p) => p(f));
}

/**
 * Compiles a request's whitelist and blacklist into one predicate.
 * @throws FlowFilterError INVALID_FLOW_FILTER naming the bad field and value.
 */
export function compileFlowFilters(
  whitelist: readonly FlowFilter[] = [],
  blacklist: readonly FlowFilter[] = [],
): (f: Flow) => boolean {
  const wl = whitelist.map(compileOne);
  const bl = blacklist.map(compileOne);
  return (f) => (wl.length === 0 || wl.some((p) => p(f))) && !bl.some((p) => p(f));
}

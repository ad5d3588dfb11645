/**
 * `tendril hubble observe`'s flags, read the way `hubble observe` reads them
 * (cilium/hubble cmd/observe/flow_filter.go): filters are built as a `left`
 * and a `right` FlowFilter; `--from-*`/`--to-*` and the common flags
 * (--verdict, --protocol, ...) go into both, the "either side" flags (--pod,
 * -n, --label, --ip, --port, --identity, --cluster) put the source form in
 * `left` and the destination form in `right`, so the whitelist ORs the two.
 * `--not` sends the next filter flag to the blacklist instead. Every value is
 * checked here, and a bad one is rejected naming its flag.
 */
import { TendrilError } from '../util/errors.js';
import { parseDuration } from '../util/duration.js';
import { DropReason, MonitorMessageType, TrafficDirection, Verdict } from '../observe/flow.js';
import { FILTER_PROTOCOLS, parsePort, type FlowFilter } from '../observe/filter.js';
import type { GetFlowsRequest } from '../observe/grpc.js';
import { timestampFromMs } from '../observe/grpc.js';

/** Output formats of `hubble observe -o`. */
export const OUTPUT_FORMATS = ['compact', 'dict', 'json', 'jsonpb', 'table'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** What the flags say. */
export interface ObserveArgs {
  request: GetFlowsRequest;
  output: OutputFormat;
  printNodeName: boolean;
  /** --server: an observer address instead of the cluster's relay. */
  server?: string;
  context?: string;
  /** --tls-ca-cert-files, --tls-client-cert-file, --tls-client-key-file: mutual TLS to --server. */
  tls?: TLSFlags;
}

/** The TLS flags of `hubble observe`/`status` (Hubble's names), for a node's :4244 or a relay's :4245. */
export interface TLSFlags {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/**
 * Checks that the three TLS flags come together and with --server.
 * @throws FlagError naming the missing flag.
 */
export function tlsFlags(
  t: { ca?: string; cert?: string; key?: string },
  server: string | undefined,
): TLSFlags | undefined {
  if (!t.ca && !t.cert && !t.key) return undefined;
  const missing = [
    ['--tls-ca-cert-files', t.ca],
    ['--tls-client-cert-file', t.cert],
    ['--tls-client-key-file', t.key],
  ].find(([, v]) => !v);
  if (missing)
    throw new FlagError(
      missing[0]!,
      'missing: the TLS flags go together',
      'give the CA, a client certificate it signed and its key (the node certificate files of a lab: nodes/<node>/hubble-tls/)',
    );
  if (!server)
    throw new FlagError(
      '--tls-ca-cert-files',
      'TLS needs --server HOST:PORT',
      "the context's relay is reached on its Unix socket, without TLS",
    );
  return { caFile: t.ca!, certFile: t.cert!, keyFile: t.key! };
}

/** A flag with a bad value (exit status 1, message names the flag). */
export class FlagError extends TendrilError {
  constructor(flag: string, message: string, hint?: string) {
    super('CLI_BAD_FLAG', `${flag}: ${message}`, hint ? { hint } : {});
    this.name = 'FlagError';
  }
}

/** Hubble's event type names for -t/--type. */
export const EVENT_TYPES: Record<string, number> = {
  drop: MonitorMessageType.DROP,
  debug: MonitorMessageType.DEBUG,
  capture: MonitorMessageType.CAPTURE,
  trace: MonitorMessageType.TRACE,
  'policy-verdict': MonitorMessageType.POLICY_VERDICT,
  'trace-sock': MonitorMessageType.TRACE_SOCK,
};

/** Reserved identities --identity accepts by name. */
const RESERVED_IDENTITIES: Record<string, number> = {
  host: 1,
  world: 2,
  unmanaged: 3,
  health: 4,
  init: 5,
  'remote-node': 6,
  'kube-apiserver': 7,
  ingress: 8,
};

type Update = (f: FlowFilter) => void;

class Tracker {
  left: FlowFilter | undefined;
  right: FlowFilter | undefined;
  applyLeft(u: Update): void {
    u((this.left ??= {}));
  }
  applyRight(u: Update): void {
    u((this.right ??= {}));
  }
  apply(u: Update): void {
    this.applyLeft(u);
    this.applyRight(u);
  }
  filters(): FlowFilter[] {
    const out = [this.left, this.right].filter((f): f is FlowFilter => !!f);
    if (out.length === 2 && JSON.stringify(out[0]) === JSON.stringify(out[1])) return [out[0]!];
    return out;
  }
}

const add =
  <K extends keyof FlowFilter>(key: K, value: NonNullable<FlowFilter[K]>[number]): Update =>
  (f) => {
    (f[key] as unknown[] | undefined) ??= [];
    (f[key] as unknown[]).push(value);
  };

const SIDE_KEYS = {
  pod: ['sourcePod', 'destinationPod'],
  label: ['sourceLabel', 'destinationLabel'],
  ip: ['sourceIp', 'destinationIp'],
  port: ['sourcePort', 'destinationPort'],
  identity: ['sourceIdentity', 'destinationIdentity'],
  cluster: ['sourceClusterName', 'destinationClusterName'],
  service: ['sourceService', 'destinationService'],
  fqdn: ['sourceFqdn', 'destinationFqdn'],
} as const;

/** Parses --since/--until: a duration ago, or an RFC 3339 time. */
export function parseTimeFlag(flag: string, v: string, now = Date.now()): number {
  try {
    return now - parseDuration(v, { what: flag });
  } catch {
    if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(v)) {
      const t = Date.parse(v);
      if (!Number.isNaN(t)) return t;
    }
    throw new FlagError(
      flag,
      `invalid time "${v}"`,
      'use a duration ago (30s, 5m, 1h) or an RFC 3339 time (2026-12-06T12:00:00Z)',
    );
  }
}

function positiveInt(flag: string, v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1)
    throw new FlagError(flag, `"${v}" is not a positive number`, `e.g. ${flag} 20`);
  return Number(v);
}

function enumValue(flag: string, v: string, table: Record<string, number>): string {
  const name = v.toUpperCase().replace(/-/g, '_');
  if (!(name in table) || table[name] === 0)
    throw new FlagError(
      flag,
      `unknown value "${v}"`,
      `use one of ${Object.keys(table)
        .filter((k) => table[k] !== 0)
        .join(', ')}`,
    );
  return name;
}

/** Boolean flags of observe (take no value). */
const BOOL_FLAGS = new Set([
  '-f',
  '--follow',
  '-A',
  '--all-namespaces',
  '--print-node-name',
  '--not',
]);

/** Every flag observe takes (for the help text and unknown-flag errors). */
export const OBSERVE_FLAGS = [
  '-f, --follow',
  '--last N',
  '--first N',
  '--since TIME',
  '--until TIME',
  '--pod [NS/]NAME',
  '--from-pod [NS/]NAME',
  '--to-pod [NS/]NAME',
  '-n, --namespace NS',
  '--from-namespace NS',
  '--to-namespace NS',
  '-A, --all-namespaces',
  '-l, --label SELECTOR',
  '--from-label SELECTOR',
  '--to-label SELECTOR',
  '--identity ID',
  '--from-identity ID',
  '--to-identity ID',
  '--ip IP|CIDR',
  '--from-ip IP|CIDR',
  '--to-ip IP|CIDR',
  '--port PORT',
  '--from-port PORT',
  '--to-port PORT',
  '--cluster NAME',
  '--from-cluster NAME',
  '--to-cluster NAME',
  '--service [NS/]NAME',
  '--from-service [NS/]NAME',
  '--to-service [NS/]NAME',
  '--fqdn NAME',
  '--from-fqdn NAME',
  '--to-fqdn NAME',
  '--node-name PATTERN',
  '--verdict VERDICT',
  '--drop-reason-desc REASON',
  '--protocol PROTO',
  '--traffic-direction ingress|egress',
  '-t, --type TYPE[:SUBTYPE]',
  '--not',
  '-o, --output compact|dict|json|jsonpb|table',
  '--print-node-name',
  '--server ADDRESS',
  '--tls-ca-cert-files FILE',
  '--tls-client-cert-file FILE',
  '--tls-client-key-file FILE',
];

const KNOWN_FLAGS = new Set([
  ...OBSERVE_FLAGS.flatMap((f) =>
    f
      .split(' ')[0]!
      .split(',')
      .map((x) => x.trim())
      .concat(f.includes(', ') ? [f.split(', ')[1]!.split(' ')[0]!] : []),
  ),
  '--context',
]);

/**
 * Reads observe's arguments.
 * @throws FlagError naming the flag and the accepted values.
 */
export function parseObserveArgs(argv: readonly string[], now = Date.now()): ObserveArgs {
  const white = new Tracker();
  const black = new Tracker();
  let negate = false;
  let output: OutputFormat = 'compact';
  let printNodeName = false;
  let follow = false;
  let last: number | undefined;
  let first: number | undefined;
  let since: number | undefined;
  let until: number | undefined;
  let namespace: string | undefined;
  let allNamespaces = false;
  let server: string | undefined;
  let context: string | undefined;
  const tlsArgs: { ca?: string; cert?: string; key?: string } = {};
  const pending: Array<() => void> = [];

  const args = [...argv];
  for (let i = 0; i < args.length; i++) {
    let flag = args[i]!;
    let value: string | undefined;
    const eq = flag.startsWith('--') ? flag.indexOf('=') : -1;
    if (eq > 0) {
      value = flag.slice(eq + 1);
      flag = flag.slice(0, eq);
    }
    if (!flag.startsWith('-'))
      throw new FlagError(flag, 'unexpected argument', 'observe takes only flags; see --help');
    const need = (): string => {
      if (value !== undefined) return value;
      const v = args[++i];
      if (v === undefined) throw new FlagError(flag, 'needs a value');
      return v;
    };
    if (!KNOWN_FLAGS.has(flag))
      throw new FlagError(flag, 'unknown flag', 'see `tendril hubble observe --help`');
    if (BOOL_FLAGS.has(flag)) {
      if (flag === '-f' || flag === '--follow') follow = true;
      else if (flag === '-A' || flag === '--all-namespaces') allNamespaces = true;
      else if (flag === '--print-node-name') printNodeName = true;
      else negate = true;
      continue;
    }
    const v = need();
    const t = negate ? black : white;
    const filterFlag = (fn: () => void) => {
      fn();
      negate = false;
    };
    const sideFlag = (
      kind: keyof typeof SIDE_KEYS,
      dir: 'from' | 'to' | 'either',
      val: unknown,
    ) => {
      const [s, d] = SIDE_KEYS[kind];
      filterFlag(() => {
        if (dir === 'from') t.apply(add(s, val as never));
        else if (dir === 'to') t.apply(add(d, val as never));
        else {
          t.applyLeft(add(s, val as never));
          t.applyRight(add(d, val as never));
        }
      });
    };
    const m = /^--(from|to)-(pod|namespace|label|identity|ip|port|cluster|service|fqdn)$/.exec(
      flag,
    );
    const dir = (m?.[1] ?? 'either') as 'from' | 'to' | 'either';
    const kind =
      m?.[2] ??
      {
        '--pod': 'pod',
        '-n': 'namespace',
        '--namespace': 'namespace',
        '-l': 'label',
        '--label': 'label',
        '--identity': 'identity',
        '--ip': 'ip',
        '--port': 'port',
        '--cluster': 'cluster',
        '--service': 'service',
        '--fqdn': 'fqdn',
      }[flag];
    switch (kind) {
      case 'pod': {
        // the namespace default (-n or "default") is known only after all flags
        const neg = negate;
        negate = false;
        pending.push(() => {
          const val = v.includes('/') ? v : `${namespace ?? 'default'}/${v}`;
          const saved = negate;
          negate = neg;
          sideFlag('pod', dir, val);
          negate = saved;
        });
        continue;
      }
      case 'namespace':
        if (!v || v.includes('/'))
          throw new FlagError(
            flag,
            `invalid namespace "${v}"`,
            'a namespace is a name like default',
          );
        if (dir === 'either') namespace = v;
        sideFlag('pod', dir, `${v}/`);
        continue;
      case 'label':
      case 'ip':
      case 'cluster':
      case 'service':
      case 'fqdn':
        sideFlag(kind, dir, v);
        continue;
      case 'port':
        parsePort(v, flag);
        sideFlag('port', dir, v);
        continue;
      case 'identity': {
        const id = /^\d+$/.test(v) ? Number(v) : RESERVED_IDENTITIES[v];
        if (id === undefined || id > 0xffffffff)
          throw new FlagError(
            flag,
            `invalid identity "${v}"`,
            `a number or one of ${Object.keys(RESERVED_IDENTITIES).join(', ')}`,
          );
        sideFlag('identity', dir, id);
        continue;
      }
    }
    switch (flag) {
      case '--last':
        last = positiveInt(flag, v);
        break;
      case '--first':
        first = positiveInt(flag, v);
        break;
      case '--since':
        since = parseTimeFlag(flag, v, now);
        break;
      case '--until':
        until = parseTimeFlag(flag, v, now);
        break;
      case '--node-name':
        filterFlag(() => t.apply(add('nodeName', v)));
        break;
      case '--verdict':
        filterFlag(() => t.apply(add('verdict', enumValue(flag, v, Verdict) as never)));
        break;
      case '--drop-reason-desc':
        filterFlag(() => t.apply(add('dropReasonDesc', enumValue(flag, v, DropReason) as never)));
        break;
      case '--traffic-direction':
        filterFlag(() =>
          t.apply(add('trafficDirection', enumValue(flag, v, TrafficDirection) as never)),
        );
        break;
      case '--protocol': {
        const p = v.toLowerCase();
        if (!(FILTER_PROTOCOLS as readonly string[]).includes(p))
          throw new FlagError(
            flag,
            `unknown protocol "${v}"`,
            `use one of ${FILTER_PROTOCOLS.join(', ')}`,
          );
        filterFlag(() => t.apply(add('protocol', p)));
        break;
      }
      case '-t':
      case '--type': {
        const [name, sub] = v.split(':');
        const type = EVENT_TYPES[name!];
        if (type === undefined)
          throw new FlagError(
            flag,
            `unknown event type "${v}"`,
            `use one of ${Object.keys(EVENT_TYPES).join(', ')}`,
          );
        if (sub !== undefined && !/^\d+$/.test(sub))
          throw new FlagError(
            flag,
            `invalid sub type "${sub}"`,
            'write TYPE:NUMBER, e.g. drop:133',
          );
        filterFlag(() =>
          t.apply(
            add('eventType', {
              type,
              ...(sub !== undefined ? { matchSubType: true, subType: Number(sub) } : {}),
            }),
          ),
        );
        break;
      }
      case '-o':
      case '--output':
        if (!(OUTPUT_FORMATS as readonly string[]).includes(v))
          throw new FlagError(
            flag,
            `unknown output format "${v}"`,
            `use one of ${OUTPUT_FORMATS.join(', ')}`,
          );
        output = v as OutputFormat;
        break;
      case '--server':
        server = v;
        break;
      case '--tls-ca-cert-files':
        tlsArgs.ca = v;
        break;
      case '--tls-client-cert-file':
        tlsArgs.cert = v;
        break;
      case '--tls-client-key-file':
        tlsArgs.key = v;
        break;
      case '--context':
        context = v;
        break;
      default:
        throw new FlagError(flag, 'unknown flag', 'see `tendril hubble observe --help`');
    }
  }
  if (negate)
    throw new FlagError(
      '--not',
      'must be followed by a filter flag',
      'e.g. --not --verdict DROPPED',
    );
  if (allNamespaces && namespace)
    throw new FlagError('-A', 'cannot be combined with -n/--namespace');
  if (last !== undefined && first !== undefined)
    throw new FlagError('--first', 'cannot be combined with --last');
  if (first !== undefined && follow)
    throw new FlagError('--first', 'cannot be combined with --follow');
  if (since !== undefined && until !== undefined && until < since)
    throw new FlagError('--until', 'is before --since');
  for (const p of pending) p();
  const tls = tlsFlags(tlsArgs, server);
  const number = last ?? first ?? (follow || since !== undefined || until !== undefined ? 0 : 20);
  const request: GetFlowsRequest = {
    ...(number ? { number } : {}),
    ...(first !== undefined ? { first: true } : {}),
    ...(follow ? { follow: true } : {}),
    ...(since !== undefined ? { since: timestampFromMs(since) } : {}),
    ...(until !== undefined ? { until: timestampFromMs(until) } : {}),
    whitelist: white.filters(),
    blacklist: black.filters(),
  };
  return {
    request,
    output,
    printNodeName,
    ...(server ? { server } : {}),
    ...(context ? { context } : {}),
    ...(tls ? { tls } : {}),
  };
}

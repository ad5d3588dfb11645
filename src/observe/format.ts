/**
 * Prints GetFlows responses the way `hubble observe -o ...` does:
 *
 *   compact  Dec  6 12:00:00.123: default/client-abc:43210 (ID:12345) -> default/echo-xyz:8080 (ID:23456) to-endpoint FORWARDED (TCP Flags: SYN)
 *   dict     one block of `KEY: value` lines per flow
 *   table    aligned columns TIMESTAMP SOURCE DESTINATION TYPE VERDICT SUMMARY
 *   json     one JSON object per flow: {"flow": ..., "node_name": ..., "time": ...}
 *   jsonpb   one JSON object per response (flows, node_status, lost_events)
 *
 * JSON follows protobuf's JSON mapping (camelCase fields, enum names,
 * RFC 3339 times).
 */
import type { Flow, FlowEndpoint } from './flow.js';
import type { GetFlowsResponse, WireTimestamp } from './grpc.js';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const p2 = (n: number) => String(n).padStart(2, '0');

/** Go's `Jan _2 15:04:05.000` in UTC (hubble's compact time). */
export function formatStamp(t: WireTimestamp): string {
  const d = new Date(t.seconds * 1000);
  const ms = String(Math.floor(t.nanos / 1e6)).padStart(3, '0');
  return `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}.${ms}`;
}

/** RFC 3339 with nanoseconds (protobuf JSON's Timestamp). */
export function rfc3339(t: WireTimestamp): string {
  const iso = new Date(t.seconds * 1000).toISOString().slice(0, 19);
  return `${iso}.${String(t.nanos).padStart(9, '0')}Z`;
}

function port(f: Flow, side: 'source' | 'destination'): number | undefined {
  const l4 = f.l4?.TCP ?? f.l4?.UDP;
  if (!l4) return undefined;
  return side === 'source' ? l4.sourcePort : l4.destinationPort;
}

/** One side as hubble prints it: `ns/pod:port (ID:n)`, or `ip:port (world)`. */
export function formatEndpoint(f: Flow, side: 'source' | 'destination'): string {
  const ep: FlowEndpoint | undefined = f[side];
  const ip = f.IP?.[side] ?? '';
  const pt = port(f, side);
  const host = ep?.podName ? `${ep.namespace}/${ep.podName}` : ip.includes(':') ? `[${ip}]` : ip;
  const hostPort = pt !== undefined ? `${host}:${pt}` : host;
  const label = ep?.labels.find((l) => l.startsWith('reserved:'));
  const id = ep?.identity
    ? label && !ep.podName
      ? `(${label.slice('reserved:'.length)})`
      : `(ID:${ep.identity})`
    : '';
  return id ? `${hostPort} ${id}` : hostPort;
}

/** TYPE column: observation point, drop reason, policy verdict or socket translation point. */
export function formatType(f: Flow): string {
  switch (f.eventType.type) {
    case 1:
      return humanize(f.dropReasonDesc ?? 'DROP_REASON_UNKNOWN');
    case 9:
      return `policy-verdict:${f.l4 ? 'L3-L4' : 'L3-Only'} ${f.trafficDirection}`;
    case 12:
      return (f.sockXlatePoint ?? 'SOCK_XLATE_POINT_UNKNOWN')
        .replace('SOCK_XLATE_POINT_', '')
        .replace('DIRECTION_', 'xlate-')
        .toLowerCase()
        .replace(/_/g, '-');
    default:
      return f.traceObservationPoint
        ? f.traceObservationPoint.toLowerCase().replace(/_/g, '-')
        : 'trace';
  }
}

function humanize(reason: string): string {
  const s = reason.toLowerCase().replace(/_/g, ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** VERDICT column (policy verdicts say ALLOWED / DENIED like hubble). */
export function formatVerdict(f: Flow): string {
  if (f.eventType.type === 9)
    return f.verdict === 'FORWARDED' ? 'ALLOWED' : f.verdict === 'DROPPED' ? 'DENIED' : f.verdict;
  return f.verdict;
}

/** SUMMARY: the flow's Summary, else TCP flags / protocol. */
export function formatSummary(f: Flow): string {
  if (f.Summary) return f.Summary;
  const tcp = f.l4?.TCP;
  if (tcp) {
    const flags = Object.entries(tcp.flags ?? {})
      .filter(([, v]) => v)
      .map(([k]) => k);
    return flags.length ? `TCP Flags: ${flags.join(', ')}` : 'TCP';
  }
  if (f.l4?.UDP) return 'UDP';
  if (f.l4?.ICMPv4) return `ICMPv4 ${f.l4.ICMPv4.type}`;
  if (f.l4?.ICMPv6) return `ICMPv6 ${f.l4.ICMPv6.type}`;
  return '';
}

/** Options of the printers. */
export interface FormatOptions {
  printNodeName?: boolean;
}

/** A flow as one compact line (no newline). */
export function formatCompact(r: GetFlowsResponse, o: FormatOptions = {}): string {
  const f = r.flow!;
  const node = o.printNodeName ? ` [${r.nodeName || f.nodeName}]` : '';
  const src = formatEndpoint(f, 'source');
  const dst = formatEndpoint(f, 'destination');
  const arrow = f.isReply ? `${dst} <- ${src}` : `${src} -> ${dst}`;
  const sum = formatSummary(f);
  return `${formatStamp(f.time)}${node}: ${arrow} ${formatType(f)} ${formatVerdict(f)}${sum ? ` (${sum})` : ''}`;
}

/** A flow as hubble's dict block (no trailing newline). */
export function formatDict(r: GetFlowsResponse, o: FormatOptions = {}): string {
  const f = r.flow!;
  const rows: Array<[string, string]> = [
    ['TIMESTAMP', formatStamp(f.time)],
    ...(o.printNodeName ? [['NODE', r.nodeName || f.nodeName] as [string, string]] : []),
    ['SOURCE', formatEndpoint(f, 'source')],
    ['DESTINATION', formatEndpoint(f, 'destination')],
    ['TYPE', formatType(f)],
    ['VERDICT', formatVerdict(f)],
    ['SUMMARY', formatSummary(f)],
  ];
  return rows.map(([k, v]) => `${k.padStart(11)}: ${v}`).join('\n');
}

/** Rows of a table (header first); the caller aligns them with {@link alignTable}. */
export function tableRow(r: GetFlowsResponse, o: FormatOptions = {}): string[] {
  const f = r.flow!;
  return [
    formatStamp(f.time),
    ...(o.printNodeName ? [r.nodeName || f.nodeName] : []),
    formatEndpoint(f, 'source'),
    formatEndpoint(f, 'destination'),
    formatType(f),
    formatVerdict(f),
    formatSummary(f),
  ];
}

/** The table header. */
export function tableHeader(o: FormatOptions = {}): string[] {
  return [
    'TIMESTAMP',
    ...(o.printNodeName ? ['NODE'] : []),
    'SOURCE',
    'DESTINATION',
    'TYPE',
    'VERDICT',
    'SUMMARY',
  ];
}

/** Aligns rows into columns separated by 3 spaces (last column unpadded). */
export function alignTable(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('   '))
    .join('\n');
}

function flowJSON(f: Flow): Record<string, unknown> {
  return { ...f, time: rfc3339(f.time) };
}

/** A response in protobuf's JSON mapping (jsonpb). */
export function formatJsonPb(r: GetFlowsResponse): string {
  const o: Record<string, unknown> = {};
  if (r.flow) o['flow'] = flowJSON(r.flow);
  if (r.nodeStatus) o['nodeStatus'] = r.nodeStatus;
  if (r.lostEvents)
    o['lostEvents'] = { ...r.lostEvents, numEventsLost: String(r.lostEvents.numEventsLost) };
  o['nodeName'] = r.nodeName;
  if (r.time) o['time'] = rfc3339(r.time);
  return JSON.stringify(o);
}

/** A flow response as hubble's `-o json` line. */
export function formatJson(r: GetFlowsResponse): string {
  return JSON.stringify({
    flow: flowJSON(r.flow!),
    node_name: r.nodeName,
    time: rfc3339(r.time ?? r.flow!.time),
  });
}

/** A lost-events notice as hubble prints it in text formats. */
export function formatLost(r: GetFlowsResponse): string {
  return `EVENTS LOST: ${r.lostEvents!.source} ${r.lostEvents!.numEventsLost}`;
}

/**
 * kubectl-like table columns for each kind. The API server returns them as a
 * `meta.k8s.io/v1 Table` (so real kubectl prints the same columns), and the
 * CLI's `get` prints them. Columns with priority 1 appear with `-o wide`.
 */
import { Document, parse, Scalar, visit } from 'yaml';
import { goJSON, sortKeys } from './jsonpath.js';
import { formatAge, isNodeReady, type KubeObject } from './objects.js';

/** One column of a table. */
export interface Column {
  name: string;
  type: 'string' | 'integer' | 'number' | 'date';
  priority: 0 | 1;
  description: string;
}

/** The printer of one kind. */
export interface Printer {
  columns: Column[];
  cells(o: KubeObject, now: number): Array<string | number>;
}

const col = (name: string, priority: 0 | 1 = 0, type: Column['type'] = 'string'): Column => ({
  name,
  type,
  priority,
  description: name,
});
const NAME = col('Name');
const AGE = col('Age');

const NAME_WIDE = col('Name', 1);

/** The wide columns of a workload (Deployment, DaemonSet): its pod template's containers and images, its selector. */
const WORKLOAD_WIDE = [col('Containers', 1), col('Images', 1), col('Selector', 1)];

/** The fields of a core v1 or events.k8s.io/v1 Event the printer reads. */
interface EventFields {
  involvedObject?: { kind: string; name: string; fieldPath?: string };
  regarding?: { kind: string; name: string; fieldPath?: string };
  lastTimestamp?: string;
  firstTimestamp?: string;
  deprecatedLastTimestamp?: string;
  deprecatedFirstTimestamp?: string;
  eventTime?: string | null;
  type?: string;
  reason?: string;
  message?: string;
  note?: string;
  count?: number;
  deprecatedCount?: number;
  source?: { component?: string; host?: string };
  deprecatedSource?: { component?: string; host?: string };
}

function age(o: KubeObject, now: number): string {
  return formatAge(o.metadata.creationTimestamp, now);
}

function podReady(o: KubeObject): string {
  const containers = (o.spec?.containers ?? []) as unknown[];
  const statuses = (o.status?.containerStatuses ?? []) as Array<{ ready?: boolean }>;
  return `${statuses.filter((s) => s.ready).length}/${containers.length}`;
}

function podStatus(o: KubeObject): string {
  if (o.metadata.deletionTimestamp) return 'Terminating';
  let reason: string = o.status?.reason ?? o.status?.phase ?? 'Unknown';
  const statuses = (o.status?.containerStatuses ?? []) as Array<{
    state?: { waiting?: { reason?: string }; terminated?: { reason?: string; exitCode?: number } };
  }>;
  for (const s of statuses) {
    if (s.state?.waiting?.reason) reason = s.state.waiting.reason;
    else if (s.state?.terminated?.reason) reason = s.state.terminated.reason;
    else if (s.state?.terminated) reason = `ExitCode:${s.state.terminated.exitCode ?? 0}`;
  }
  return reason;
}

/**
 * The RESTARTS cell as kubectl's server-side printer (printPod) renders it:
 * the containers' restart counts summed, and when a restart happened the age
 * of the latest `lastState.terminated.finishedAt`: `1 (5s ago)`.
 */
function restarts(o: KubeObject, now: number): string {
  const statuses = (o.status?.containerStatuses ?? []) as Array<{
    restartCount?: number;
    lastState?: { terminated?: { finishedAt?: string } };
  }>;
  let count = 0;
  let last = 0;
  for (const s of statuses) {
    count += s.restartCount ?? 0;
    const t = Date.parse(s.lastState?.terminated?.finishedAt ?? '');
    if (Number.isFinite(t) && t > last) last = t;
  }
  return count !== 0 && last
    ? `${count} (${formatAge(new Date(last).toISOString(), now)} ago)`
    : String(count);
}

function servicePorts(o: KubeObject): string {
  const ports = (o.spec?.ports ?? []) as Array<{
    port: number;
    nodePort?: number;
    protocol?: string;
  }>;
  if (ports.length === 0) return '<none>';
  return ports
    .map((p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol ?? 'TCP'}`)
    .join(',');
}

function externalIP(o: KubeObject): string {
  const type = o.spec?.type ?? 'ClusterIP';
  const ext = (o.spec?.externalIPs ?? []) as string[];
  if (type === 'ExternalName') return o.spec?.externalName ?? '<none>';
  if (type === 'LoadBalancer') {
    const ing = (
      (o.status?.loadBalancer?.ingress ?? []) as Array<{ ip?: string; hostname?: string }>
    ).map((i) => i.ip ?? i.hostname ?? '');
    const all = [...ing, ...ext].filter(Boolean);
    return all.length ? all.join(',') : '<pending>';
  }
  return ext.length ? ext.join(',') : '<none>';
}

function mapText(m: Record<string, string> | undefined): string {
  const e = Object.entries(m ?? {});
  return e.length ? e.map(([k, v]) => `${k}=${v}`).join(',') : '<none>';
}

/** The cells of WORKLOAD_WIDE for workload O. */
function workloadWide(o: KubeObject): [string, string, string] {
  const cs = (o.spec?.template?.spec?.containers ?? []) as Array<{ name: string; image: string }>;
  return [
    cs.map((c) => c.name).join(','),
    cs.map((c) => c.image).join(','),
    mapText(o.spec?.selector?.matchLabels),
  ];
}

function sliceEndpoints(o: KubeObject): string {
  const addrs = ((o.endpoints ?? []) as Array<{ addresses?: string[] }>).flatMap(
    (e) => e.addresses ?? [],
  );
  if (addrs.length === 0) return '<unset>';
  const shown = addrs.slice(0, 3).join(',');
  return addrs.length > 3 ? `${shown} + ${addrs.length - 3} more...` : shown;
}

function slicePorts(o: KubeObject): string {
  const ports = (o.ports ?? []) as Array<{ port?: number }>;
  if (ports.length === 0) return '<unset>';
  const shown = ports
    .slice(0, 3)
    .map((p) => (p.port === undefined || p.port === null ? '<unset>' : String(p.port)))
    .join(',');
  return ports.length > 3 ? `${shown} + ${ports.length - 3} more...` : shown;
}

function nodeRoles(o: KubeObject): string {
  const roles = Object.keys(o.metadata.labels ?? {})
    .filter((k) => k.startsWith('node-role.kubernetes.io/'))
    .map((k) => k.slice('node-role.kubernetes.io/'.length));
  return roles.length ? roles.sort().join(',') : '<none>';
}

function nodeAddress(o: KubeObject, type: string): string {
  const a = ((o.status?.addresses ?? []) as Array<{ type: string; address: string }>).find(
    (x) => x.type === type,
  );
  return a?.address ?? '<none>';
}

const PRINTERS: Record<string, Printer> = {
  Pod: {
    columns: [
      NAME,
      col('Ready'),
      col('Status'),
      col('Restarts'),
      AGE,
      col('IP', 1),
      col('Node', 1),
      col('Nominated Node', 1),
      col('Readiness Gates', 1),
    ],
    cells: (o, now) => [
      o.metadata.name!,
      podReady(o),
      podStatus(o),
      restarts(o, now),
      age(o, now),
      o.status?.podIP ?? '<none>',
      o.spec?.nodeName ?? '<none>',
      '<none>',
      '<none>',
    ],
  },
  Event: {
    columns: [
      col('Last Seen'),
      col('Type'),
      col('Reason'),
      col('Object'),
      col('Subobject', 1),
      col('Source', 1),
      col('Message'),
      col('First Seen', 1),
      col('Count', 1, 'integer'),
      NAME_WIDE,
    ],
    cells: (o, now) => {
      const e = o as unknown as EventFields;
      const io = e.involvedObject ?? e.regarding ?? { kind: '', name: '' };
      const last = e.lastTimestamp ?? e.deprecatedLastTimestamp ?? e.eventTime ?? undefined;
      const first = e.firstTimestamp ?? e.deprecatedFirstTimestamp ?? e.eventTime ?? undefined;
      const src = e.source ?? e.deprecatedSource ?? {};
      return [
        last ? formatAge(last, now) : '<unknown>',
        e.type ?? '',
        e.reason ?? '',
        `${String(io.kind).toLowerCase()}/${io.name}`,
        io.fieldPath ?? '',
        [src.component, src.host].filter(Boolean).join(', '),
        e.message ?? e.note ?? '',
        first ? formatAge(first, now) : '<unknown>',
        e.count ?? e.deprecatedCount ?? 1,
        o.metadata.name!,
      ];
    },
  },
  Deployment: {
    columns: [
      NAME,
      col('Ready'),
      col('Up-to-date', 0, 'integer'),
      col('Available', 0, 'integer'),
      AGE,
      ...WORKLOAD_WIDE,
    ],
    cells: (o, now) => [
      o.metadata.name!,
      `${o.status?.readyReplicas ?? 0}/${o.spec?.replicas ?? 1}`,
      o.status?.updatedReplicas ?? 0,
      o.status?.availableReplicas ?? 0,
      age(o, now),
      ...workloadWide(o),
    ],
  },
  DaemonSet: {
    columns: [
      NAME,
      col('Desired', 0, 'integer'),
      col('Current', 0, 'integer'),
      col('Ready', 0, 'integer'),
      col('Up-to-date', 0, 'integer'),
      col('Available', 0, 'integer'),
      col('Node Selector'),
      AGE,
      ...WORKLOAD_WIDE,
    ],
    cells: (o, now) => [
      o.metadata.name!,
      o.status?.desiredNumberScheduled ?? 0,
      o.status?.currentNumberScheduled ?? 0,
      o.status?.numberReady ?? 0,
      o.status?.updatedNumberScheduled ?? 0,
      o.status?.numberAvailable ?? 0,
      mapText(o.spec?.template?.spec?.nodeSelector),
      age(o, now),
      ...workloadWide(o),
    ],
  },
  Service: {
    columns: [
      NAME,
      col('Type'),
      col('Cluster-IP'),
      col('External-IP'),
      col('Port(s)'),
      AGE,
      col('Selector', 1),
    ],
    cells: (o, now) => [
      o.metadata.name!,
      o.spec?.type ?? 'ClusterIP',
      o.spec?.clusterIP || '<none>',
      externalIP(o),
      servicePorts(o),
      age(o, now),
      mapText(o.spec?.selector),
    ],
  },
  EndpointSlice: {
    columns: [NAME, col('AddressType'), col('Ports'), col('Endpoints'), AGE],
    cells: (o, now) => [
      o.metadata.name!,
      (o.addressType as string) ?? '',
      slicePorts(o),
      sliceEndpoints(o),
      age(o, now),
    ],
  },
  Namespace: {
    columns: [NAME, col('Status'), AGE],
    cells: (o, now) => [
      o.metadata.name!,
      o.metadata.deletionTimestamp ? 'Terminating' : (o.status?.phase ?? 'Active'),
      age(o, now),
    ],
  },
  Node: {
    columns: [
      NAME,
      col('Status'),
      col('Roles'),
      AGE,
      col('Version'),
      col('Internal-IP', 1),
      col('External-IP', 1),
      col('OS-Image', 1),
      col('Kernel-Version', 1),
      col('Container-Runtime', 1),
    ],
    cells: (o, now) => [
      o.metadata.name!,
      (isNodeReady(o) ? 'Ready' : 'NotReady') +
        (o.spec?.unschedulable ? ',SchedulingDisabled' : ''),
      nodeRoles(o),
      age(o, now),
      o.status?.nodeInfo?.kubeletVersion ?? '',
      nodeAddress(o, 'InternalIP'),
      nodeAddress(o, 'ExternalIP'),
      o.status?.nodeInfo?.osImage ?? '<unknown>',
      o.status?.nodeInfo?.kernelVersion ?? '<unknown>',
      o.status?.nodeInfo?.containerRuntimeVersion ?? '<unknown>',
    ],
  },
  ServiceImport: {
    columns: [NAME, col('Type'), col('IP'), AGE],
    cells: (o, now) => [
      o.metadata.name!,
      o.spec?.type ?? '',
      JSON.stringify(o.spec?.ips ?? []),
      age(o, now),
    ],
  },
  CiliumEndpoint: {
    columns: [
      NAME,
      col('Security Identity', 0, 'integer'),
      col('Endpoint State'),
      col('IPv4'),
      AGE,
    ],
    cells: (o, now) => [
      o.metadata.name!,
      (o.status?.identity?.id as number | undefined) ?? 0,
      o.status?.state ?? '',
      ((o.status?.networking?.addressing ?? []) as Array<{ ipv4?: string }>)
        .map((a) => a.ipv4)
        .filter(Boolean)
        .join(',') || '<none>',
      age(o, now),
    ],
  },
  CiliumIdentity: {
    columns: [NAME, col('Namespace'), AGE],
    cells: (o, now) => [
      o.metadata.name!,
      (o['security-labels'] as Record<string, string> | undefined)?.[
        'k8s:io.kubernetes.pod.namespace'
      ] ?? '',
      age(o, now),
    ],
  },
};

/** kubectl's tabwriter minimum cell width (text plus padding). */
const TAB_MIN_WIDTH = 6;
/** kubectl's tabwriter padding: at least 3 spaces between columns. */
const TAB_PADDING = 3;

const DEFAULT_PRINTER: Printer = {
  columns: [NAME, AGE],
  cells: (o, now) => [o.metadata.name!, age(o, now)],
};

/** The printer for a kind (NAME + AGE for kinds without their own). */
export function printerFor(kind: string): Printer {
  return PRINTERS[kind] ?? DEFAULT_PRINTER;
}

/** Builds a meta.k8s.io/v1 Table for objects of one kind. */
export function toTable(
  kind: string,
  objects: KubeObject[],
  resourceVersion: string,
  includeObject: 'None' | 'Object' | 'Metadata' = 'Metadata',
  now = Date.now(),
): Record<string, unknown> {
  const p = printerFor(kind);
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion },
    columnDefinitions: p.columns.map((c) => ({
      name: c.name,
      type: c.type,
      format: c.name === 'Name' ? 'name' : '',
      description: c.description,
      priority: c.priority,
    })),
    rows: objects.map((o) => ({
      cells: p.cells(o, now),
      object:
        includeObject === 'None'
          ? undefined
          : includeObject === 'Object'
            ? o
            : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata },
    })),
  };
}

/**
 * JSON as kubectl -o json prints it (Go's encoding/json on an unstructured
 * object): map keys sorted, `<`, `>`, `&` escaped as \u003c..., indented by
 * 4 spaces.
 */
export function kubectlJSON(value: unknown): string {
  return goJSON(value, 4);
}

/**
 * YAML as kubectl prints it (sigs.k8s.io/yaml, i.e. go-yaml v2): keys sorted,
 * sequences not indented under their key, no line folding; a string that
 * would read back as something else under YAML 1.1 ("1", "yes", "null",
 * "2026-01-01T00:00:00Z", "") double-quoted, one that cannot be plain for its
 * characters ("x: y") single-quoted, multi-line strings as `|-` blocks.
 */
export function kubectlYAML(value: unknown): string {
  const doc = new Document(sortKeys(value), { version: '1.1' });
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value !== 'string') return;
      const s = node.value;
      if (s === '') {
        node.type = Scalar.QUOTE_DOUBLE;
        return;
      }
      if (s.includes('\n')) return;
      let back: unknown;
      try {
        back = parse(s, { version: '1.1', customTags: ['timestamp'] });
      } catch {
        return; // not plain-safe: the writer quotes it (single quotes)
      }
      if (back !== s && (back === null || typeof back !== 'object' || back instanceof Date))
        node.type = Scalar.QUOTE_DOUBLE;
    },
  });
  return doc.toString({ indentSeq: false, lineWidth: 0, singleQuote: true });
}

/**
 * Renders rows as kubectl does (Go's tabwriter with RememberWidths: minimum
 * width 6, padding 3): columns separated by at least 3 spaces, the last column
 * not padded. One writer keeps its column widths across calls (they only
 * grow), so rows printed later by `get --watch` line up with the first ones.
 */
export class TableWriter {
  private readonly widths: number[] = [];

  /** Renders lines (header and rows alike), each ended by a newline. */
  render(lines: Array<Array<string | number>>): string {
    const text = lines.map((r) => r.map((c) => String(c)));
    for (const r of text)
      r.forEach((c, i) => {
        if (i < r.length - 1)
          this.widths[i] = Math.max(this.widths[i] ?? TAB_MIN_WIDTH - TAB_PADDING, c.length);
      });
    return text
      .map((r) =>
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(this.widths[i]! + TAB_PADDING)))
          .join('')
          .trimEnd(),
      )
      .join('\n')
      .concat(text.length ? '\n' : '');
  }
}

/** Renders a table (headers, then rows) as kubectl does; see TableWriter. */
export function renderTable(
  headers: string[],
  rows: Array<Array<string | number>>,
  options: { noHeaders?: boolean } = {},
): string {
  return new TableWriter().render(options.noHeaders ? rows : [headers, ...rows]);
}

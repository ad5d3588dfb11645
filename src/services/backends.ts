/**
 * A Service's ports and local backends, from the Kubernetes objects:
 * service ports usable by the datapath, target port resolution (numbers and
 * named container ports), EndpointSlices -> backends per service port, and
 * the EndpointSlices a Service's selector calls for (what the Kubernetes
 * EndpointSlice controller does, for the lab's controllers).
 */
import { createHash } from 'node:crypto';
import { isIPv4 } from 'node:net';
import type {
  V1Endpoint,
  V1EndpointSlice,
  V1Pod,
  V1Service,
  V1ServicePort,
} from '@kubernetes/client-node';
import type { L4Protocol } from '../datapath/types.js';
import {
  isGlobalMarkerSlice,
  nsOf,
  SERVICE_NAME_LABEL,
  sliceServiceName,
  type ServiceIssue,
} from './annotations.js';

/** One port of a Service, as the datapath serves it. */
export interface ServicePortSpec {
  /** The port's name ("" when unnamed). */
  name: string;
  port: number;
  protocol: L4Protocol;
  /** As written: a number, a container port name, or undefined (= port). */
  targetPort: number | string | undefined;
}

/** One local backend address for one service port. */
export interface LocalBackend {
  ip: string;
  port: number;
  /** Gets new connections. */
  ready: boolean;
  /** Still serves (e.g. terminating but not yet gone). */
  serving: boolean;
  terminating: boolean;
  nodeName?: string;
}

/** A Service's ClusterIPs (IPv4 only; none for headless and ExternalName services). */
export function serviceClusterIPs(svc: V1Service): string[] {
  if (svc.spec?.type === 'ExternalName') return [];
  const ips = svc.spec?.clusterIPs?.length
    ? svc.spec.clusterIPs
    : svc.spec?.clusterIP
      ? [svc.spec.clusterIP]
      : [];
  return ips.filter((ip) => ipv4Num(ip) !== undefined);
}

/** True for a headless Service (clusterIP None). */
export function isHeadless(svc: V1Service): boolean {
  return svc.spec?.clusterIP === 'None';
}

/**
 * The ports of a Service the datapath can serve (TCP and UDP); others are
 * reported as issues (SCTP, bad numbers, duplicate names).
 */
export function servicePorts(svc: V1Service): { ports: ServicePortSpec[]; issues: ServiceIssue[] } {
  const ns = nsOf(svc);
  const name = svc.metadata?.name ?? '';
  const issues: ServiceIssue[] = [];
  const ports: ServicePortSpec[] = [];
  const seen = new Set<string>();
  for (const p of svc.spec?.ports ?? []) {
    const pname = p.name ?? '';
    const proto = (p.protocol ?? 'TCP').toUpperCase();
    const label = pname ? `port "${pname}"` : `port ${p.port}`;
    if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) {
      issues.push({
        namespace: ns,
        name,
        kind: 'Service',
        code: 'SERVICE_INVALID_PORT',
        message: `${label}: ${JSON.stringify(p.port)} is not a port number (1-65535)`,
      });
      continue;
    }
    if (proto !== 'TCP' && proto !== 'UDP') {
      issues.push({
        namespace: ns,
        name,
        kind: 'Service',
        code: 'SERVICE_UNSUPPORTED_PROTOCOL',
        message: `${label}: protocol ${proto} is not supported (TCP and UDP are); the port is not served`,
      });
      continue;
    }
    const key = `${pname}/${proto}`;
    if (seen.has(key)) {
      issues.push({
        namespace: ns,
        name,
        kind: 'Service',
        code: 'SERVICE_DUPLICATE_PORT',
        message: `${label}/${proto} is listed twice; the second is ignored`,
      });
      continue;
    }
    seen.add(key);
    const tp = p.targetPort as number | string | undefined;
    if (typeof tp === 'number' && (!Number.isInteger(tp) || tp < 1 || tp > 65535)) {
      issues.push({
        namespace: ns,
        name,
        kind: 'Service',
        code: 'SERVICE_INVALID_PORT',
        message: `${label}: targetPort ${tp} is not a port number (1-65535)`,
      });
      continue;
    }
    ports.push({ name: pname, port: p.port, protocol: proto as L4Protocol, targetPort: tp });
  }
  return { ports, issues };
}

/**
 * Resolves a service port's targetPort against a pod's container ports:
 * unset -> the service port; a number (or a string of digits) -> itself;
 * a name -> the container port of that name and protocol. Undefined if the
 * pod has no such named port.
 */
export function resolveTargetPort(
  port: Pick<V1ServicePort, 'port' | 'targetPort' | 'protocol'>,
  pod?: Pick<V1Pod, 'spec'>,
): number | undefined {
  const tp = port.targetPort as number | string | undefined;
  if (tp === undefined || tp === '') return port.port;
  if (typeof tp === 'number') return tp;
  if (/^\d+$/.test(tp)) return Number(tp);
  const proto = (port.protocol ?? 'TCP').toUpperCase();
  for (const c of [...(pod?.spec?.initContainers ?? []), ...(pod?.spec?.containers ?? [])]) {
    for (const cp of c.ports ?? []) {
      if (cp.name === tp && (cp.protocol ?? 'TCP').toUpperCase() === proto) return cp.containerPort;
    }
  }
  return undefined;
}

/** The endpoint's readiness, with Kubernetes' defaults (ready unset = true; serving unset = ready). */
export function endpointConditions(ep: V1Endpoint): {
  ready: boolean;
  serving: boolean;
  terminating: boolean;
} {
  const terminating = ep.conditions?.terminating === true;
  const ready = ep.conditions?.ready !== false && !terminating;
  const serving = ep.conditions?.serving ?? ready;
  return { ready, serving, terminating };
}

/** True if the slice is one of the Service's ordinary slices (same namespace, its name label, not a global marker). */
export function isServiceSlice(svc: V1Service, slice: V1EndpointSlice): boolean {
  return (
    nsOf(slice) === nsOf(svc) &&
    sliceServiceName(slice) === svc.metadata?.name &&
    !isGlobalMarkerSlice(slice) &&
    (slice.addressType ?? 'IPv4') === 'IPv4'
  );
}

/**
 * The local backends of each service port, from the Service's ordinary
 * EndpointSlices (slice ports are matched to service ports by name and
 * protocol; the seed's global marker slice is never read). Sorted by IP, then
 * port; an address listed twice keeps its readiest entry.
 */
export function localBackends(
  svc: V1Service,
  slices: readonly V1EndpointSlice[],
  ports?: readonly ServicePortSpec[],
): Map<string, LocalBackend[]> {
  const specs = ports ?? servicePorts(svc).ports;
  const out = new Map<string, LocalBackend[]>();
  for (const sp of specs) {
    const byAddr = new Map<string, LocalBackend>();
    for (const slice of slices) {
      if (!isServiceSlice(svc, slice)) continue;
      const slicePorts = slice.ports ?? [];
      for (const p of slicePorts) {
        if ((p.name ?? '') !== sp.name || (p.protocol ?? 'TCP').toUpperCase() !== sp.protocol)
          continue;
        const port =
          p.port ??
          (typeof sp.targetPort === 'number'
            ? sp.targetPort
            : sp.targetPort === undefined
              ? sp.port
              : undefined);
        if (port === undefined) continue;
        for (const ep of slice.endpoints ?? []) {
          const c = endpointConditions(ep);
          for (const ip of ep.addresses ?? []) {
            if (ipv4Num(ip) === undefined) continue;
            const b: LocalBackend = { ip, port, ...c };
            if (ep.nodeName) b.nodeName = ep.nodeName;
            const k = `${ip}:${port}`;
            const prev = byAddr.get(k);
            if (!prev || (b.ready && !prev.ready) || (b.serving && !prev.serving)) byAddr.set(k, b);
          }
        }
      }
    }
    out.set(
      portKey(sp),
      [...byAddr.values()].sort((a, b) => compareIP(a.ip, b.ip) || a.port - b.port),
    );
  }
  return out;
}

/** The key of a service port in maps: "name/PROTOCOL". */
export function portKey(p: { name: string; protocol: string }): string {
  return `${p.name}/${p.protocol.toUpperCase()}`;
}

/**
 * The EndpointSlices a Service's selector calls for, like Kubernetes'
 * EndpointSlice controller: one slice per distinct resolved port set (named
 * target ports may resolve differently per pod), at most `maxEndpoints`
 * endpoints each. Pods without an IP, or whose named port is missing, are
 * left out; terminating pods are listed not ready. Services without a
 * selector get none (their slices are managed by someone else). Names are
 * deterministic: `<service>-<hash of the port set>[-<n>]`.
 */
export function endpointSlicesForService(
  svc: V1Service,
  pods: readonly V1Pod[],
  options: { maxEndpoints?: number } = {},
): V1EndpointSlice[] {
  const selector = svc.spec?.selector;
  if (!selector || Object.keys(selector).length === 0) return [];
  const ns = nsOf(svc);
  const name = svc.metadata?.name ?? '';
  const max = options.maxEndpoints ?? 100;
  const svcPorts = (svc.spec?.ports ?? []).filter((p) =>
    ['TCP', 'UDP', 'SCTP'].includes((p.protocol ?? 'TCP').toUpperCase()),
  );
  const groups = new Map<
    string,
    { ports: { name: string; port: number; protocol: string }[]; endpoints: V1Endpoint[] }
  >();
  const selected = pods
    .filter(
      (p) =>
        nsOf(p) === ns &&
        p.status?.podIP &&
        isIPv4(p.status.podIP) &&
        Object.entries(selector).every(([k, v]) => p.metadata?.labels?.[k] === v),
    )
    .filter((p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed')
    .sort((a, b) => compareIP(a.status!.podIP!, b.status!.podIP!));
  for (const pod of selected) {
    const ports: { name: string; port: number; protocol: string }[] = [];
    for (const sp of svcPorts) {
      const port = resolveTargetPort(sp, pod);
      if (port !== undefined)
        ports.push({ name: sp.name ?? '', port, protocol: (sp.protocol ?? 'TCP').toUpperCase() });
    }
    if (svcPorts.length > 0 && ports.length === 0) continue;
    const key = JSON.stringify(ports);
    const g = groups.get(key) ?? { ports, endpoints: [] };
    const terminating =
      pod.metadata?.deletionTimestamp !== undefined && pod.metadata.deletionTimestamp !== null;
    const podReady =
      pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ??
      pod.status?.phase === 'Running';
    const ready = (podReady || svc.spec?.publishNotReadyAddresses === true) && !terminating;
    const ep: V1Endpoint = {
      addresses: [pod.status!.podIP!],
      conditions: { ready, serving: podReady, terminating },
    };
    if (pod.spec?.nodeName) ep.nodeName = pod.spec.nodeName;
    if (pod.metadata?.name)
      ep.targetRef = {
        kind: 'Pod',
        namespace: ns,
        name: pod.metadata.name,
        ...(pod.metadata.uid ? { uid: pod.metadata.uid } : {}),
      };
    g.endpoints.push(ep);
    groups.set(key, g);
  }
  const out: V1EndpointSlice[] = [];
  for (const [key, g] of [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const hash = createHash('sha256').update(key).digest('hex').slice(0, 5);
    for (let i = 0; i * max < g.endpoints.length || (i === 0 && g.endpoints.length === 0); i++) {
      out.push({
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: {
          name: `${name}-${hash}${i > 0 ? `-${i}` : ''}`,
          namespace: ns,
          labels: {
            [SERVICE_NAME_LABEL]: name,
            'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
          },
        },
        addressType: 'IPv4',
        ports: g.ports.map((p) => ({ name: p.name, port: p.port, protocol: p.protocol })),
        endpoints: g.endpoints.slice(i * max, (i + 1) * max),
      });
    }
  }
  if (out.length === 0) {
    // No pod selected: one empty slice with the numeric ports, as Kubernetes keeps.
    out.push({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: `${name}-empty`,
        namespace: ns,
        labels: {
          [SERVICE_NAME_LABEL]: name,
          'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
        },
      },
      addressType: 'IPv4',
      ports: [],
      endpoints: [],
    });
  }
  return out;
}

/** Orders IPv4 addresses numerically (others after, as strings). */
export function compareIP(a: string, b: string): number {
  const na = ipv4Num(a);
  const nb = ipv4Num(b);
  if (na !== undefined && nb !== undefined) return na - nb;
  if (na !== undefined) return -1;
  if (nb !== undefined) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The address as a number, or undefined if it is not dotted-quad IPv4 (hand-parsed: this is on hot sort paths). */
export function ipv4Num(ip: string): number | undefined {
  let n = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || ++dots > 3) return undefined;
      n = n * 256 + octet;
      octet = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if ((digits > 0 && octet === 0) || ++digits > 3) return undefined; // no leading zeros
      octet = octet * 10 + (c - 48);
      if (octet > 255) return undefined;
    } else {
      return undefined;
    }
  }
  if (dots !== 3 || digits === 0) return undefined;
  return n * 256 + octet;
}

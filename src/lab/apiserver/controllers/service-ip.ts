/**
 * ClusterIP and NodePort allocation for Services, run inside the write path
 * (as the Kubernetes API server's service REST storage does), so an invalid or
 * taken address is refused at create time with a 422 naming the field.
 *
 * Reserved addresses of the service CIDR:
 *  - the 1st (10.96.0.1 by default) for the `kubernetes` Service in `default`;
 *  - the 10th (10.96.0.10) for cluster DNS: given only to a Service that asks
 *    for it explicitly (spec.clusterIP), to `kube-dns` in `kube-system`, or to a
 *    Service annotated `tendril.io/reserved-dns: "true"`.
 * Every other Service gets a free address at random. Allocations are rebuilt
 * from the stored Services at start, so they persist with the Services.
 */
import { isPlainObject } from '../../../k8s/mergepatch.js';
import type { KubeObject } from '../../../k8s/objects.js';
import { infoByKind } from '../../../k8s/resources.js';
import { TendrilError } from '../../../util/errors.js';
import { cidrSize, formatIPv4, parseCIDR, tryParseIPv4, type CIDR4 } from '../../../util/ipv4.js';
import { Registry } from '../registry.js';

/** Annotation asking for the cluster DNS address. */
export const RESERVED_DNS_ANNOTATION = 'tendril.io/reserved-dns';

/** NodePort range, as Kubernetes' default. */
export const NODE_PORT_RANGE: [number, number] = [30000, 32767];

/** A parsed service CIDR: its text, first address and size. */
export interface Ipv4Range {
  cidr: string;
  base: number;
  size: number;
}

/**
 * Parses an IPv4 service CIDR (prefix length 8..30).
 * @throws TendrilError `SERVICE_INVALID_CIDR`.
 */
export function parseServiceCIDR(cidr: string): Ipv4Range {
  let c: CIDR4;
  try {
    c = parseCIDR(cidr, 'service CIDR', { minBits: 8, maxBits: 30 });
  } catch (err) {
    const e = err as TendrilError;
    const hostBits = /host bits/.test(e.message);
    throw new TendrilError(
      'SERVICE_INVALID_CIDR',
      `invalid service CIDR "${cidr}"${hostBits ? ': host bits are set' : ''}`,
      {
        hint: hostBits
          ? e.hint
          : 'use an IPv4 CIDR with a prefix length between 8 and 30, e.g. 10.96.0.0/16',
        cause: err,
      },
    );
  }
  return { cidr, base: c.base, size: cidrSize(c) };
}

/** Allocates ClusterIPs and NodePorts for Services; plug into a Registry with `attach`. */
export class ServiceAllocator {
  private readonly used = new Map<number, string>();
  private readonly nodePorts = new Map<number, string>();
  readonly range: Ipv4Range;

  constructor(serviceCIDR: string) {
    this.range = parseServiceCIDR(serviceCIDR);
  }

  /** The cluster DNS address (10th of the range). */
  dnsAddress(): string {
    return formatIPv4(this.range.base + 10);
  }

  /** The `kubernetes` Service address (1st of the range). */
  kubernetesAddress(): string {
    return formatIPv4(this.range.base + 1);
  }

  /** Rebuilds allocations from stored Services and hooks into the Service write path. */
  attach(registry: Registry): void {
    const info = infoByKind('Service');
    for (const svc of registry.scan(info)) this.remember(svc);
    // The hooks only choose and check addresses; what is taken is learnt from the
    // stored Services' events, so a dry run or a failed write reserves nothing.
    registry.watch(info, { resourceVersion: String(registry.currentRevision()) }, (ev) => {
      if (ev.type === 'DELETED') return this.release(ev.object);
      if (ev.old) this.release(ev.old);
      this.remember(ev.object);
    });
    registry.addHooks('Service', {
      beforeCreate: (obj) => this.allocate(obj),
      beforeUpdate: (obj, old) => this.reallocate(obj, old),
    });
  }

  private owner(o: KubeObject): string {
    return `${o.metadata.namespace}/${o.metadata.name}`;
  }

  private remember(svc: KubeObject): void {
    const ip = tryParseIPv4(svc.spec?.clusterIP ?? '') ?? NaN;
    if (!Number.isNaN(ip)) this.used.set(ip, this.owner(svc));
    for (const p of (svc.spec?.ports ?? []) as Array<{ nodePort?: number }>)
      if (p.nodePort) this.nodePorts.set(p.nodePort, this.owner(svc));
  }

  private release(svc: KubeObject): void {
    const owner = this.owner(svc);
    const ip = tryParseIPv4(svc.spec?.clusterIP ?? '') ?? NaN;
    if (this.used.get(ip) === owner) this.used.delete(ip);
    for (const p of (svc.spec?.ports ?? []) as Array<{ nodePort?: number }>)
      if (p.nodePort && this.nodePorts.get(p.nodePort) === owner) this.nodePorts.delete(p.nodePort);
  }

  private wantsDNS(svc: KubeObject): boolean {
    return (
      (svc.metadata.namespace === 'kube-system' && svc.metadata.name === 'kube-dns') ||
      svc.metadata.annotations?.[RESERVED_DNS_ANNOTATION] === 'true'
    );
  }

  private allocate(svc: KubeObject): void {
    const spec = svc.spec;
    if (!isPlainObject(spec)) return;
    const info = infoByKind('Service');
    const name = svc.metadata.name!;
    if (spec.type !== 'ExternalName') {
      if (spec.clusterIP === 'None') {
        spec.clusterIPs = ['None'];
      } else {
        let ip: number;
        if (spec.clusterIP) {
          ip = tryParseIPv4(spec.clusterIP as string) ?? NaN;
          if (
            Number.isNaN(ip) ||
            ip <= this.range.base ||
            ip >= this.range.base + this.range.size - 1
          ) {
            throw Registry.invalid(info, name, [
              {
                type: 'FieldValueInvalid',
                field: 'spec.clusterIPs',
                value: [spec.clusterIP],
                detail: `failed to allocate IP ${spec.clusterIP}: the provided IP (${spec.clusterIP}) is not in the valid range. The range of valid IPs is ${this.range.cidr}`,
              },
            ]);
          }
          if (this.used.has(ip)) {
            throw Registry.invalid(info, name, [
              {
                type: 'FieldValueInvalid',
                field: 'spec.clusterIPs',
                value: [spec.clusterIP],
                detail: `failed to allocate IP ${spec.clusterIP}: provided IP is already allocated`,
              },
            ]);
          }
        } else if (
          svc.metadata.namespace === 'default' &&
          name === 'kubernetes' &&
          !this.used.has(this.range.base + 1)
        ) {
          ip = this.range.base + 1;
        } else if (this.wantsDNS(svc)) {
          ip = this.range.base + 10;
          if (this.used.has(ip)) {
            throw Registry.invalid(info, name, [
              {
                type: 'FieldValueInvalid',
                field: 'spec.clusterIPs',
                value: [formatIPv4(ip)],
                detail: `failed to allocate the cluster DNS IP ${formatIPv4(ip)}: already allocated to ${this.used.get(ip)}`,
              },
            ]);
          }
        } else {
          ip = this.pickFree(name);
        }
        spec.clusterIP = formatIPv4(ip);
        spec.clusterIPs = [spec.clusterIP];
      }
    }
    this.allocateNodePorts(svc, undefined);
  }

  private pickFree(name: string): number {
    // Offsets 1..10 are reserved (kubernetes, DNS, and the static band up to it).
    const first = 11;
    const last = this.range.size - 2;
    const count = last - first + 1;
    if (count <= 0 || this.used.size >= count + 10) {
      throw Registry.invalid(infoByKind('Service'), name, [
        {
          type: 'FieldValueInvalid',
          field: 'spec.clusterIPs',
          value: [],
          detail: `failed to allocate IP: range ${this.range.cidr} is full`,
        },
      ]);
    }
    const start = Math.floor(Math.random() * count);
    for (let i = 0; i < count; i++) {
      const ip = this.range.base + first + ((start + i) % count);
      if (!this.used.has(ip)) return ip;
    }
    throw Registry.invalid(infoByKind('Service'), name, [
      {
        type: 'FieldValueInvalid',
        field: 'spec.clusterIPs',
        value: [],
        detail: `failed to allocate IP: range ${this.range.cidr} is full`,
      },
    ]);
  }

  private allocateNodePorts(svc: KubeObject, old: KubeObject | undefined): void {
    const spec = svc.spec;
    const needs = spec.type === 'NodePort' || spec.type === 'LoadBalancer';
    const ports = (spec.ports ?? []) as Array<{ nodePort?: number; port: number; name?: string }>;
    const owner = this.owner(svc);
    const info = infoByKind('Service');
    const mine = new Set<number>();
    const taken = (port: number) => {
      const holder = this.nodePorts.get(port);
      return (holder !== undefined && holder !== owner) || mine.has(port);
    };
    ports.forEach((p, i) => {
      if (!needs) {
        delete p.nodePort;
        return;
      }
      if (p.nodePort) {
        if (p.nodePort < NODE_PORT_RANGE[0] || p.nodePort > NODE_PORT_RANGE[1]) {
          throw Registry.invalid(info, svc.metadata.name!, [
            {
              type: 'FieldValueInvalid',
              field: `spec.ports[${i}].nodePort`,
              value: p.nodePort,
              detail: `provided port is not in the valid range. The range of valid ports is ${NODE_PORT_RANGE[0]}-${NODE_PORT_RANGE[1]}`,
            },
          ]);
        }
        if (taken(p.nodePort)) {
          throw Registry.invalid(info, svc.metadata.name!, [
            {
              type: 'FieldValueInvalid',
              field: `spec.ports[${i}].nodePort`,
              value: p.nodePort,
              detail: 'provided port is already allocated',
            },
          ]);
        }
      } else {
        const prev = (
          (old?.spec?.ports ?? []) as Array<{ nodePort?: number; port: number; name?: string }>
        ).find((q) => q.port === p.port && (q.name ?? '') === (p.name ?? ''));
        if (prev?.nodePort) p.nodePort = prev.nodePort;
        else {
          const n = NODE_PORT_RANGE[1] - NODE_PORT_RANGE[0] + 1;
          const start = Math.floor(Math.random() * n);
          for (let k = 0; k < n; k++) {
            const cand = NODE_PORT_RANGE[0] + ((start + k) % n);
            if (!taken(cand) && !this.nodePorts.has(cand)) {
              p.nodePort = cand;
              break;
            }
          }
          if (!p.nodePort)
            throw Registry.invalid(info, svc.metadata.name!, [
              {
                type: 'FieldValueInvalid',
                field: `spec.ports[${i}].nodePort`,
                value: 0,
                detail: 'no free node port',
              },
            ]);
        }
      }
      mine.add(p.nodePort!);
    });
  }

  private reallocate(svc: KubeObject, old: KubeObject): void {
    const spec = svc.spec;
    if (!isPlainObject(spec)) return;
    const oldIP = old.spec?.clusterIP;
    if (spec.type !== 'ExternalName' && oldIP && spec.clusterIP !== oldIP) {
      throw Registry.invalid(infoByKind('Service'), svc.metadata.name!, [
        {
          type: 'FieldValueInvalid',
          field: 'spec.clusterIPs[0]',
          value: spec.clusterIP,
          detail: 'may not change once set',
        },
      ]);
    }
    if (spec.type !== 'ExternalName' && !oldIP) this.allocate(svc);
    else this.allocateNodePorts(svc, old);
  }
}

/**
 * What cluster DNS knows: services by namespace/name in the cluster domain
 * (cluster.local) and the clusterset domain (clusterset.local), kept live
 * from Services, EndpointSlices (headless services) and ServiceImports.
 * `ServiceRecordStore` implements `DNSRecordSource`, the interface the
 * server reads; the daemon feeds the store from API server watches.
 */
import { isIPv4 } from 'node:net';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';

/** One port of a service, for SRV records. */
export interface DNSPort {
  /** Port name ("" when unnamed: no _port._proto SRV name exists for it). */
  name: string;
  protocol: 'TCP' | 'UDP' | 'SCTP';
  port: number;
}

/** A service as DNS answers it. */
export interface DNSService {
  /** A records: the ClusterIP(s), or for a headless service its ready endpoints' addresses. */
  ips: string[];
  ports: DNSPort[];
  headless: boolean;
  /** Headless services: endpoint hostnames -> address (`<hostname>.<svc>.<ns>.svc.<domain>`). */
  hostnames?: Record<string, string>;
}

/** Where the server reads records from. Must answer synchronously (it is a cache). */
export interface DNSRecordSource {
  /** A service of the cluster domain. */
  service(namespace: string, name: string): DNSService | undefined;
  /** An imported service of the clusterset domain. */
  clusterSetService(namespace: string, name: string): DNSService | undefined;
}

/** The live store: feed it objects from watches; it answers lookups. */
export class ServiceRecordStore implements DNSRecordSource {
  private readonly services = new Map<string, V1Service>();
  private readonly slices = new Map<string, V1EndpointSlice>();
  private readonly imports = new Map<string, ServiceImportLike>();
  /** Bumped on every change (for tests and metrics). */
  generation = 0;

  upsertService(svc: V1Service): void {
    this.services.set(objKey(svc), svc);
    this.generation++;
  }
  deleteService(svc: Pick<V1Service, 'metadata'>): void {
    this.services.delete(objKey(svc));
    this.generation++;
  }
  upsertEndpointSlice(slice: V1EndpointSlice): void {
    this.slices.set(objKey(slice), slice);
    this.generation++;
  }
  deleteEndpointSlice(slice: Pick<V1EndpointSlice, 'metadata'>): void {
    this.slices.delete(objKey(slice));
    this.generation++;
  }
  upsertServiceImport(si: ServiceImportLike): void {
    this.imports.set(objKey(si), si);
    this.generation++;
  }
  deleteServiceImport(si: Pick<ServiceImportLike, 'metadata'>): void {
    this.imports.delete(objKey(si));
    this.generation++;
  }
  /** Replaces everything of one kind (after a re-list). */
  replaceAll(
    kind: 'services' | 'slices' | 'imports',
    objs: readonly { metadata?: { namespace?: string; name?: string } }[],
  ): void {
    const m = kind === 'services' ? this.services : kind === 'slices' ? this.slices : this.imports;
    m.clear();
    for (const o of objs) (m as Map<string, unknown>).set(objKey(o), o);
    this.generation++;
  }

  /** Counts, for status output. */
  counts(): { services: number; endpointSlices: number; serviceImports: number } {
    return {
      services: this.services.size,
      endpointSlices: this.slices.size,
      serviceImports: this.imports.size,
    };
  }

  service(namespace: string, name: string): DNSService | undefined {
    const svc = this.services.get(`${namespace}/${name}`);
    if (!svc || svc.spec?.type === 'ExternalName') return undefined;
    const ports = dnsPorts(svc.spec?.ports ?? []);
    if (svc.spec?.clusterIP === 'None') {
      const ips = new Set<string>();
      const hostnames: Record<string, string> = {};
      for (const sl of this.slices.values()) {
        if (
          (sl.metadata?.namespace ?? 'default') !== namespace ||
          sl.metadata?.labels?.['kubernetes.io/service-name'] !== name
        )
          continue;
        if ((sl.addressType ?? 'IPv4') !== 'IPv4') continue;
        for (const ep of sl.endpoints ?? []) {
          if (ep.conditions?.ready === false && !svc.spec?.publishNotReadyAddresses) continue;
          for (const ip of ep.addresses ?? []) {
            ips.add(ip);
            if (ep.hostname) hostnames[ep.hostname.toLowerCase()] = ip;
          }
        }
      }
      return { ips: [...ips].sort(), ports, headless: true, hostnames };
    }
    const ips = (
      svc.spec?.clusterIPs?.length
        ? svc.spec.clusterIPs
        : svc.spec?.clusterIP
          ? [svc.spec.clusterIP]
          : []
    ).filter((ip) => isIPv4(ip));
    return { ips, ports, headless: false };
  }

  clusterSetService(namespace: string, name: string): DNSService | undefined {
    const si = this.imports.get(`${namespace}/${name}`);
    if (!si) return undefined;
    const ports = dnsPorts(si.spec?.ports ?? []);
    let ips = (si.spec?.ips ?? []).filter((ip) => isIPv4(ip));
    if (ips.length === 0) {
      // No ips in the import yet: use its derived Service's ClusterIP.
      const derived = si.metadata?.annotations?.['multicluster.kubernetes.io/derived-service'];
      const d = derived ? this.service(namespace, derived) : undefined;
      if (d) ips = d.ips;
    }
    return { ips, ports, headless: si.spec?.type === 'Headless' };
  }
}

/** The parts of a ServiceImport (multicluster.x-k8s.io/v1alpha1) DNS reads. */
export interface ServiceImportLike {
  metadata?: { name?: string; namespace?: string; annotations?: Record<string, string> };
  spec?: {
    ips?: string[];
    type?: string;
    ports?: { name?: string; protocol?: string; port: number }[];
  };
}

function dnsPorts(ports: readonly { name?: string; protocol?: string; port: number }[]): DNSPort[] {
  return ports
    .filter((p) => Number.isInteger(p.port) && p.port > 0 && p.port < 65536)
    .map((p) => ({
      name: (p.name ?? '').toLowerCase(),
      protocol: (p.protocol ?? 'TCP').toUpperCase() as DNSPort['protocol'],
      port: p.port,
    }));
}

function objKey(o: { metadata?: { namespace?: string; name?: string } }): string {
  return `${o.metadata?.namespace || 'default'}/${o.metadata?.name ?? ''}`;
}

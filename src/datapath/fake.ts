/**
 * A Datapath that records what it is told, for tests of the control plane
 * (agent reconcilers, services, mesh) without root. It can be told to fail
 * the next N calls of an operation, to exercise retries. Every call is
 * also appended to `log` ("upsertService 10.96.0.10:53/UDP", ...).
 */
import type {
  Datapath,
  Endpoint,
  EndpointPolicySpec,
  Frontend,
  IPCacheEntry,
  NodeRoute,
  ServiceEntry,
} from './types.js';

/** "ip:port/PROTO": the key of a frontend. */
export function frontendKey(f: Frontend): string {
  return `${f.ip}:${f.port}/${f.protocol}`;
}

type Op = keyof Datapath;

export class FakeDatapath implements Datapath {
  readonly services = new Map<string, ServiceEntry>();
  readonly ipcache = new Map<string, IPCacheEntry>();
  readonly routes = new Map<string, NodeRoute>();
  readonly endpoints = new Map<number, Endpoint>();
  readonly policies = new Map<number, EndpointPolicySpec>();
  readonly log: string[] = [];
  private readonly failures = new Map<Op, number>();

  /** Makes the next `times` calls of `op` throw. */
  failNext(op: Op, times = 1): void {
    this.failures.set(op, (this.failures.get(op) ?? 0) + times);
  }

  private enter(op: Op, what: string): void {
    const n = this.failures.get(op) ?? 0;
    if (n > 0) {
      this.failures.set(op, n - 1);
      this.log.push(`${op} ${what} FAILED`);
      throw new Error(`fake datapath: injected failure in ${op}`);
    }
    this.log.push(`${op} ${what}`);
  }

  async upsertService(svc: ServiceEntry): Promise<void> {
    this.enter('upsertService', frontendKey(svc.frontend));
    this.services.set(frontendKey(svc.frontend), structuredClone(svc));
  }
  async deleteService(frontend: Frontend): Promise<void> {
    this.enter('deleteService', frontendKey(frontend));
    this.services.delete(frontendKey(frontend));
  }
  async upsertIPCache(entry: IPCacheEntry): Promise<void> {
    this.enter('upsertIPCache', entry.prefix);
    this.ipcache.set(entry.prefix, { ...entry });
  }
  async deleteIPCache(prefix: string): Promise<void> {
    this.enter('deleteIPCache', prefix);
    this.ipcache.delete(prefix);
  }
  async upsertNodeRoute(route: NodeRoute): Promise<void> {
    this.enter('upsertNodeRoute', route.podCIDR);
    this.routes.set(route.podCIDR, { ...route });
  }
  async deleteNodeRoute(podCIDR: string): Promise<void> {
    this.enter('deleteNodeRoute', podCIDR);
    this.routes.delete(podCIDR);
  }
  async upsertEndpoint(ep: Endpoint): Promise<void> {
    this.enter('upsertEndpoint', `${ep.id} ${ep.ip}`);
    this.endpoints.set(ep.id, { ...ep });
  }
  async deleteEndpoint(id: number): Promise<void> {
    this.enter('deleteEndpoint', String(id));
    this.endpoints.delete(id);
  }
  async upsertEndpointPolicy(policy: EndpointPolicySpec): Promise<void> {
    this.enter(
      'upsertEndpointPolicy',
      `${policy.endpointId} in:${policy.ingress.entries.length} eg:${policy.egress.entries.length}`,
    );
    this.policies.set(policy.endpointId, structuredClone(policy));
  }
  async deleteEndpointPolicy(id: number): Promise<void> {
    this.enter('deleteEndpointPolicy', String(id));
    this.policies.delete(id);
  }
}

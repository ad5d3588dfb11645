/**
 * The agent's endpoint manager: one endpoint per pod interface the CNI
 * plugin set up. It assigns endpoint IDs, looks up the pod's labels, resolves
 * the security identity of the pod's label set, and keeps the endpoint list
 * on disk (so an agent restart resumes with the same IDs and identities).
 * Changes are announced to listeners (the agent feeds the datapath, the
 * ipcache and the CiliumEndpoint publisher from them).
 */
import { readFileSync } from 'node:fs';
import { TendrilError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { nopLogger } from '../util/log.js';
import type { EndpointInfo, EndpointRegistration } from './api/types.js';
import { writeFileAtomicSync } from '../util/atomic-write.js';
import { clusterIdOf } from '../identity/numeric.js';

/** Finds a pod's labels (and UID); undefined when the pod is not known (yet). */
export type PodLookup = (
  namespace: string,
  name: string,
) => Promise<{ labels: Record<string, string>; uid?: string; serviceAccount?: string } | undefined>;

/** Resolves the security identity of a pod's labels in a namespace. May allocate. */
export type IdentityResolver = (o: {
  namespace: string;
  labels: Record<string, string>;
  serviceAccount?: string;
}) => Promise<number>;

export type EndpointListener = (event: 'upsert' | 'delete', ep: EndpointInfo) => void;

export interface EndpointManagerOptions {
  stateFile: string;
  podLookup?: PodLookup;
  resolveIdentity?: IdentityResolver;
  logger?: Logger;
  /** Retry delay for label/identity resolution (default 1 s, doubling to 15 s). */
  retryMs?: number;
}

interface StateFile {
  version: 1;
  nextId: number;
  endpoints: EndpointInfo[];
}

/** Local endpoints of one node. */
export class EndpointManager {
  private readonly byContainer = new Map<string, EndpointInfo>();
  private nextId = 1;
  private readonly listeners: EndpointListener[] = [];
  private readonly retries = new Map<string, NodeJS.Timeout>();
  private readonly log: Logger;
  private stopped = false;

  /** Restores endpoints from `stateFile`. @throws TendrilError agent.CorruptState */
  constructor(private readonly o: EndpointManagerOptions) {
    this.log = (o.logger ?? nopLogger).child({ subsys: 'endpoints' });
    let text: string | undefined;
    try {
      text = readFileSync(o.stateFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text !== undefined) {
      try {
        const f = JSON.parse(text) as StateFile;
        this.nextId = f.nextId;
        for (const ep of f.endpoints) this.byContainer.set(key(ep.containerId, ep.ifName), ep);
      } catch (err) {
        throw new TendrilError(
          'AGENT_CORRUPT_STATE',
          `read endpoint state ${o.stateFile}: ${(err as Error).message}`,
          { cause: err },
        );
      }
    }
  }

  /** Subscribes to changes; the listener is called for every current endpoint at once. */
  onChange(l: EndpointListener): void {
    this.listeners.push(l);
    for (const ep of this.byContainer.values()) l('upsert', ep);
  }

  /**
   * Starts resolving labels/identities of restored endpoints that lack them,
   * or whose identity belongs to another cluster ID (a reinstall with --force).
   */
  start(options: { clusterId?: number } = {}): void {
    for (const ep of this.byContainer.values()) {
      const foreign =
        options.clusterId !== undefined &&
        ep.identity >= 256 &&
        clusterIdOf(ep.identity) !== options.clusterId;
      if (foreign) {
        const k = key(ep.containerId, ep.ifName);
        const next: EndpointInfo = { ...ep, identity: 0, state: 'waiting-for-identity' };
        this.byContainer.set(k, next);
        this.emit('upsert', next);
      }
      if (foreign || ep.state !== 'ready')
        this.resolveLater(this.byContainer.get(key(ep.containerId, ep.ifName))!, 0);
    }
    this.save();
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.retries.values()) clearTimeout(t);
    this.retries.clear();
  }

  list(): EndpointInfo[] {
    return [...this.byContainer.values()].sort((a, b) => a.id - b.id);
  }

  get(containerId: string, ifName?: string): EndpointInfo | undefined {
    if (ifName) return this.byContainer.get(key(containerId, ifName));
    for (const ep of this.byContainer.values()) if (ep.containerId === containerId) return ep;
    return undefined;
  }

  byIP(ip: string): EndpointInfo | undefined {
    for (const ep of this.byContainer.values()) if (ep.ip === ip) return ep;
    return undefined;
  }

  /**
   * Registers (or updates) the endpoint of a pod interface. Resolves its labels
   * and identity right away when it can (within ~2 s), else in the background.
   */
  async register(reg: EndpointRegistration): Promise<EndpointInfo> {
    const k = key(reg.containerId, reg.ifName);
    const prev = this.byContainer.get(k);
    const ep: EndpointInfo = {
      ...reg,
      id: prev?.id ?? this.nextId++,
      identity: prev?.ip === reg.ip ? (prev?.identity ?? 0) : 0,
      labels: prev?.labels ?? {},
      state: prev?.state === 'ready' && prev.ip === reg.ip ? 'ready' : 'waiting-for-identity',
      createdAt: prev?.createdAt ?? new Date().toISOString(),
    };
    this.byContainer.set(k, ep);
    this.save();
    this.emit('upsert', ep);
    if (ep.state !== 'ready') {
      const done = await Promise.race([
        this.resolve(ep).then(
          () => true,
          () => false,
        ),
        delay(2000).then(() => false),
      ]);
      if (!done && this.byContainer.get(k) === ep) this.resolveLater(ep, 1000);
    }
    return this.byContainer.get(k) ?? ep;
  }

  /** Removes an endpoint; returns it, or undefined when unknown. */
  deregister(containerId: string, ifName = 'eth0'): EndpointInfo | undefined {
    const k = key(containerId, ifName);
    const ep = this.byContainer.get(k);
    if (!ep) return undefined;
    this.byContainer.delete(k);
    const t = this.retries.get(k);
    if (t) clearTimeout(t);
    this.retries.delete(k);
    this.save();
    this.emit('delete', { ...ep, state: 'disconnecting' });
    return ep;
  }

  /** Re-resolves identities of every endpoint (e.g. after pod labels changed). */
  refreshPod(namespace: string, name: string): void {
    for (const ep of this.byContainer.values()) {
      if (ep.podNamespace === namespace && ep.podName === name) this.refresh(ep, 0);
    }
  }

  /** Re-resolves the identities of a namespace's endpoints (after the namespace's labels changed). */
  refreshNamespace(namespace: string): void {
    for (const ep of this.byContainer.values()) {
      if (ep.podNamespace === namespace) this.refresh(ep, 0);
    }
  }

  /**
   * Resolves a (possibly ready) endpoint's identity again; a failure (the new
   * identity not allocated yet) is retried with back-off, up to 6 attempts,
   * the endpoint keeping its identity meanwhile.
   */
  private refresh(ep: EndpointInfo, attempt: number): void {
    const k = key(ep.containerId, ep.ifName);
    this.resolve(ep).catch(() => {
      if (this.stopped || attempt >= 5) return;
      const ms = Math.min((this.o.retryMs ?? 1000) * 2 ** attempt, 15_000);
      setTimeout(() => {
        const cur = this.byContainer.get(k);
        if (cur && cur.id === ep.id) this.refresh(cur, attempt + 1);
      }, ms).unref?.();
    });
  }

  private async resolve(ep: EndpointInfo): Promise<void> {
    const k = key(ep.containerId, ep.ifName);
    try {
      let labels = ep.labels;
      let serviceAccount: string | undefined;
      if (this.o.podLookup && ep.podName) {
        const pod = await this.o.podLookup(ep.podNamespace, ep.podName);
        if (!pod) throw new Error(`pod ${ep.podNamespace}/${ep.podName} not found (yet)`);
        labels = pod.labels;
        serviceAccount = pod.serviceAccount;
      }
      const identity = this.o.resolveIdentity
        ? await this.o.resolveIdentity({
            namespace: ep.podNamespace,
            labels,
            ...(serviceAccount ? { serviceAccount } : {}),
          })
        : 0;
      const cur = this.byContainer.get(k);
      if (!cur || cur.id !== ep.id || this.stopped) return;
      if (
        cur.identity === identity &&
        cur.state === 'ready' &&
        JSON.stringify(cur.labels) === JSON.stringify(labels)
      )
        return;
      const next: EndpointInfo = {
        ...cur,
        labels,
        identity,
        state: identity > 0 || !this.o.resolveIdentity ? 'ready' : 'waiting-for-identity',
      };
      this.byContainer.set(k, next);
      this.save();
      this.emit('upsert', next);
    } catch (err) {
      this.log.info('endpoint identity not resolved yet, retrying', {
        endpoint: ep.id,
        pod: `${ep.podNamespace}/${ep.podName}`,
        error: err,
      });
      throw err;
    }
  }

  private resolveLater(ep: EndpointInfo, ms: number): void {
    const k = key(ep.containerId, ep.ifName);
    if (this.stopped || this.retries.has(k)) return;
    const t = setTimeout(() => {
      this.retries.delete(k);
      const cur = this.byContainer.get(k);
      if (!cur || cur.state === 'ready') return;
      this.resolve(cur).catch(() =>
        this.resolveLater(cur, Math.min(Math.max(ms * 2, this.o.retryMs ?? 1000), 15_000)),
      );
    }, ms);
    this.retries.set(k, t);
  }

  private emit(ev: 'upsert' | 'delete', ep: EndpointInfo): void {
    for (const l of this.listeners) {
      try {
        l(ev, ep);
      } catch (err) {
        this.log.error('endpoint listener failed', { error: err });
      }
    }
  }

  private save(): void {
    const f: StateFile = { version: 1, nextId: this.nextId, endpoints: this.list() };
    writeFileAtomicSync(this.o.stateFile, JSON.stringify(f, null, 1), { mode: 0o600 });
  }
}

function key(containerId: string, ifName: string): string {
  return `${containerId}/${ifName}`;
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref?.());
}

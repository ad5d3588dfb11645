/**
 * Hubble Relay for Tendril: one per cluster (port 4245), serving the same
 * `observer.Observer` API over every node of its cluster and, through their
 * relays, every connected cluster. Flows from all peers are merged in time
 * order; a peer that cannot be reached is reported in a `node_status`
 * response (NODE_UNAVAILABLE) and in ServerStatus/GetNodes, and the others
 * are served anyway.
 *
 * A relay asks a remote cluster's relay with the metadata
 * `x-tendril-relay-hop: 1`; a relay asked that way serves its own cluster
 * only, so two connected clusters never loop.
 */
import * as grpc from '@grpc/grpc-js';
import { ObserverClient, type ObserverClientOptions } from './client.js';
import { compileFlowFilters, FlowFilterError } from './filter.js';
import {
  compareTime,
  observerService,
  statusToWire,
  type GetFlowsRequest,
  type GetFlowsResponse,
  type ObserverNode,
  type ServerStatus,
} from './grpc.js';
import { bindObserverServer, type ObserverListen } from './server.js';
import { BoundedResponseStream, nowTimestamp } from './stream.js';
import { TendrilError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { rmSync } from 'node:fs';

/** Hubble Relay's port. */
export const RELAY_PORT = 4245;

/** Metadata a relay puts on calls to another cluster's relay. */
export const RELAY_HOP_HEADER = 'x-tendril-relay-hop';

/** One peer: a node's observer, or another cluster's relay. */
export interface RelayPeer {
  /** Node name (or `cluster:<name>` for a remote relay). */
  name: string;
  /** How to reach it. */
  client: ObserverClientOptions;
  /** Another cluster's relay (asked with the hop header; its nodes are its own). */
  remoteCluster?: string;
  /**
   * Why this peer cannot be dialled at all (e.g. its certificate file is bad):
   * it is reported unavailable with this message and never dialled.
   */
  unusable?: string;
}

type PeerClient = Pick<ObserverClient, 'serverStatus' | 'getNodes' | 'getFlows' | 'close'>;

/** A peer that cannot be dialled: every call fails with its reason. */
function unusableClient(reason: string): PeerClient {
  const fail = () => Promise.reject(new TendrilError('HUBBLE_PEER_UNUSABLE', reason));
  return {
    serverStatus: fail,
    getNodes: fail,
    getFlows: async function* () {
      throw new TendrilError('HUBBLE_PEER_UNUSABLE', reason);
    },
    close: () => {},
  };
}

/** Options of a Relay. */
export interface RelayOptions {
  /** The current peers (called per request; the node list changes). */
  peers: () => Promise<RelayPeer[]>;
  /** Name used in node_status and lost_events responses. */
  name: string;
  version?: string;
  maxQueue?: number;
  /**
   * How long follow mode holds flows to sort them across peers (default 30 ms:
   * a packet's flow reaches `hubble observe -f` within ~100 ms, bench hubble's
   * event_to_observe_p99_ms).
   */
  sortWindowMs?: number;
  logger?: Logger;
}

interface Connected {
  peer: RelayPeer;
  client: PeerClient;
}

/** The relay's Observer service. */
export class Relay {
  readonly #o: RelayOptions;
  readonly #clients = new Map<string, PeerClient>();
  readonly #startedAt = Date.now();
  #server: grpc.Server | undefined;
  #socketPath: string | undefined;
  #dropped = 0;
  #flowsRelayed = 0;
  readonly addresses: string[] = [];

  constructor(o: RelayOptions) {
    this.#o = o;
  }

  #clientFor(p: RelayPeer): PeerClient {
    if (p.unusable !== undefined) return unusableClient(p.unusable);
    const key = `${p.name}|${p.client.address}`;
    let c = this.#clients.get(key);
    if (!c) {
      c = new ObserverClient({
        timeoutMs: 3000,
        ...p.client,
        ...(p.remoteCluster ? { metadata: { [RELAY_HOP_HEADER]: '1' } } : {}),
      });
      this.#clients.set(key, c);
    }
    return c;
  }

  async #peers(hop: boolean): Promise<Connected[]> {
    const peers = (await this.#o.peers()).filter((p) => !hop || !p.remoteCluster);
    const live = new Set(peers.map((p) => `${p.name}|${p.client.address}`));
    for (const [k, c] of this.#clients)
      if (!live.has(k)) {
        c.close();
        this.#clients.delete(k);
      }
    return peers.map((peer) => ({ peer, client: this.#clientFor(peer) }));
  }

  /** Flows sent to clients since start, and responses dropped because a client was slow. */
  stats(): { flowsRelayed: number; dropped: number } {
    return { flowsRelayed: this.#flowsRelayed, dropped: this.#dropped };
  }

  /** ServerStatus summed over the peers; unreachable ones listed. */
  async status(hop = false): Promise<ServerStatus> {
    const peers = await this.#peers(hop);
    const res = await Promise.allSettled(peers.map((p) => p.client.serverStatus()));
    const out: ServerStatus = {
      numFlows: 0,
      maxFlows: 0,
      seenFlows: 0,
      uptimeNs: (Date.now() - this.#startedAt) * 1e6,
      numConnectedNodes: 0,
      numUnavailableNodes: 0,
      unavailableNodes: [],
      version: this.#o.version ?? 'tendril',
      flowsRate: 0,
      lostEvents: this.#dropped,
    };
    res.forEach((r, i) => {
      const p = peers[i]!.peer;
      if (r.status === 'rejected') {
        out.numUnavailableNodes! += 1;
        out.unavailableNodes.push(p.name);
        return;
      }
      const s = r.value;
      out.numFlows += s.numFlows;
      out.maxFlows += s.maxFlows;
      out.seenFlows += s.seenFlows;
      out.flowsRate += s.flowsRate;
      out.lostEvents += s.lostEvents;
      out.uptimeNs = Math.max(out.uptimeNs, s.uptimeNs);
      out.numConnectedNodes! += p.remoteCluster ? (s.numConnectedNodes ?? 1) : 1;
      out.numUnavailableNodes! += p.remoteCluster ? (s.numUnavailableNodes ?? 0) : 0;
      if (p.remoteCluster) out.unavailableNodes.push(...s.unavailableNodes);
    });
    return out;
  }

  /** Every node: local ones by asking them, remote ones through their relays. */
  async nodes(hop = false): Promise<ObserverNode[]> {
    const peers = await this.#peers(hop);
    const res = await Promise.allSettled(peers.map((p) => p.client.getNodes()));
    const out: ObserverNode[] = [];
    res.forEach((r, i) => {
      const p = peers[i]!.peer;
      if (r.status === 'fulfilled') {
        if (p.remoteCluster) out.push(...r.value);
        else
          out.push(
            ...r.value.map((n) => ({
              ...n,
              address: p.client.address,
              tls: { enabled: !!p.client.tls },
            })),
          );
      } else {
        out.push({
          name: p.name,
          version: '',
          address: p.client.address,
          state: 'NODE_UNAVAILABLE',
          tls: { enabled: !!p.client.tls },
          uptimeNs: 0,
          numFlows: 0,
          maxFlows: 0,
          seenFlows: 0,
        });
      }
    });
    return out;
  }

  /** The service implementation. */
  handlers(): grpc.UntypedServiceImplementation {
    const hopOf = (call: { metadata: grpc.Metadata }) =>
      call.metadata.get(RELAY_HOP_HEADER).length > 0;
    return {
      GetFlows: (call: grpc.ServerWritableStream<GetFlowsRequest, unknown>) =>
        void this.#getFlows(call, hopOf(call)),
      ServerStatus: (
        call: grpc.ServerUnaryCall<unknown, unknown>,
        cb: grpc.sendUnaryData<unknown>,
      ) =>
        void this.status(hopOf(call)).then(
          (s) => cb(null, statusToWire(s)),
          (e: Error) => cb({ code: grpc.status.INTERNAL, details: e.message }),
        ),
      GetNodes: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) =>
        void this.nodes(hopOf(call)).then(
          (nodes) => cb(null, { nodes }),
          (e: Error) => cb({ code: grpc.status.INTERNAL, details: e.message }),
        ),
    };
  }

  async #getFlows(call: grpc.ServerWritableStream<GetFlowsRequest, unknown>, hop: boolean) {
    const req = call.request;
    const name = this.#o.name;
    const out = new BoundedResponseStream(call, {
      maxQueue: this.#o.maxQueue ?? 1024,
      nodeName: name,
      onDrop: (n) => (this.#dropped += n),
    });
    try {
      compileFlowFilters(req.whitelist ?? [], req.blacklist ?? []);
    } catch (err) {
      out.fail(
        grpc.status.INVALID_ARGUMENT,
        err instanceof FlowFilterError ? err.message : String(err),
      );
      return;
    }
    const ac = new AbortController();
    out.onClose(() => ac.abort());
    const peers = await this.#peers(hop);
    const status = (
      state: 'NODE_CONNECTED' | 'NODE_UNAVAILABLE',
      names: string[],
      message?: string,
    ) =>
      out.push(
        {
          nodeStatus: { stateChange: state, nodeNames: names, ...(message ? { message } : {}) },
          nodeName: name,
          time: nowTimestamp(),
        },
        true,
      );
    const history: GetFlowsResponse[][] = peers.map(() => []);
    const connected: string[] = [];
    // follow mode: flows wait up to sortWindowMs in `pending` to be merged in time order
    const pending: GetFlowsResponse[] = [];
    let historyDone = false;
    const windowMs = this.#o.sortWindowMs ?? 30;
    const flush = (all: boolean) => {
      pending.sort((a, b) => compareTime(a.time ?? ZERO, b.time ?? ZERO));
      const cut = Date.now() - windowMs;
      while (pending.length && (all || arrival.get(pending[0]!)! <= cut)) {
        const r = pending.shift()!;
        arrival.delete(r);
        if (r.flow) this.#flowsRelayed++;
        out.push(r);
      }
    };
    const arrival = new Map<GetFlowsResponse, number>();
    const timer = req.follow
      ? setInterval(() => historyDone && flush(false), Math.max(10, windowMs / 3))
      : undefined;
    out.onClose(() => clearInterval(timer));
    const runs = peers.map(async (p, i) => {
      try {
        let first = true;
        for await (const r of p.client.getFlows(req, { signal: ac.signal })) {
          if (first) {
            first = false;
            connected.push(p.peer.name);
          }
          if (r.nodeStatus) {
            // a remote relay's own report about its nodes
            if (r.nodeStatus.stateChange !== 'NODE_CONNECTED') out.push(r, true);
            continue;
          }
          if (!historyDone) history[i]!.push(r);
          else if (r.lostEvents) out.push(r);
          else {
            arrival.set(r, Date.now());
            pending.push(r);
            if (pending.length > (this.#o.maxQueue ?? 1024)) flush(true);
          }
        }
      } catch (err) {
        if (ac.signal.aborted) return;
        status('NODE_UNAVAILABLE', [p.peer.name], (err as Error).message);
        this.#o.logger?.warn('hubble relay: peer unavailable', {
          peer: p.peer.name,
          error: (err as Error).message,
        });
      }
    });
    if (!req.follow) {
      await Promise.all(runs);
      if (out.done) return;
      if (connected.length) status('NODE_CONNECTED', connected);
      this.#flowsRelayed += out_history(out, history, req);
      out.end();
      return;
    }
    // follow: the history is what each peer sends before the first quiet moment
    await new Promise((r) => setTimeout(r, Math.max(windowMs, 300)));
    if (out.done) return;
    if (connected.length) status('NODE_CONNECTED', [...connected]);
    historyDone = true;
    this.#flowsRelayed += out_history(out, history, req);
    void Promise.all(runs).then(() => {
      flush(true);
      out.end();
    });
  }

  /**
   * Starts listening (a Unix socket for the CLI, TCP with mutual TLS for other clusters' relays).
   * @throws TendrilError HUBBLE_LISTEN, HUBBLE_NO_TLS
   */
  async listen(l: ObserverListen): Promise<void> {
    const server = new grpc.Server();
    server.addService(observerService().service, this.handlers());
    this.#server = server;
    await bindObserverServer(server, l, 'hubble relay', (address, tls) => {
      if (!tls) this.#socketPath = l.socketPath;
      this.addresses.push(address);
    });
  }

  /** Stops serving and closes the peer connections. */
  async close(): Promise<void> {
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
    const s = this.#server;
    this.#server = undefined;
    if (s) s.forceShutdown();
    if (this.#socketPath) rmSync(this.#socketPath, { force: true });
  }
}

const ZERO = { seconds: 0, nanos: 0 };

/** Writes the merged history: every peer's flows in time order, trimmed to `number`. */
function out_history(
  out: BoundedResponseStream,
  history: GetFlowsResponse[][],
  req: GetFlowsRequest,
): number {
  let all = history.flat();
  const lost = all.filter((r) => r.lostEvents);
  all = all.filter((r) => r.flow).sort((a, b) => compareTime(a.time ?? ZERO, b.time ?? ZERO));
  const n = Number(req.number ?? 0);
  if (n > 0) all = req.first ? all.slice(0, n) : all.slice(-n);
  for (const r of lost) out.push(r, true);
  for (const r of all) out.push(r, true);
  return all.length;
}

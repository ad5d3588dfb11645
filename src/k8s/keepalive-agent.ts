/**
 * A keep-alive http.Agent that does not reuse a socket the server may have
 * closed, and the rule for retrying a request that met one anyway.
 *
 * A keep-alive server closes a connection left idle for its keepAliveTimeout
 * (Node's default 5 s, the lab API server 65 s) and announces that timeout in
 * `Keep-Alive: timeout=N`. Node 20's Agent ignores the announcement unless the
 * agent has a `timeout` of its own, so it keeps idle sockets forever, and a
 * request written to one the server has just closed fails with ECONNRESET
 * ("socket hang up"). The window is wide whenever the client's event loop was
 * busy (a spawnSync, a long computation) as the server's timeout passed: the
 * server's FIN then waits unread in the kernel and the agent hands out the
 * dead socket to the next request.
 *
 * KeepAliveAgent
 *   - closes a free socket once it has been idle for 3/4 of the server's
 *     announced timeout (DEFAULT_IDLE_MS when the server announces none);
 *   - `discardStale()`, called before each request, destroys the free sockets
 *     idle that long by the wall clock, which also covers a blocked event
 *     loop, when the idle timer could not fire.
 * `isStaleSocketError` tells a request that may still have met a closed
 * socket: sent on a reused socket, reset or broken before any response.
 */
import { Agent, type AgentOptions, type ClientRequest } from 'node:http';
import { Agent as HttpsAgent, type AgentOptions as HttpsAgentOptions } from 'node:https';
import type { Socket } from 'node:net';

/** Idle limit of a socket whose server announced no keep-alive timeout. */
export const DEFAULT_IDLE_MS = 4000;

/** HTTP methods that may be sent twice (RFC 9110 9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

/**
 * The idle time after which a socket is no longer reused, from the server's
 * `Keep-Alive` header: 3/4 of its timeout, 0 (do not reuse) for a timeout of
 * 0, DEFAULT_IDLE_MS without one.
 */
export function idleLimitMs(keepAliveHeader: string | undefined): number {
  const m = keepAliveHeader ? /(?:^|[\s,])timeout=(\d+)/.exec(keepAliveHeader) : null;
  if (!m) return DEFAULT_IDLE_MS;
  return Math.floor(Number(m[1]) * 750);
}

/** Whether `method` may be retried when nothing came back (RFC 9110 idempotent methods). */
export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method.toUpperCase());
}

/**
 * Whether `err` (a request's 'error', before any response) is the server
 * closing an idle keep-alive connection under the request: the socket was
 * reused and was reset (ECONNRESET, "socket hang up") or broken (EPIPE).
 */
export function isStaleSocketError(req: ClientRequest, err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return req.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE');
}

interface IdleSocket {
  since: number;
  limitMs: number;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AgentClass = new (...args: any[]) => Agent;

/** Adds the idle limit to an http.Agent class (http or https). */
function withIdleLimit<B extends AgentClass>(Base: B) {
  return class extends Base {
    readonly idle = new Map<Socket, IdleSocket>();
    readonly tracked = new WeakSet<Socket>();
    /** Called by Agent when a response is done: keep the socket for at most its idle limit. */
    override keepSocketAlive(socket: Socket): boolean {
      // Node's returns false when the server's timeout is too short to reuse (@types/node says void).
      const keep: unknown = super.keepSocketAlive(socket);
      if (keep === false) return false;
      const res = (
        socket as Socket & { _httpMessage?: { res?: { headers: Record<string, unknown> } } }
      )._httpMessage?.res;
      const hint = res?.headers['keep-alive'];
      const limitMs = idleLimitMs(typeof hint === 'string' ? hint : undefined);
      if (limitMs <= 0) return false;
      socket.setTimeout(limitMs); // the Agent destroys a free socket on 'timeout'
      if (!this.tracked.has(socket)) {
        this.tracked.add(socket);
        socket.once('close', () => this.idle.delete(socket));
      }
      this.idle.set(socket, { since: Date.now(), limitMs });
      return true;
    }

    /** Called by Agent when a kept socket is handed to a request. */
    override reuseSocket(socket: Socket, req: ClientRequest): void {
      this.idle.delete(socket);
      socket.setTimeout(0); // the request sets its own timeout
      super.reuseSocket(socket, req);
    }

    /**
     * Destroys the free sockets idle for their limit or longer by the wall
     * clock (so the next request opens a new connection). Returns how many.
     */
    discardStale(now = Date.now()): number {
      let n = 0;
      for (const [socket, s] of this.idle) {
        if (now - s.since < s.limitMs) continue;
        this.idle.delete(socket);
        socket.destroy();
        n++;
      }
      return n;
    }
  };
}

/** http.Agent with keepAlive that stops reusing sockets before the server's keep-alive timeout. */
export class KeepAliveAgent extends withIdleLimit(Agent) {
  constructor(options: Omit<AgentOptions, 'keepAlive'> = {}) {
    super({ ...options, keepAlive: true });
  }
}

/** The same for https (CA, client certificate and key in the options). */
export class KeepAliveHttpsAgent extends withIdleLimit(HttpsAgent) {
  constructor(options: Omit<HttpsAgentOptions, 'keepAlive'> = {}) {
    super({ ...options, keepAlive: true });
  }
}

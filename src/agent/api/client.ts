/**
 * Client of the node agent's API over its Unix socket (see ./types.ts).
 * Used by the CNI plugin, `tendril status` and `tendril debug`.
 */
import type { Flow } from '../../observe/flow.js';
import { request } from 'node:http';
import { TendrilError } from '../../util/errors.js';
import type {
  AgentStatus,
  EndpointInfo,
  EndpointRegistration,
  IpamRequest,
  IpamResponse,
  IPCacheEntry,
  NodeRoute,
  ServiceEntry,
} from './types.js';

/** The agent could not be reached (socket missing, refused, timeout). */
export class AgentUnreachableError extends TendrilError {
  constructor(socketPath: string, cause: unknown) {
    super(
      'AGENT_UNREACHABLE',
      `cannot reach the Tendril agent at ${socketPath}: ${(cause as Error)?.message ?? cause}`,
      {
        hint: 'is the agent running on this node? see `tendril status` and `tendril lab logs`',
        cause,
      },
    );
  }
}

/** The agent answered with an error status. */
export class AgentApiError extends TendrilError {
  constructor(
    readonly status: number,
    message: string,
    hint?: string,
  ) {
    super('AGENT_API_ERROR', message, hint ? { hint } : {});
  }
}

export interface AgentClientOptions {
  /** Per-request timeout (default 10 s). */
  timeoutMs?: number;
}

/** A client for one agent's socket. */
export class AgentClient {
  constructor(
    readonly socketPath: string,
    private readonly options: AgentClientOptions = {},
  ) {}

  /** Sends a request; resolves the parsed JSON body (or text). @throws AgentUnreachableError, AgentApiError */
  request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise<T>((resolve, reject) => {
      const req = request(
        {
          socketPath: this.socketPath,
          agent: false,
          method,
          path,
          headers: payload
            ? { 'content-type': 'application/json', 'content-length': payload.length }
            : {},
          timeout: this.options.timeoutMs ?? 10_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            if ((res.headers['content-type'] ?? '').includes('json') && text) {
              try {
                parsed = JSON.parse(text);
              } catch {
                parsed = text;
              }
            }
            const status = res.statusCode ?? 0;
            if (status >= 400) {
              const e = parsed as { message?: string; hint?: string };
              reject(
                new AgentApiError(
                  status,
                  e?.message ?? `agent answered ${status}: ${text}`,
                  e?.hint,
                ),
              );
            } else resolve(parsed as T);
          });
          res.on('error', (err) => reject(new AgentUnreachableError(this.socketPath, err)));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', (err) =>
        reject(err instanceof TendrilError ? err : new AgentUnreachableError(this.socketPath, err)),
      );
      req.end(payload);
    });
  }

  health(): Promise<string> {
    return this.request<string>('GET', '/healthz');
  }
  status(): Promise<AgentStatus> {
    return this.request<AgentStatus>('GET', '/v1/status');
  }
  allocate(req: IpamRequest): Promise<IpamResponse> {
    return this.request<IpamResponse>('POST', '/v1/ipam', req);
  }
  registerEndpoint(reg: EndpointRegistration): Promise<EndpointInfo> {
    return this.request<EndpointInfo>(
      'PUT',
      `/v1/endpoints/${encodeURIComponent(reg.containerId)}`,
      reg,
    );
  }
  async deleteEndpoint(containerId: string, ifName = 'eth0'): Promise<void> {
    await this.request<unknown>(
      'DELETE',
      `/v1/endpoints/${encodeURIComponent(containerId)}?ifName=${encodeURIComponent(ifName)}`,
    );
  }
  getEndpoint(containerId: string): Promise<EndpointInfo> {
    return this.request<EndpointInfo>('GET', `/v1/endpoints/${encodeURIComponent(containerId)}`);
  }
  endpoints(): Promise<EndpointInfo[]> {
    return this.request<EndpointInfo[]>('GET', '/v1/endpoints');
  }
  services(): Promise<ServiceEntry[]> {
    return this.request<ServiceEntry[]>('GET', '/v1/services');
  }
  ipcache(): Promise<IPCacheEntry[]> {
    return this.request<IPCacheEntry[]>('GET', '/v1/ipcache');
  }
  routes(): Promise<NodeRoute[]> {
    return this.request<NodeRoute[]>('GET', '/v1/routes');
  }
  /** The agent's flow ring (Hubble flows), oldest first, and its counters. */
  flows(): Promise<{ flows: Flow[]; stats: { seen: number; capacity: number; lost: number } }> {
    return this.request('GET', '/v1/flows');
  }
}

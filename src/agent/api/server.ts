/**
 * Serves the agent's API (see ./types.ts) over HTTP on a Unix socket. The
 * socket file is replaced on start (a stale one from a killed agent would
 * refuse connections) and made 0600 (root only: it hands out addresses).
 */
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import { TendrilError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { nopLogger } from '../../util/log.js';
import type { Agent } from '../agent.js';
import type { EndpointRegistration, IpamRequest } from './types.js';

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': typeof body === 'string' ? 'text/plain' : 'application/json',
  });
  res.end(text);
}

async function readJson<T>(req: IncomingMessage): Promise<T> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > 1 << 20) throw new TendrilError('AGENT_BAD_REQUEST', 'request body over 1 MiB');
    chunks.push(c as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as T;
  } catch {
    throw new TendrilError('AGENT_BAD_REQUEST', 'request body is not JSON');
  }
}

/** Routes one request to the agent. Exported for tests. */
export async function handle(
  agent: Agent,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://agent');
  const path = url.pathname;
  const m = req.method ?? 'GET';
  try {
    if (m === 'GET' && path === '/healthz') return send(res, 200, 'ok');
    if (m === 'GET' && path === '/v1/status') return send(res, 200, agent.status());
    if (m === 'POST' && path === '/v1/ipam')
      return send(res, 200, agent.allocate(await readJson<IpamRequest>(req)));
    if (m === 'GET' && path === '/v1/ipam') return send(res, 200, agent.ipam.list());
    if (m === 'GET' && path === '/v1/endpoints') return send(res, 200, agent.endpoints.list());
    if (m === 'GET' && path === '/v1/services') return send(res, 200, agent.services.values());
    if (m === 'GET' && path === '/v1/ipcache') return send(res, 200, agent.ipcache.values());
    if (m === 'GET' && path === '/v1/routes') return send(res, 200, agent.routes.values());
    if (m === 'GET' && path === '/v1/policy') return send(res, 200, agent.policy.report());
    if (m === 'GET' && path === '/v1/flows')
      return send(res, 200, { flows: agent.flows.snapshot(), stats: agent.flows.stats() });
    const ep = /^\/v1\/endpoints\/([^/]+)$/.exec(path);
    if (ep) {
      const containerId = decodeURIComponent(ep[1]!);
      if (m === 'GET') {
        const e = agent.endpoints.get(containerId);
        return e
          ? send(res, 200, e)
          : send(res, 404, { message: `no endpoint for container ${containerId}` });
      }
      if (m === 'PUT') {
        const reg = await readJson<EndpointRegistration>(req);
        if (reg.containerId !== containerId)
          throw new TendrilError(
            'AGENT_BAD_REQUEST',
            'containerId in the body differs from the path',
          );
        return send(res, 200, await agent.registerEndpoint(reg));
      }
      if (m === 'DELETE') {
        const existed = agent.deleteEndpoint(containerId, url.searchParams.get('ifName') ?? 'eth0');
        return existed
          ? send(res, 200, { deleted: true })
          : send(res, 404, { message: `no endpoint for container ${containerId}` });
      }
    }
    send(res, 404, { message: `no route ${m} ${path}` });
  } catch (err) {
    const e = err as TendrilError;
    const status = e.code === 'AGENT_BAD_REQUEST' ? 400 : e.code === 'IPAM_EXHAUSTED' ? 503 : 500;
    send(res, status, {
      message: e.message ?? String(err),
      code: e.code,
      ...(e.hint ? { hint: e.hint } : {}),
    });
  }
}

/** Starts serving on `socketPath`. Resolves with the server once listening. */
export async function serveAgentApi(
  agent: Agent,
  socketPath: string,
  logger: Logger = nopLogger,
): Promise<Server> {
  mkdirSync(dirname(socketPath), { recursive: true });
  rmSync(socketPath, { force: true });
  const server = createServer((req, res) => {
    handle(agent, req, res).catch((err) => {
      logger.error('api handler failed', { error: err });
      if (!res.headersSent) send(res, 500, { message: String(err) });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  chmodSync(socketPath, 0o600);
  return server;
}

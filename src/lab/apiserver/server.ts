/**
 * The lab API server's HTTP layer: a strict subset of the Kubernetes REST API
 * over plain HTTP on loopback and on a Unix socket. Routes discovery, health,
 * version, and the resource verbs (get, list, watch, create, update, patch,
 * delete, deletecollection, status subresource) to the Registry; answers
 * failures with Kubernetes Status objects and HTTP codes.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { existsSync, unlinkSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { toTable } from '../../k8s/printers.js';
import type { KubeObject } from '../../k8s/objects.js';
import { resourceForPath, type ResourceInfo } from '../../k8s/resources.js';
import { parseFieldSelector, parseLabelSelector } from '../../k8s/selectors.js';
import {
  ApiError,
  badRequest,
  expired,
  failure,
  internalError,
  success,
  type Status,
} from '../../k8s/status.js';
import { TendrilError, isNotFound } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { nopLogger } from '../../util/log.js';
import {
  apiGroup,
  apiGroupList,
  apiVersions,
  openapiV3Doc,
  openapiV3Index,
  resourceList,
} from './discovery.js';
import {
  checkDeclaredLength,
  checkQuery,
  decodeSegment,
  integerParam,
  tooLarge,
  WatchLimiter,
} from './bounds.js';
import type { DeleteOptions, ListOptions, Registry } from './registry.js';
import type { Duplex } from 'node:stream';
import type { PodStreams } from './streaming.js';
import { toEventsV1 } from './events.js';
import { decodeProtobufObject } from './protobuf.js';
import {
  authenticate,
  authorize,
  forbiddenMessage,
  type Identity,
  type RequestAttributes,
} from './auth.js';

/** Version reported at /version (kubectl checks the major/minor skew). */
export const SERVER_VERSION = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.0-tendril',
  gitCommit: '',
  gitTreeState: 'clean',
  buildDate: '2026-01-01T00:00:00Z',
  goVersion: 'n/a (Node.js)',
  compiler: 'tsx',
  platform: 'linux/amd64',
};

/** Options of ApiHttpServer. */
export interface ApiHttpServerOptions {
  registry: Registry;
  logger?: Logger;
  /** Largest request body accepted, bytes. Default 3 MiB (as Kubernetes). */
  maxBodyBytes?: number;
  /** Interval of BOOKMARK events on watches that allow them. Default 10 s. */
  bookmarkIntervalMs?: number;
  /** Reports readiness (/readyz); default always ready. */
  ready?: () => boolean;
  /** Open watches one client address may hold; more get 429. Default 1000. */
  maxWatchesPerClient?: number;
  /** Bytes queued for one watch stream before it is ended as a client that does not read. Default 8 MiB. */
  maxWatchBufferBytes?: number;
  /**
   * TLS and the credentials of the https listeners (listenTlsTcp, listenTlsUnix):
   * serving key and certificate, the CA of client certificates, and the
   * bearer tokens. The plain listeners (listenTcp, listenUnix) are not authenticated.
   */
  tls?: {
    key: string;
    cert: string;
    clientCA?: string;
    tokens: ReadonlyMap<string, Identity>;
  };
  /** Serves pods/log, pods/exec and pods/attach (see ./streaming.ts); without it they are 404. */
  streams?: PodStreams;
}

/** Paths anyone may read without a credential (Kubernetes' system:public-info-viewer). */
const PUBLIC_PATHS = new Set(['/healthz', '/livez', '/readyz', '/version']);

/** The HTTP front of a Registry. */
export class ApiHttpServer {
  private readonly registry: Registry;
  private readonly log: Logger;
  private readonly servers: Server[] = [];
  private readonly maxBody: number;
  private readonly bookmarkMs: number;
  private readonly openWatches = new Set<() => void>();
  private readonly ready: () => boolean;
  private readonly watchLimiter: WatchLimiter;
  private readonly maxWatchBuffer: number;
  private readonly tls: ApiHttpServerOptions['tls'];
  private address = '127.0.0.1:6443';
  private readonly streams: PodStreams | undefined;

  constructor(options: ApiHttpServerOptions) {
    this.tls = options.tls;
    this.streams = options.streams;
    this.registry = options.registry;
    this.log = options.logger ?? nopLogger;
    this.maxBody = options.maxBodyBytes ?? 3 * 1024 * 1024;
    this.bookmarkMs = options.bookmarkIntervalMs ?? 10_000;
    this.ready = options.ready ?? (() => true);
    this.watchLimiter = new WatchLimiter(options.maxWatchesPerClient ?? 1000);
    this.maxWatchBuffer = options.maxWatchBufferBytes ?? 8 * 1024 * 1024;
  }

  private newServer(secure = false): Server {
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch((err) => {
        // drain what is left of the body before answering, so the answer does
        // not race the client's upload into a reset connection
        if (!req.complete) {
          req.resume();
          lingerThenClose(req);
        }
        this.fail(res, err);
      });
    };
    let s: Server;
    if (secure) {
      if (!this.tls)
        throw new TendrilError(
          'APISERVER_LISTEN',
          'an https listener needs a serving certificate',
          {
            hint: 'pass --tls-cert-file and --tls-private-key-file',
          },
        );
      s = createHttpsServer(
        {
          key: this.tls.key,
          cert: this.tls.cert,
          ...(this.tls.clientCA ? { ca: this.tls.clientCA, requestCert: true } : {}),
          rejectUnauthorized: false, // a client without a certificate may still send a token
        },
        handler,
      ) as unknown as Server;
    } else {
      s = createServer(handler);
    }
    s.keepAliveTimeout = 65_000;
    s.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      try {
        this.upgrade(req, socket, head);
      } catch (err) {
        const st =
          err instanceof ApiError
            ? err.status
            : internalError(err instanceof Error ? err.message : String(err)).status;
        if (!(err instanceof ApiError)) this.log.error('upgrade failed', { err });
        const text = JSON.stringify(st);
        socket.end(
          `HTTP/1.1 ${st.code} ${st.reason ?? 'Error'}\r\nContent-Type: application/json\r\n` +
            `Content-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
        );
      }
    });
    // After listen, a socket error (e.g. EMFILE on accept) is logged, not thrown.
    s.on('error', (err) => this.log.error('API server socket error', { err }));
    this.servers.push(s);
    return s;
  }

  /**
   * Listens on host:port (port 0 picks one); returns the bound port.
   * @throws TendrilError `APISERVER_LISTEN` (e.g. port in use).
   */
  async listenTcp(host: string, port: number, secure = false): Promise<number> {
    const s = this.newServer(secure);
    await new Promise<void>((resolve, reject) => {
      s.once('error', (err) =>
        reject(
          new TendrilError('APISERVER_LISTEN', `listen on ${host}:${port}: ${err.message}`, {
            hint: 'pick another --listen port',
            cause: err,
          }),
        ),
      );
      s.listen(port, host, () => resolve());
    });
    const bound = (s.address() as AddressInfo).port;
    this.address = `${host}:${bound}`;
    return bound;
  }

  /**
   * Listens on a bound TCP socket given by fd (see ./netns-listen.ts: a socket
   * made in another network namespace); returns the bound port. `label`
   * ("172.30.1.10:6443 in netns X") names it in errors. The server owns the
   * fd from here on (closing the server closes it).
   * @throws TendrilError `APISERVER_LISTEN`.
   */
  async listenFd(fd: number, label: string, secure = false): Promise<number> {
    const s = this.newServer(secure);
    await new Promise<void>((resolve, reject) => {
      s.once('error', (err) =>
        reject(
          new TendrilError('APISERVER_LISTEN', `listen on ${label}: ${err.message}`, {
            cause: err,
          }),
        ),
      );
      s.listen({ fd }, () => resolve());
    });
    return (s.address() as AddressInfo).port;
  }

  /**
   * Listens on a Unix socket (a stale socket file is replaced).
   * @throws TendrilError `APISERVER_LISTEN`.
   */
  async listenUnix(path: string, secure = false): Promise<void> {
    if (existsSync(path)) unlinkSync(path);
    const s = this.newServer(secure);
    await new Promise<void>((resolve, reject) => {
      s.once('error', (err) =>
        reject(
          new TendrilError('APISERVER_LISTEN', `listen on unix:${path}: ${err.message}`, {
            cause: err,
          }),
        ),
      );
      s.listen(path, () => resolve());
    });
  }

  /**
   * An upgrade request (WebSocket, or SPDY which is refused): pods/exec and
   * pods/attach, authenticated and authorized as `create` on the subresource.
   */
  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {});
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname.replace(/\/+$/, '');
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/(exec|attach|portforward)$/.exec(
      path,
    );
    if ((req.socket as TLSSocket).encrypted && this.tls) {
      const identity = authenticate(req, this.tls.tokens);
      if (!identity) throw new ApiError(failure(401, 'Unauthorized', 'Unauthorized'));
      if (m) {
        const attrs: RequestAttributes = {
          verb: 'create',
          resource: `pods/${m[3]}`,
          group: '',
          namespace: decodeSegment(m[1]!),
          name: decodeSegment(m[2]!),
        };
        if (!authorize(identity, attrs))
          throw new ApiError(failure(403, 'Forbidden', forbiddenMessage(identity, attrs)));
      }
    }
    if (!m || !this.streams) throw notFoundPath(url.pathname);
    checkQuery(url.searchParams);
    this.streams.upgrade(
      req,
      socket,
      head,
      decodeSegment(m[1]!),
      decodeSegment(m[2]!),
      m[3]!,
      url.searchParams,
    );
  }

  /** Ends open watches and closes the listeners. */
  async close(): Promise<void> {
    this.streams?.close();
    for (const end of [...this.openWatches]) end();
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections?.();
          }),
      ),
    );
  }

  private send(res: ServerResponse, code: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(code, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(text),
      'Cache-Control': 'no-cache, private',
    });
    res.end(text);
  }

  private fail(res: ServerResponse, err: unknown): void {
    let status: Status;
    if (err instanceof ApiError) status = err.status;
    else {
      this.log.error('request failed', { err });
      status = internalError(err instanceof Error ? err.message : String(err)).status;
    }
    if (res.headersSent) {
      res.end();
      return;
    }
    this.send(res, status.code, status);
  }

  private async readBody(req: IncomingMessage): Promise<unknown> {
    const ct = (req.headers['content-type'] ?? 'application/json').split(';')[0]!.trim();
    if (ct === 'application/vnd.kubernetes.protobuf') {
      // kubectl create/run send protobuf (see ./protobuf.ts)
      checkDeclaredLength(req, this.maxBody);
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const c of req) {
        size += (c as Buffer).length;
        if (size > this.maxBody) throw tooLarge(this.maxBody);
        chunks.push(c as Buffer);
      }
      return decodeProtobufObject(Buffer.concat(chunks));
    }
    if (
      ct.includes('protobuf') ||
      ct.includes('cbor') ||
      ct.includes('yaml') ||
      ct === 'application/apply-patch+yaml'
    ) {
      req.resume();
      throw new ApiError(
        failure(
          415,
          'UnsupportedMediaType',
          `the body of the request was in an unknown format - accepted media types include: application/json, application/merge-patch+json, application/strategic-merge-patch+json, application/json-patch+json (got "${ct}")`,
        ),
      );
    }
    checkDeclaredLength(req, this.maxBody);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > this.maxBody) throw tooLarge(this.maxBody);
      chunks.push(c as Buffer);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    if (text.trim() === '') return undefined;
    try {
      return JSON.parse(text);
    } catch (err) {
      throw badRequest(`error decoding request body as JSON: ${(err as Error).message}`);
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    this.log.debug('request', { method, path: url.pathname + url.search });
    // https listeners authenticate every request; plain ones (the lab's own socket) are trusted
    let identity: Identity | undefined;
    if ((req.socket as TLSSocket).encrypted && this.tls) {
      identity = authenticate(req, this.tls.tokens);
      if (!identity && !PUBLIC_PATHS.has(path)) {
        req.resume();
        throw new ApiError(failure(401, 'Unauthorized', 'Unauthorized'));
      }
    }
    if (path === '/healthz' || path === '/livez' || path === '/readyz') {
      const ok = path !== '/readyz' || this.ready();
      res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain' });
      res.end(ok ? 'ok' : 'not ready');
      return;
    }
    if (path === '/version') return this.send(res, 200, SERVER_VERSION);
    if (path === '/api') return this.send(res, 200, apiVersions(this.address));
    if (path === '/apis') return this.send(res, 200, apiGroupList());
    if (path === '/openapi/v3') return this.send(res, 200, openapiV3Index());
    if (path.startsWith('/openapi/v3/')) {
      const m = /^\/openapi\/v3\/(?:api\/([^/]+)|apis\/([^/]+)\/([^/]+))$/.exec(path);
      const doc = m ? (m[1] ? openapiV3Doc('', m[1]) : openapiV3Doc(m[2]!, m[3]!)) : undefined;
      if (!doc) throw notFoundPath(url.pathname);
      return this.send(res, 200, doc);
    }
    const seg = path.split('/').slice(1).map(decodeSegment);
    let group: string;
    let version: string;
    let rest: string[];
    if (seg[0] === 'api' && seg.length >= 2) {
      group = '';
      version = seg[1]!;
      rest = seg.slice(2);
    } else if (seg[0] === 'apis' && seg.length >= 2) {
      group = seg[1]!;
      if (seg.length === 2) {
        const g = apiGroup(group);
        if (!g) throw notFoundPath(url.pathname);
        return this.send(res, 200, g);
      }
      version = seg[2]!;
      rest = seg.slice(3);
    } else {
      throw notFoundPath(url.pathname);
    }
    if (rest.length === 0) {
      const list = resourceList(group, version);
      if (!list) throw notFoundPath(url.pathname);
      return this.send(res, 200, list);
    }
    // Resource routing: [namespaces/NS/]PLURAL[/NAME[/SUB]]
    let namespace: string | undefined;
    if (
      rest[0] === 'namespaces' &&
      rest.length >= 3 &&
      group === '' &&
      !['status', 'finalize'].includes(rest[2]!)
    ) {
      namespace = rest[1];
      rest = rest.slice(2);
    } else if (rest[0] === 'namespaces' && rest.length >= 3 && group !== '') {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const info = resourceForPath(group, version, rest[0]!);
    if (!info) throw notFoundPath(url.pathname);
    if (namespace !== undefined && !info.namespaced) throw notFoundPath(url.pathname);
    const name = rest[1];
    let sub = rest[2];
    if (rest.length > 3) throw notFoundPath(url.pathname);
    if (sub === 'finalize' && info.kind === 'Namespace') sub = undefined;
    if (sub !== undefined && !info.subresources.includes(sub)) throw notFoundPath(url.pathname);
    const q = url.searchParams;
    checkQuery(q);
    if (identity) {
      const attrs: RequestAttributes = {
        verb: verbOf(method, name, q),
        resource: sub ? `${info.plural}/${sub}` : info.plural,
        group,
        ...(namespace !== undefined ? { namespace } : {}),
        ...(name !== undefined ? { name } : {}),
      };
      if (!authorize(identity, attrs)) {
        req.resume();
        throw new ApiError(
          failure(403, 'Forbidden', forbiddenMessage(identity, attrs), {
            ...(name !== undefined ? { name } : {}),
            group,
            kind: info.plural,
          }),
        );
      }
    }
    const dryRun = q.getAll('dryRun').includes('All');
    if (info.kind === 'Pod' && name !== undefined && namespace !== undefined) {
      if (sub === 'log' && (method === 'GET' || method === 'HEAD')) {
        if (!this.streams) throw notFoundPath(url.pathname);
        return this.streams.serveLog(req, res, namespace, name, q);
      }
      if (sub === 'exec' || sub === 'attach') {
        req.resume();
        throw badRequest(
          `pods/${sub} is a streaming subresource: upgrade the connection to a WebSocket (subprotocol v5.channel.k8s.io or v4.channel.k8s.io)`,
        );
      }
      if (sub === 'portforward') {
        req.resume();
        throw badRequest(
          'pods/portforward is a streaming subresource: upgrade the connection to a WebSocket (subprotocol SPDY/3.1+portforward.k8s.io) or to SPDY/3.1',
        );
      }
    }
    if (sub === 'scale' && name !== undefined)
      return this.scale(req, res, info, namespace, name, method, dryRun);
    if (info.group === 'events.k8s.io') return this.eventsV1(req, res, namespace, name, method, q);
    switch (method) {
      case 'GET':
        if (name === undefined) {
          const opts = listOptions(q, namespace, info.kind);
          if (q.get('watch') === 'true' || q.get('watch') === '1')
            return this.watch(req, res, info, opts, q, wantsTable(req));
          checkListVersion(q, this.registry.currentRevision());
          const list = this.registry.listShared(info, opts);
          if (wantsTable(req))
            return this.send(
              res,
              200,
              toTable(info.kind, list.items, list.metadata.resourceVersion, includeObject(q)),
            );
          return this.send(res, 200, list);
        } else {
          const obj = this.registry.get(info, namespace, name);
          if (wantsTable(req))
            return this.send(
              res,
              200,
              toTable(info.kind, [obj], obj.metadata.resourceVersion ?? '', includeObject(q)),
            );
          return this.send(res, 200, obj);
        }
      case 'POST': {
        if (name !== undefined) throw methodNotAllowed();
        const body = (await this.readBody(req)) as KubeObject;
        if (!body) throw badRequest('the request body is empty: send the object to create');
        const created = await this.registry.create(info, namespace, body, { dryRun });
        return this.send(res, 201, created);
      }
      case 'PUT': {
        if (name === undefined) throw methodNotAllowed();
        const body = (await this.readBody(req)) as KubeObject;
        if (!body) throw badRequest('the request body is empty: send the object to update');
        const updated = await this.registry.update(info, namespace, name, body, {
          subresource: sub,
          dryRun,
        });
        return this.send(res, 200, updated);
      }
      case 'PATCH': {
        if (name === undefined) throw methodNotAllowed();
        const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
        if (
          ct !== 'application/merge-patch+json' &&
          ct !== 'application/strategic-merge-patch+json' &&
          ct !== 'application/json-patch+json'
        ) {
          throw new ApiError(
            failure(
              415,
              'UnsupportedMediaType',
              `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got "${ct}")`,
            ),
          );
        }
        const patch = await this.readBody(req);
        const type =
          ct === 'application/json-patch+json'
            ? 'json'
            : ct === 'application/strategic-merge-patch+json'
              ? 'strategic'
              : 'merge';
        const updated = await this.registry.patch(
          info,
          namespace,
          name,
          patch ?? (type === 'json' ? [] : {}),
          { subresource: sub, dryRun, type, maxBytes: this.maxBody },
        );
        return this.send(res, 200, updated);
      }
      case 'DELETE': {
        const body = (await this.readBody(req)) as Record<string, unknown> | undefined;
        const opts = deleteOptions(q, body);
        const bodyDryRun =
          Array.isArray(body?.dryRun) && (body.dryRun as unknown[]).includes('All');
        if (dryRun || bodyDryRun) {
          // A dry run deletes nothing: it answers what would be deleted (kubectl sends it in the body).
          if (name === undefined)
            return this.send(
              res,
              200,
              this.registry.list(info, listOptions(q, namespace, info.kind)),
            );
          return this.send(res, 200, this.registry.get(info, namespace, name));
        }
        if (name === undefined) {
          const list = this.registry.list(info, listOptions(q, namespace, info.kind));
          const deleted: KubeObject[] = [];
          for (const o of list.items) {
            try {
              deleted.push(
                await this.registry.delete(info, o.metadata.namespace, o.metadata.name!, opts),
              );
            } catch (err) {
              if (!isNotFound(err)) throw err;
            }
          }
          return this.send(res, 200, { ...list, items: deleted });
        }
        if (sub) throw methodNotAllowed();
        const gone = await this.registry.delete(info, namespace, name, opts);
        return this.send(
          res,
          200,
          gone.metadata.deletionTimestamp || info.kind !== 'Namespace'
            ? gone
            : success({ name, kind: info.plural, uid: gone.metadata.uid }),
        );
      }
      default:
        throw methodNotAllowed();
    }
  }

  /**
   * events.k8s.io/v1: a read-only view of the core v1 Events (the lab's
   * components write core Events; Kubernetes stores both as one).
   */
  private eventsV1(
    req: IncomingMessage,
    res: ServerResponse,
    namespace: string | undefined,
    name: string | undefined,
    method: string,
    q: URLSearchParams,
  ): void {
    const core = resourceForPath('', 'v1', 'events')!;
    if (method !== 'GET') {
      req.resume();
      throw methodNotAllowed(
        'events.k8s.io/v1 is a read-only view here: create, update and delete core v1 Events (/api/v1/namespaces/NS/events)',
      );
    }
    if (name !== undefined) {
      const e = toEventsV1(this.registry.get(core, namespace, name));
      if (wantsTable(req))
        return this.send(
          res,
          200,
          toTable('Event', [e], e.metadata.resourceVersion ?? '', includeObject(q)),
        );
      return this.send(res, 200, e);
    }
    const opts = listOptions(q, namespace, 'Event');
    if (q.get('watch') === 'true' || q.get('watch') === '1')
      return this.watch(req, res, core, opts, q, wantsTable(req), toEventsV1);
    const list = this.registry.list(core, opts);
    const items = list.items.map(toEventsV1);
    if (wantsTable(req))
      return this.send(
        res,
        200,
        toTable('Event', items, list.metadata.resourceVersion, includeObject(q)),
      );
    return this.send(res, 200, { ...list, apiVersion: 'events.k8s.io/v1', items });
  }

  /** The scale subresource (autoscaling/v1 Scale) of Deployments, for `kubectl scale`. */
  private async scale(
    req: IncomingMessage,
    res: ServerResponse,
    info: ResourceInfo,
    namespace: string | undefined,
    name: string,
    method: string,
    dryRun: boolean,
  ): Promise<void> {
    const toScale = (d: KubeObject) => ({
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: {
        name: d.metadata.name,
        namespace: d.metadata.namespace,
        uid: d.metadata.uid,
        resourceVersion: d.metadata.resourceVersion,
        creationTimestamp: d.metadata.creationTimestamp,
      },
      spec: { replicas: d.spec?.replicas ?? 1 },
      status: {
        replicas: d.status?.replicas ?? 0,
        selector: Object.entries((d.spec?.selector?.matchLabels ?? {}) as Record<string, string>)
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
      },
    });
    if (method === 'GET')
      return this.send(res, 200, toScale(this.registry.get(info, namespace, name)));
    if (method !== 'PUT' && method !== 'PATCH') throw methodNotAllowed();
    const body = (await this.readBody(req)) as
      { spec?: { replicas?: unknown }; metadata?: { resourceVersion?: string } } | undefined;
    const replicas = body?.spec?.replicas;
    if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
      throw invalidScale(name, replicas);
    }
    const patch: Record<string, unknown> = { spec: { replicas } };
    if (method === 'PUT' && body?.metadata?.resourceVersion)
      patch.metadata = { resourceVersion: body.metadata.resourceVersion };
    const d = await this.registry.patch(info, namespace, name, patch, { dryRun });
    return this.send(res, 200, toScale(d));
  }

  private watch(
    req: IncomingMessage,
    res: ServerResponse,
    info: ResourceInfo,
    opts: ListOptions,
    q: URLSearchParams,
    table = false,
    convert: (o: KubeObject) => KubeObject = (o) => o,
  ): void {
    const rv = q.get('resourceVersion') ?? '';
    const bookmarks = q.get('allowWatchBookmarks') === 'true';
    const timeoutS = Number(q.get('timeoutSeconds') ?? '0'); // bounded by checkQuery
    const pending: string[] = [];
    let started = false;
    let ended = false;
    const write = (line: string) => {
      if (ended) return;
      if (!started) pending.push(line);
      else if (res.writableLength > this.maxWatchBuffer) {
        // A watcher that does not read (its socket buffer is full): cut it, dropping what is
        // queued (it resumes from its last resourceVersion, or relists after 410).
        this.log.warn('cutting a watch whose client does not read', {
          resource: info.plural,
          queuedBytes: res.writableLength,
        });
        end();
        res.destroy();
      } else res.write(line);
    };
    const release = this.watchLimiter.acquire(req);
    let handle;
    try {
      handle = this.registry.watch(info, { ...opts, resourceVersion: rv }, (raw) => {
        const ev = { type: raw.type, object: convert(raw.object) };
        write(
          JSON.stringify({
            type: ev.type,
            // kubectl get -w asks for Tables: each event carries a one-row Table.
            object: table
              ? toTable(
                  info.kind,
                  [ev.object],
                  ev.object.metadata.resourceVersion ?? '',
                  includeObject(q),
                )
              : ev.object,
          }) + '\n',
        );
      });
    } catch (err) {
      release();
      if (err instanceof ApiError && err.httpCode === 410) {
        // Kubernetes answers 200 and sends an ERROR event carrying the 410 Status.
        res.writeHead(200, {
          'Content-Type': 'application/json',
          'Transfer-Encoding': 'chunked',
          'Cache-Control': 'no-cache, private',
        });
        res.end(JSON.stringify({ type: 'ERROR', object: err.status }) + '\n');
        return;
      }
      throw err;
    }
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Transfer-Encoding': 'chunked',
      'Cache-Control': 'no-cache, private',
    });
    res.flushHeaders();
    started = true;
    if (pending.length) res.write(pending.join(''));
    const timers: NodeJS.Timeout[] = [];
    const end = () => {
      if (ended) return;
      ended = true;
      release();
      handle.close();
      for (const t of timers) clearTimeout(t);
      this.openWatches.delete(end);
      res.end();
    };
    this.openWatches.add(end);
    if (bookmarks) {
      const t = setInterval(() => {
        write(
          JSON.stringify({
            type: 'BOOKMARK',
            object: {
              kind: info.kind,
              apiVersion: info.group ? `${info.group}/${info.version}` : info.version,
              metadata: { resourceVersion: String(this.registry.currentRevision()) },
            },
          }) + '\n',
        );
      }, this.bookmarkMs);
      t.unref();
      timers.push(t);
    }
    if (timeoutS > 0) {
      const t = setTimeout(end, timeoutS * 1000);
      t.unref();
      timers.push(t);
    }
    req.on('close', end);
    res.on('close', end);
  }
}

/**
 * After an answer sent before the request body was read (413, 415, 400):
 * Node discards the rest of the body; a client that keeps sending (or never
 * sends what it declared) is cut after 5 s.
 */
function lingerThenClose(req: IncomingMessage): void {
  const sock = req.socket as IncomingMessage['socket'] | null;
  if (!sock || sock.destroyed) return;
  const t = setTimeout(() => sock.destroy(), 5000);
  t.unref();
  req.once('end', () => clearTimeout(t));
  sock.once('close', () => clearTimeout(t));
}

function invalidScale(name: string, replicas: unknown): ApiError {
  return new ApiError(
    failure(
      422,
      'Invalid',
      `Scale.autoscaling "${name}" is invalid: spec.replicas: Invalid value: ${JSON.stringify(replicas ?? null)}: must be greater than or equal to 0`,
      {
        name,
        group: 'autoscaling',
        kind: 'Scale',
        causes: [
          {
            reason: 'FieldValueInvalid',
            message: 'must be greater than or equal to 0',
            field: 'spec.replicas',
          },
        ],
      },
    ),
  );
}

/**
 * Lists are served from the current state: `resourceVersionMatch=Exact` for an
 * older version is 410 Expired, and a version newer than the store is 504, as
 * Kubernetes answers ("Too large resource version").
 */
function checkListVersion(q: URLSearchParams, current: number): void {
  const rvText = q.get('resourceVersion');
  if (!rvText || rvText === '0') return;
  const rv = Number(rvText);
  if (!Number.isInteger(rv) || rv < 0) throw badRequest(`invalid resource version "${rvText}"`);
  if (rv > current) {
    throw new ApiError(
      failure(504, 'Timeout', `Too large resource version: ${rv}, current: ${current}`, {
        causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }],
      }),
    );
  }
  if (q.get('resourceVersionMatch') === 'Exact' && rv !== current) {
    throw expired(`too old resource version: ${rv} (${current})`);
  }
}

function notFoundPath(path: string): ApiError {
  return new ApiError(
    failure(404, 'NotFound', `the server could not find the requested resource (${path})`, {}),
  );
}

function listOptions(q: URLSearchParams, namespace: string | undefined, kind: string): ListOptions {
  const opts: ListOptions = {};
  if (namespace) opts.namespace = namespace;
  const ls = q.get('labelSelector');
  if (ls) opts.labelSelector = parseLabelSelector(ls);
  const fs = q.get('fieldSelector');
  if (fs) opts.fieldSelector = parseFieldSelector(fs, kind);
  return opts;
}

function deleteOptions(
  q: URLSearchParams,
  body: Record<string, unknown> | undefined,
): DeleteOptions {
  const o: DeleteOptions = {};
  const pp = (q.get('propagationPolicy') ?? body?.propagationPolicy) as string | undefined;
  if (pp) {
    if (!['Background', 'Foreground', 'Orphan'].includes(pp))
      throw badRequest(
        `propagationPolicy "${pp}" is not supported (Background, Foreground, Orphan)`,
      );
    o.propagationPolicy = pp as DeleteOptions['propagationPolicy'];
  }
  const gp = q.get('gracePeriodSeconds') ?? body?.gracePeriodSeconds;
  if (gp !== undefined && gp !== null)
    o.gracePeriodSeconds = integerParam('gracePeriodSeconds', String(gp), 0, 2 ** 31 - 1);
  if (body?.orphanDependents === true) o.propagationPolicy = 'Orphan';
  const pre = body?.preconditions as DeleteOptions['preconditions'] | undefined;
  if (pre) o.preconditions = pre;
  return o;
}

function wantsTable(req: IncomingMessage): boolean {
  const accept = req.headers.accept ?? '';
  return /as=Table/.test(accept) && /g=meta\.k8s\.io/.test(accept);
}

function includeObject(q: URLSearchParams): 'None' | 'Object' | 'Metadata' {
  const v = q.get('includeObject');
  return v === 'None' || v === 'Object' ? v : 'Metadata';
}

/** Kubernetes' request verb of a method on a resource path. */
function verbOf(method: string, name: string | undefined, q: URLSearchParams): string {
  switch (method) {
    case 'GET':
    case 'HEAD':
      if (name !== undefined) return 'get';
      return q.get('watch') === 'true' || q.get('watch') === '1' ? 'watch' : 'list';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return name === undefined ? 'deletecollection' : 'delete';
    default:
      return method.toLowerCase();
  }
}

/** 405 MethodNotAllowed, as kube-apiserver answers a verb the resource does not take; MESSAGE says why. */
function methodNotAllowed(
  message = 'the server does not allow this method on the requested resource',
): ApiError {
  return new ApiError(failure(405, 'MethodNotAllowed', message));
}

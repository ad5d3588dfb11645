/**
 * A small typed REST client for the Kubernetes API (Tendril's lab API server,
 * or any API server reachable over plain HTTP): get, list, create, update,
 * patch (merge), delete and watch for any served kind, addressed by
 * apiVersion + kind. The server is `http://host:port` or `unix:/path/to.sock`.
 * Failures come back as ApiError carrying the server's Status; an unreachable
 * server is a TendrilError `K8S_UNREACHABLE` with a hint.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { createInterface } from 'node:readline';
import { TendrilError, isNotFound } from '../util/errors.js';
import { isIdempotent, isStaleSocketError, KeepAliveAgent } from './keepalive-agent.js';
import type { KubeList, KubeObject, WatchEventObject } from './objects.js';
import { resourceForKind, resourcePath, type ResourceInfo } from './resources.js';
import { ApiError, failure, isStatus } from './status.js';

/** Options of KubeClient. */
export interface KubeClientOptions {
  /** `http://127.0.0.1:PORT` or `unix:/path/api.sock`. */
  server: string;
  /** Per-request timeout (not for watches). Default 30 s. */
  timeoutMs?: number;
  /** Extra request headers. */
  headers?: Record<string, string>;
}

/** Options of list and watch. */
export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

/** Options of watch. */
export interface WatchOptions extends ListOptions {
  resourceVersion?: string;
  allowWatchBookmarks?: boolean;
  timeoutSeconds?: number;
}

/** A running watch. `done` resolves when the stream ends (server timeout, close, or error). */
export interface ClientWatch {
  close(): void;
  done: Promise<void>;
}

/** Options of delete. */
export interface ClientDeleteOptions {
  namespace?: string;
  propagationPolicy?: 'Background' | 'Foreground' | 'Orphan';
  gracePeriodSeconds?: number;
}

interface RawResponse {
  status: number;
  body: string;
}

/**
 * Resolves apiVersion + kind to the served resource.
 * @throws ApiError 400 naming the kind.
 */
export function resourceOf(apiVersion: string, kind: string): ResourceInfo {
  const info = resourceForKind(apiVersion, kind);
  if (!info)
    throw new ApiError(
      failure(400, 'BadRequest', `no matches for kind "${kind}" in version "${apiVersion}"`),
    );
  return info;
}

/** REST client. Call close() to free pooled connections. */
export class KubeClient {
  readonly server: string;
  private readonly base: { socketPath?: string; host?: string; port?: number; prefix: string };
  private readonly agent = new KeepAliveAgent({ maxSockets: 16 });
  private readonly timeoutMs: number;
  private readonly headers: Record<string, string>;

  /** @throws TendrilError `K8S_BAD_SERVER` for a server string that is not http:// or unix:. */
  constructor(options: KubeClientOptions) {
    this.server = options.server;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.headers = options.headers ?? {};
    if (options.server.startsWith('unix:')) {
      this.base = { socketPath: options.server.replace(/^unix:(\/\/)?/, ''), prefix: '' };
    } else {
      let u: URL;
      try {
        u = new URL(options.server);
      } catch {
        throw new TendrilError('K8S_BAD_SERVER', `invalid API server address "${options.server}"`, {
          hint: 'use http://HOST:PORT or unix:/path/to/socket',
        });
      }
      if (u.protocol !== 'http:') {
        throw new TendrilError(
          'K8S_BAD_SERVER',
          `API server address "${options.server}": only http:// and unix: are supported`,
          { hint: 'the lab API server speaks plain HTTP on loopback' },
        );
      }
      this.base = {
        host: u.hostname.replace(/^\[|\]$/g, ''),
        port: Number(u.port || 80),
        prefix: u.pathname.replace(/\/$/, ''),
      };
    }
  }

  /** Frees pooled connections. */
  close(): void {
    this.agent.destroy();
  }

  private open(
    method: string,
    path: string,
    headers: Record<string, string>,
    timeoutMs: number | undefined,
    body?: string,
    retried = false,
  ): Promise<IncomingMessage> {
    this.agent.discardStale();
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          ...(this.base.socketPath
            ? { socketPath: this.base.socketPath }
            : { host: this.base.host, port: this.base.port }),
          path: this.base.prefix + path,
          method,
          agent: this.agent,
          headers: {
            Accept: 'application/json',
            ...this.headers,
            ...headers,
            ...(body !== undefined ? { 'Content-Length': String(Buffer.byteLength(body)) } : {}),
          },
        },
        resolve,
      );
      if (timeoutMs) {
        req.setTimeout(timeoutMs, () =>
          req.destroy(
            new TendrilError(
              'K8S_TIMEOUT',
              `${method} ${path}: no answer from ${this.server} within ${timeoutMs} ms`,
              { hint: 'is the API server overloaded or stuck? see `tendril lab logs`' },
            ),
          ),
        );
      }
      req.on('error', (err) => {
        if (err instanceof TendrilError) return reject(err);
        // The server closed the kept-alive connection under the request: it
        // read nothing, so an idempotent request goes again on a new one.
        if (!retried && isIdempotent(method) && isStaleSocketError(req, err))
          return resolve(this.open(method, path, headers, timeoutMs, body, true));
        reject(
          new TendrilError(
            'K8S_UNREACHABLE',
            `${method} ${path}: cannot reach the API server at ${this.server}: ${err.message}`,
            {
              hint: 'is the cluster running? check `tendril lab list` and `tendril config current-context`',
              cause: err,
            },
          ),
        );
      });
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  /**
   * Sends a request and returns the parsed JSON body.
   * @throws ApiError for a non-2xx answer, TendrilError `K8S_UNREACHABLE`/`K8S_TIMEOUT`.
   */
  async request<T = unknown>(
    method: string,
    path: string,
    options: { body?: unknown; contentType?: string; accept?: string } = {},
  ): Promise<T> {
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['Content-Type'] = options.contentType ?? 'application/json';
    if (options.accept) headers.Accept = options.accept;
    const res = await this.open(method, path, headers, this.timeoutMs, body);
    const raw: RawResponse = { status: res.statusCode ?? 0, body: await readAll(res) };
    let parsed: unknown;
    try {
      parsed = raw.body ? JSON.parse(raw.body) : undefined;
    } catch {
      parsed = undefined;
    }
    if (raw.status < 200 || raw.status >= 300) {
      if (isStatus(parsed)) throw new ApiError(parsed);
      throw new ApiError(
        failure(
          raw.status,
          'Unknown',
          `${method} ${path}: HTTP ${raw.status}: ${raw.body.slice(0, 200)}`,
        ),
      );
    }
    return parsed as T;
  }

  /** GET one object. @throws ApiError (404 NotFound, ...). */
  get<T extends KubeObject = KubeObject>(
    apiVersion: string,
    kind: string,
    name: string,
    options: { namespace?: string } = {},
  ): Promise<T> {
    const info = resourceOf(apiVersion, kind);
    return this.request<T>(
      'GET',
      resourcePath(info, { namespace: ns(info, options.namespace), name }),
    );
  }

  /** GET one object, or undefined if it does not exist. */
  async getOrUndefined<T extends KubeObject = KubeObject>(
    apiVersion: string,
    kind: string,
    name: string,
    options: { namespace?: string } = {},
  ): Promise<T | undefined> {
    try {
      return await this.get<T>(apiVersion, kind, name, options);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Lists objects (all namespaces when namespace is omitted). */
  list<T extends KubeObject = KubeObject>(
    apiVersion: string,
    kind: string,
    options: ListOptions = {},
  ): Promise<KubeList<T>> {
    const info = resourceOf(apiVersion, kind);
    return this.request<KubeList<T>>(
      'GET',
      resourcePath(info, { namespace: info.namespaced ? options.namespace : undefined }) +
        query(options),
    );
  }

  /** Creates an object (namespace from the object, else `options.namespace`, else "default"). */
  create<T extends KubeObject = KubeObject>(
    obj: T,
    options: { namespace?: string; dryRun?: boolean } = {},
  ): Promise<T> {
    const info = resourceOf(obj.apiVersion, obj.kind);
    const namespace = info.namespaced
      ? (obj.metadata?.namespace ?? options.namespace ?? 'default')
      : undefined;
    return this.request<T>(
      'POST',
      resourcePath(info, { namespace }) + (options.dryRun ? '?dryRun=All' : ''),
      { body: obj },
    );
  }

  /** Replaces an object (PUT); a resourceVersion in it makes the write conditional (409 if stale). */
  update<T extends KubeObject = KubeObject>(
    obj: T,
    options: { subresource?: 'status'; dryRun?: boolean } = {},
  ): Promise<T> {
    const info = resourceOf(obj.apiVersion, obj.kind);
    const namespace = info.namespaced ? (obj.metadata.namespace ?? 'default') : undefined;
    return this.request<T>(
      'PUT',
      resourcePath(info, { namespace, name: obj.metadata.name, subresource: options.subresource }) +
        (options.dryRun ? '?dryRun=All' : ''),
      { body: obj },
    );
  }

  /** Replaces the status of an object (PUT .../status). */
  updateStatus<T extends KubeObject = KubeObject>(obj: T): Promise<T> {
    return this.update(obj, { subresource: 'status' });
  }

  /**
   * Patches an object: JSON merge patch (default), strategic merge patch, or
   * RFC 6902 JSON patch (`patch` is then the list of operations).
   */
  patch<T extends KubeObject = KubeObject>(
    apiVersion: string,
    kind: string,
    name: string,
    patch: unknown,
    options: {
      namespace?: string;
      subresource?: 'status' | 'scale';
      type?: 'merge' | 'strategic' | 'json';
      /** Server-side dry run: validated and returned, not written. */
      dryRun?: boolean;
    } = {},
  ): Promise<T> {
    const info = resourceOf(apiVersion, kind);
    const ct =
      options.type === 'strategic'
        ? 'application/strategic-merge-patch+json'
        : options.type === 'json'
          ? 'application/json-patch+json'
          : 'application/merge-patch+json';
    return this.request<T>(
      'PATCH',
      resourcePath(info, {
        namespace: ns(info, options.namespace),
        name,
        subresource: options.subresource,
      }) + (options.dryRun ? '?dryRun=All' : ''),
      { body: patch, contentType: ct },
    );
  }

  /** Deletes an object; returns what the server returned (the object, or a Status). */
  delete(
    apiVersion: string,
    kind: string,
    name: string,
    options: ClientDeleteOptions = {},
  ): Promise<KubeObject> {
    const info = resourceOf(apiVersion, kind);
    const q = new URLSearchParams();
    if (options.propagationPolicy) q.set('propagationPolicy', options.propagationPolicy);
    if (options.gracePeriodSeconds !== undefined)
      q.set('gracePeriodSeconds', String(options.gracePeriodSeconds));
    const qs = q.toString();
    return this.request<KubeObject>(
      'DELETE',
      resourcePath(info, { namespace: ns(info, options.namespace), name }) + (qs ? `?${qs}` : ''),
    );
  }

  /**
   * Watches a resource; `onEvent` gets each event in order (ADDED, MODIFIED,
   * DELETED, BOOKMARK, ERROR — a 410 arrives as an ERROR event with a Status).
   * @throws ApiError if the server refuses the watch.
   */
  async watch<T extends KubeObject = KubeObject>(
    apiVersion: string,
    kind: string,
    options: WatchOptions,
    onEvent: (ev: WatchEventObject<T>) => void,
  ): Promise<ClientWatch> {
    const info = resourceOf(apiVersion, kind);
    const q = new URLSearchParams(query(options).slice(1));
    q.set('watch', 'true');
    if (options.resourceVersion !== undefined) q.set('resourceVersion', options.resourceVersion);
    if (options.allowWatchBookmarks) q.set('allowWatchBookmarks', 'true');
    if (options.timeoutSeconds) q.set('timeoutSeconds', String(options.timeoutSeconds));
    const path =
      resourcePath(info, { namespace: info.namespaced ? options.namespace : undefined }) + `?${q}`;
    const res = await this.open('GET', path, {}, undefined);
    if ((res.statusCode ?? 0) !== 200) {
      const body = await readAll(res);
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        parsed = undefined;
      }
      throw isStatus(parsed)
        ? new ApiError(parsed)
        : new ApiError(
            failure(res.statusCode ?? 500, 'Unknown', `watch ${path}: HTTP ${res.statusCode}`),
          );
    }
    const lines = createInterface({ input: res, crlfDelay: Infinity });
    const done = new Promise<void>((resolve) => {
      lines.on('close', () => resolve());
      // readline re-emits its input's errors (a cut connection): the stream just ends
      lines.on('error', () => resolve());
      res.on('error', () => resolve());
    });
    lines.on('line', (line) => {
      if (!line) return;
      let ev: WatchEventObject<T>;
      try {
        ev = JSON.parse(line) as WatchEventObject<T>;
      } catch {
        return;
      }
      onEvent(ev);
    });
    return {
      close: () => {
        res.destroy();
        lines.close();
      },
      done,
    };
  }

  /** GET /version. */
  version(): Promise<{ major: string; minor: string; gitVersion: string }> {
    return this.request('GET', '/version');
  }

  /** True if /readyz answers ok. */
  async ready(): Promise<boolean> {
    try {
      const res = await this.open('GET', '/readyz', {}, 2000);
      await readAll(res);
      return res.statusCode === 200;
    } catch {
      return false;
    }
  }
}

function ns(info: ResourceInfo, namespace: string | undefined): string | undefined {
  return info.namespaced ? (namespace ?? 'default') : undefined;
}

function query(o: ListOptions): string {
  const q = new URLSearchParams();
  if (o.labelSelector) q.set('labelSelector', o.labelSelector);
  if (o.fieldSelector) q.set('fieldSelector', o.fieldSelector);
  const s = q.toString();
  return s ? `?${s}` : '';
}

async function readAll(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

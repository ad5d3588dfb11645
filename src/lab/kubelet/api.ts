/**
 * The few REST calls the lab kubelet and the run/exec/logs commands make:
 * get, list, watch (newline-delimited JSON events), create, JSON merge patch
 * and delete, over fetch. Failures come back as ApiError (the Kubernetes
 * Status the server sent) or TendrilError LAB_API_UNREACHABLE.
 */
import { request as httpRequest } from 'node:http';
import type { ClientWatch, KubeClient } from '../../k8s/client.js';
import { ApiError, type Status } from '../../k8s/status.js';
import type { KubeList, KubeObject } from '../../k8s/objects.js';
import { TendrilError } from '../../util/errors.js';

/** A watch event as the API server streams it. */
export interface WatchEvent<T extends KubeObject = KubeObject> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

/** Minimal REST client for one API server. */
export class LabApi {
  /**
   * `client`: send through this KubeClient (src/k8s/client.ts; pooled
   * keep-alive connections, for daemons such as the kubelet). Without it every
   * request has its own connection, so a CLI process exits as soon as it is done.
   */
  constructor(
    readonly baseURL: string,
    private readonly client?: KubeClient,
  ) {}

  private async request(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<unknown> {
    if (this.client) return this.client.request(method, path, { body, contentType });
    let res: { status: number; text: string };
    try {
      res = await httpCall(
        this.baseURL + path,
        method,
        body === undefined ? undefined : JSON.stringify(body),
        contentType,
      );
    } catch (err) {
      throw new TendrilError(
        'LAB_API_UNREACHABLE',
        `${method} ${this.baseURL}${path}: ${describeFetchError(err)}`,
        {
          cause: err,
          hint: 'is the lab cluster running? see `tendril lab list`',
        },
      );
    }
    const text = res.text;
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (res.status < 200 || res.status >= 300) {
      const st = json as Status | undefined;
      if (st?.kind === 'Status') throw new ApiError(st);
      throw new ApiError({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: `${method} ${path}: HTTP ${res.status} ${text.slice(0, 200)}`,
        reason: res.status === 404 ? 'NotFound' : 'Unknown',
        code: res.status,
      });
    }
    return json;
  }

  /** GET an object. */
  get<T extends KubeObject = KubeObject>(path: string): Promise<T> {
    return this.request('GET', path) as Promise<T>;
  }

  /** GET a list (query: labelSelector, fieldSelector...). */
  list<T extends KubeObject = KubeObject>(
    path: string,
    query: Record<string, string> = {},
  ): Promise<KubeList<T>> {
    const q = new URLSearchParams(query).toString();
    return this.request('GET', q ? `${path}?${q}` : path) as Promise<KubeList<T>>;
  }

  /** POST an object to a collection. */
  create<T extends KubeObject = KubeObject>(path: string, obj: unknown): Promise<T> {
    return this.request('POST', path, obj) as Promise<T>;
  }

  /** JSON merge patch (RFC 7386). */
  mergePatch<T extends KubeObject = KubeObject>(path: string, patch: unknown): Promise<T> {
    return this.request('PATCH', path, patch, 'application/merge-patch+json') as Promise<T>;
  }

  /** DELETE with optional DeleteOptions body (gracePeriodSeconds, preconditions). */
  delete(
    path: string,
    options?: {
      gracePeriodSeconds?: number;
      preconditions?: { uid?: string; resourceVersion?: string };
    },
  ): Promise<unknown> {
    return this.request(
      'DELETE',
      path,
      options === undefined ? undefined : { kind: 'DeleteOptions', apiVersion: 'v1', ...options },
    );
  }

  /**
   * Watches a collection from `resourceVersion`; calls onEvent per event until
   * the stream ends (resolves) or fails (rejects; an ERROR event with a 410
   * Status rejects with an ApiError whose httpCode is 410). Abort with `signal`.
   */
  async watch(
    path: string,
    query: Record<string, string>,
    onEvent: (ev: WatchEvent) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    if (this.client && path === '/api/v1/pods')
      return this.watchPodsWithClient(this.client, query, onEvent, signal);
    const q = new URLSearchParams({
      ...query,
      watch: 'true',
      allowWatchBookmarks: 'true',
    }).toString();
    let res: Response;
    try {
      res = await fetch(`${this.baseURL}${path}?${q}`, {
        signal,
        headers: { accept: 'application/json' },
      });
    } catch (err) {
      throw new TendrilError('LAB_API_UNREACHABLE', `watch ${path}: ${describeFetchError(err)}`, {
        cause: err,
      });
    }
    if (!res.ok || !res.body) {
      const text = await res.text();
      let st: Status | undefined;
      try {
        st = JSON.parse(text) as Status;
      } catch {
        st = undefined;
      }
      if (st?.kind === 'Status') throw new ApiError(st);
      throw new TendrilError('LAB_API_UNREACHABLE', `watch ${path}: HTTP ${res.status}`);
    }
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const ev = JSON.parse(line) as WatchEvent;
        if (ev.type === 'ERROR') throw new ApiError(ev.object as unknown as Status);
        onEvent(ev);
      }
    }
  }

  private watchPodsWithClient(
    client: KubeClient,
    query: Record<string, string>,
    onEvent: (ev: WatchEvent) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let handle: ClientWatch | undefined;
      let failed = false;
      const fail = (err: unknown) => {
        if (failed) return;
        failed = true;
        handle?.close();
        reject(err);
      };
      client
        .watch(
          'v1',
          'Pod',
          {
            ...(query.fieldSelector ? { fieldSelector: query.fieldSelector } : {}),
            ...(query.labelSelector ? { labelSelector: query.labelSelector } : {}),
            ...(query.resourceVersion ? { resourceVersion: query.resourceVersion } : {}),
            allowWatchBookmarks: true,
          },
          (ev) => {
            if (failed) return;
            if (ev.type === 'ERROR') return fail(new ApiError(ev.object as unknown as Status));
            try {
              onEvent(ev as WatchEvent);
            } catch (err) {
              fail(err);
            }
          },
        )
        .then((w) => {
          handle = w;
          if (failed) w.close();
          if (signal?.aborted) w.close();
          signal?.addEventListener('abort', () => w.close(), { once: true });
          w.done.then(() => {
            if (!failed) resolve();
          }, fail);
        }, fail);
    });
  }
}

/**
 * One HTTP request on its own connection (Connection: close), so a CLI
 * process exits as soon as it is done (pooled keep-alive sockets would hold
 * it for seconds).
 */
export function httpCall(
  url: string,
  method: string,
  body?: string,
  contentType = 'application/json',
  timeoutMs = 30_000,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) {
      headers['content-type'] = contentType;
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    const req = httpRequest(url, { method, headers, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

function describeFetchError(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return `${err.message}${cause}`;
  }
  return String(err);
}

/** The REST path of a namespaced pod (or of the pods collection of a namespace). */
export function podPath(namespace: string, name?: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;
}

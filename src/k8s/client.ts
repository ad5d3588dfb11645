/**
 * A small typed REST client for the Kubernetes API (Tendril's lab API server
 * or a real one): get, list, create, update, patch (merge), delete and watch
 * for any served kind, addressed by apiVersion + kind. The server is
 * `https://host:port`, `http://host:port` or `unix:/path/to.sock`.
 *
 * Authentication as client-go does it: a CA to verify the server (or
 * insecure-skip-tls-verify), a client certificate and key, a bearer token, or
 * a token file re-read when it changes (checked at most once a second by
 * mtime/size, and re-read at least every minute) and at once after a 401.
 * Build the options from a kubeconfig or in-cluster with ./client-config.ts.
 *
 * Failures come back as ApiError carrying the server's Status (a 401 says
 * which credential was refused); an unreachable server is `K8S_UNREACHABLE`,
 * a server certificate the CA does not verify `K8S_TLS_VERIFY`, a client
 * certificate the server refuses `K8S_TLS_CLIENT_CERT`, an unreadable
 * credential file `K8S_BAD_CREDENTIAL`, each naming the server and the source.
 */
import { readFileSync, statSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createInterface } from 'node:readline';
import { TendrilError, isNotFound } from '../util/errors.js';
import {
  isIdempotent,
  isStaleSocketError,
  KeepAliveAgent,
  KeepAliveHttpsAgent,
} from './keepalive-agent.js';
import type { KubeList, KubeObject, WatchEventObject } from './objects.js';
import { resourceForKind, resourcePath, type ResourceInfo } from './resources.js';
import { ApiError, failure, isStatus } from './status.js';

/** TLS settings of KubeClient: PEM text or files (text wins when both are given). */
export interface KubeClientTLS {
  /** CA bundle (PEM) that verifies the server's certificate (kubeconfig certificate-authority-data). */
  ca?: string;
  /** File holding the CA bundle (kubeconfig certificate-authority). */
  caFile?: string;
  /** Client certificate (PEM) (client-certificate-data). */
  cert?: string;
  /** client-certificate. */
  certFile?: string;
  /** Client key (PEM) (client-key-data). */
  key?: string;
  /** client-key. */
  keyFile?: string;
  /** Do not verify the server's certificate (insecure-skip-tls-verify). */
  insecureSkipVerify?: boolean;
  /** Name to verify the certificate against instead of the URL's host (tls-server-name). */
  serverName?: string;
}

/** Options of KubeClient. */
export interface KubeClientOptions {
  /** `https://HOST:PORT`, `http://127.0.0.1:PORT` or `unix:/path/api.sock`. */
  server: string;
  /** Per-request timeout (not for watches). Default 30 s. */
  timeoutMs?: number;
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** https: CA, client certificate and key. */
  tls?: KubeClientTLS;
  /** Bearer token. */
  token?: string;
  /** File holding the bearer token, re-read when it changes (a projected service-account token). */
  tokenFile?: string;
  /**
   * Names the credential in error messages, e.g. `user "agent-n1" in
   * /etc/tendril/kubeconfig` (default: what kind of credential it is).
   */
  credential?: string;
  /** Names where the CA came from in TLS errors (default: the CA file or "the configured CA"). */
  caSource?: string;
}

/** How often a token file's mtime/size is checked, and the longest a read token is used unchecked by content. */
export const TOKEN_FILE_CHECK_MS = 1000;
/** A token file is re-read at least this often, as client-go does. */
export const TOKEN_FILE_REREAD_MS = 60_000;

function readCredential(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new TendrilError(
      'K8S_BAD_CREDENTIAL',
      `read ${what} ${path}: ${(err as Error).message}`,
      { hint: `check the ${what} path in the kubeconfig (or the mounted secret)`, cause: err },
    );
  }
}

/**
 * A bearer token kept in a file (client-go's cachingTokenSource over a file):
 * re-read when its mtime, size or inode changes (checked at most every
 * TOKEN_FILE_CHECK_MS) and at least every TOKEN_FILE_REREAD_MS; when a re-read
 * fails the last good token is kept.
 */
export class TokenFile {
  private token: string | undefined;
  private readAt = 0;
  private checkedAt = 0;
  private stamp = '';

  constructor(readonly path: string) {}

  /**
   * The current token.
   * @throws TendrilError K8S_BAD_CREDENTIAL when the file was never readable or is empty.
   */
  get(now = Date.now()): string {
    if (this.token !== undefined && now - this.checkedAt < TOKEN_FILE_CHECK_MS) return this.token;
    this.checkedAt = now;
    let stamp = '';
    try {
      const st = statSync(this.path);
      stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch (err) {
      if (this.token !== undefined) return this.token;
      readCredential(this.path, 'token file');
      throw err;
    }
    if (
      this.token === undefined ||
      stamp !== this.stamp ||
      now - this.readAt >= TOKEN_FILE_REREAD_MS
    )
      this.reload(now, stamp);
    return this.token!;
  }

  /** Reads the file now (after a 401). Returns true when the token changed. */
  refresh(now = Date.now()): boolean {
    const before = this.token;
    try {
      this.reload(now, this.stamp);
    } catch {
      return false;
    }
    return this.token !== before;
  }

  private reload(now: number, stamp: string): void {
    let text: string;
    try {
      text = readCredential(this.path, 'token file').trim();
    } catch (err) {
      if (this.token !== undefined) return;
      throw err;
    }
    if (!text) {
      if (this.token !== undefined) return;
      throw new TendrilError('K8S_BAD_CREDENTIAL', `token file ${this.path} is empty`, {
        hint: 'write the bearer token into the file, or point tokenFile at the right one',
      });
    }
    this.token = text;
    this.readAt = now;
    this.stamp = stamp;
  }
}

const SERVER_CERT_ERRORS = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

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
  private readonly agent: KeepAliveAgent | KeepAliveHttpsAgent;
  private readonly https: boolean;
  private readonly timeoutMs: number;
  private readonly headers: Record<string, string>;
  private readonly token: string | undefined;
  private readonly tokenFile: TokenFile | undefined;
  private readonly hasClientCert: boolean;
  /** What credential this client sends, for messages. */
  readonly credential: string;
  private readonly caSource: string;

  /**
   * @throws TendrilError `K8S_BAD_SERVER` for a server string that is not https://, http:// or unix:,
   * `K8S_BAD_CREDENTIAL` for an unreadable CA, certificate or key file.
   */
  constructor(options: KubeClientOptions) {
    this.server = options.server;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.headers = options.headers ?? {};
    this.token = options.token;
    this.tokenFile = options.tokenFile ? new TokenFile(options.tokenFile) : undefined;
    const tls = options.tls ?? {};
    const cert =
      tls.cert ?? (tls.certFile ? readCredential(tls.certFile, 'client certificate') : undefined);
    const key = tls.key ?? (tls.keyFile ? readCredential(tls.keyFile, 'client key') : undefined);
    const ca = tls.ca ?? (tls.caFile ? readCredential(tls.caFile, 'CA file') : undefined);
    if ((cert === undefined) !== (key === undefined)) {
      throw new TendrilError(
        'K8S_BAD_CREDENTIAL',
        `a client ${cert === undefined ? 'key' : 'certificate'} without its ${cert === undefined ? 'certificate' : 'key'}`,
        { hint: 'give both client-certificate(-data) and client-key(-data)' },
      );
    }
    this.hasClientCert = cert !== undefined;
    this.credential =
      options.credential ??
      (this.tokenFile
        ? `the token in ${this.tokenFile.path}`
        : this.token
          ? 'the bearer token'
          : this.hasClientCert
            ? `the client certificate${tls.certFile ? ` ${tls.certFile}` : ''}`
            : 'no credential (anonymous)');
    this.caSource =
      options.caSource ??
      (tls.ca ? 'the configured CA' : tls.caFile ? `the CA in ${tls.caFile}` : "the system's CAs");
    this.https = options.server.startsWith('https:');
    this.agent = this.https
      ? new KeepAliveHttpsAgent({
          maxSockets: 16,
          ...(ca !== undefined ? { ca } : {}),
          ...(cert !== undefined ? { cert, key } : {}),
          rejectUnauthorized: !tls.insecureSkipVerify,
          ...(tls.serverName ? { servername: tls.serverName } : {}),
        })
      : new KeepAliveAgent({ maxSockets: 16 });
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
      if (u.protocol !== 'http:' && u.protocol !== 'https:') {
        throw new TendrilError(
          'K8S_BAD_SERVER',
          `API server address "${options.server}": only https://, http:// and unix: are supported`,
          { hint: 'write the server as https://HOST:PORT' },
        );
      }
      this.base = {
        host: u.hostname.replace(/^\[|\]$/g, ''),
        port: Number(u.port || (u.protocol === 'https:' ? 443 : 80)),
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
    const auth: Record<string, string> = {};
    try {
      const token = this.tokenFile ? this.tokenFile.get() : this.token;
      if (token) auth.Authorization = `Bearer ${token}`;
    } catch (err) {
      return Promise.reject(err);
    }
    const send = this.https ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(
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
            ...auth,
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
        const tlsErr = this.tlsError(method, path, err);
        if (tlsErr) return reject(tlsErr);
        reject(
          new TendrilError(
            'K8S_UNREACHABLE',
            `${method} ${path}: cannot reach the API server at ${this.server}: ${err.message}`,
            {
              hint: "is the API server running and the kubeconfig's server address right? (lab: `tendril lab list`, `tendril config current-context`)",
              cause: err,
            },
          ),
        );
      });
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  /** A TLS failure as a TendrilError naming the CA or the client certificate, else undefined. */
  private tlsError(method: string, path: string, err: Error): TendrilError | undefined {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (SERVER_CERT_ERRORS.has(code)) {
      return new TendrilError(
        'K8S_TLS_VERIFY',
        `${method} ${path}: the API server at ${this.server} presented a certificate that ${this.caSource} does not verify (${code}: ${err.message})`,
        {
          hint:
            code === 'ERR_TLS_CERT_ALTNAME_INVALID'
              ? 'the certificate is not for this address: use the address it was issued for, or set tls-server-name'
              : "set the cluster's certificate-authority(-data) in the kubeconfig to the CA that signed the server's certificate",
          cause: err,
        },
      );
    }
    if (
      /alert (certificate required|bad certificate|unknown ca|certificate unknown|certificate expired)/i.test(
        err.message,
      ) ||
      /ALERT_(CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|CERTIFICATE_EXPIRED)/.test(
        code,
      )
    ) {
      return new TendrilError(
        'K8S_TLS_CLIENT_CERT',
        `${method} ${path}: the API server at ${this.server} refused the TLS handshake with ${this.credential} (${err.message})`,
        {
          hint: 'the client certificate must be signed by a CA the API server trusts and not expired',
          cause: err,
        },
      );
    }
    return undefined;
  }

  /** The ApiError for a 401, naming the credential. */
  private unauthorized(method: string, path: string, status: unknown): ApiError {
    const detail = isStatus(status) && status.message ? `: ${status.message}` : '';
    return new ApiError(
      failure(
        401,
        'Unauthorized',
        `${method} ${path}: the API server at ${this.server} refused ${this.credential} (401 Unauthorized${detail})`,
      ),
      {
        hint: this.tokenFile
          ? `the token in ${this.tokenFile.path} is expired or wrong: renew it (it is re-read when it changes)`
          : this.token
            ? "the kubeconfig's token is expired or wrong: get a new one"
            : this.hasClientCert
              ? 'the client certificate is not accepted: is it signed by the CA the API server trusts?'
              : 'the request carried no credential: add a token or client certificate to the kubeconfig',
      },
    );
  }

  /** Opens a request; after a 401 with a token file that changed meanwhile, once more. */
  private async openAuthed(
    method: string,
    path: string,
    headers: Record<string, string>,
    timeoutMs: number | undefined,
    body?: string,
  ): Promise<IncomingMessage> {
    const res = await this.open(method, path, headers, timeoutMs, body);
    if (res.statusCode === 401 && this.tokenFile?.refresh()) {
      res.resume();
      return this.open(method, path, headers, timeoutMs, body);
    }
    return res;
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
    const res = await this.openAuthed(method, path, headers, this.timeoutMs, body);
    const raw: RawResponse = { status: res.statusCode ?? 0, body: await readAll(res) };
    let parsed: unknown;
    try {
      parsed = raw.body ? JSON.parse(raw.body) : undefined;
    } catch {
      parsed = undefined;
    }
    if (raw.status < 200 || raw.status >= 300) {
      if (raw.status === 401) throw this.unauthorized(method, path, parsed);
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

  /**
   * GETs a path whose answer is text, not an object (pods/log).
   * @throws ApiError for a non-2xx answer (the Status the server sent, or one made from the code).
   */
  async requestText(path: string, options: { timeoutMs?: number } = {}): Promise<string> {
    const res = await this.openAuthed(
      'GET',
      path,
      { Accept: 'text/plain, */*' },
      options.timeoutMs ?? this.timeoutMs,
      undefined,
    );
    const text = await readAll(res);
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return text;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (status === 401) throw this.unauthorized('GET', path, parsed);
    if (isStatus(parsed)) throw new ApiError(parsed);
    throw new ApiError(
      failure(
        status,
        status === 404 ? 'NotFound' : 'Unknown',
        `GET ${path}: HTTP ${status}: ${text.slice(0, 200)}`,
      ),
    );
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
    const res = await this.openAuthed('GET', path, {}, undefined);
    if ((res.statusCode ?? 0) !== 200) {
      const body = await readAll(res);
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        parsed = undefined;
      }
      if (res.statusCode === 401) throw this.unauthorized('GET', path, parsed);
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

/**
 * KVStore over etcd's v3 API through the `etcd3` client (works with Debian's
 * etcd 3.4). Mutual TLS and etcd user/password auth are options; with
 * `--client-cert-auth` and auth enabled on the server, etcd maps the client
 * certificate's CN to an etcd user, so a remote cluster's certificate carries
 * its permissions (see etcd-auth.ts).
 *
 * Watches survive connection loss: the etcd3 client reconnects with backoff
 * and this store resumes each watch from the revision after the last one it
 * delivered, so no event is skipped or repeated; `onDisconnect` and
 * `onReconnect` report the outage. A watch from a compacted revision ends
 * with a KVSTORE_COMPACTED error.
 *
 * Every error is a KVStoreError naming the endpoint(s) and, where it can, the
 * cause: unreachable, certificate rejected, permission denied.
 */
import {
  Etcd3,
  type IOptions,
  type Lease as EtcdLease,
  type IKeyValue,
  type IWatchResponse,
} from 'etcd3';
import { isIP } from 'node:net';
import { chunkPairs } from './batch.js';
import { endpointIdentityIP, pinEndpointIdentities } from './etcd-tls.js';
import { KVStoreError, type KVStoreErrorCode } from './errors.js';
import type {
  KVPair,
  KVStore,
  Lease,
  LeaseOptions,
  Watch,
  WatchEvent,
  WatchOptions,
} from './types.js';
import { nopLogger, type Logger } from '../util/log.js';

export interface EtcdTLSOptions {
  /** CA certificate(s) that sign the server's certificate (PEM). */
  ca: string | Buffer;
  /** Client certificate (PEM), for mutual TLS. */
  cert?: string | Buffer;
  /** Client private key (PEM). */
  key?: string | Buffer;
  /**
   * Name to check the server certificate against, when it differs from the
   * endpoint host. An IP address (like an IP endpoint host) must be among the
   * certificate's IP SANs and is not sent as SNI (see etcd-tls.ts).
   */
  serverName?: string;
}

export interface EtcdKVStoreOptions {
  /** Client URLs, e.g. ["https://172.30.1.10:32379"]. */
  endpoints: string[];
  tls?: EtcdTLSOptions;
  /** etcd user/password auth (not needed when a client certificate's CN names the user). */
  auth?: { username: string; password: string };
  /** How long to wait for a connection (default 5000 ms). */
  dialTimeoutMs?: number;
  /** Deadline for each unary request (default 15000 ms). */
  requestTimeoutMs?: number;
  logger?: Logger;
}

/** The etcd backend of KVStore. */
export class EtcdKVStore implements KVStore {
  /** The underlying etcd3 client, for operations KVStore does not cover (auth setup, maintenance). */
  readonly client: Etcd3;
  readonly endpoints: string[];
  private readonly dialTimeoutMs: number;
  private readonly log: Logger;
  private readonly leases = new Map<string, EtcdLease>();
  private readonly watches = new Set<Watch>();
  private closed = false;

  /** Creates the client; no connection is made until the first call. */
  constructor(options: EtcdKVStoreOptions) {
    if (options.endpoints.length === 0) {
      throw new KVStoreError('KVSTORE_INVALID', 'etcd client: no endpoint given', {
        hint: 'pass at least one client URL, e.g. https://127.0.0.1:2379',
      });
    }
    this.endpoints = [...options.endpoints];
    this.dialTimeoutMs = options.dialTimeoutMs ?? 5000;
    this.log = (options.logger ?? nopLogger).child({ subsys: 'kvstore-etcd' });
    const requestTimeoutMs = options.requestTimeoutMs ?? 15_000;
    const grpcOptions: Record<string, string | number> = {
      'grpc.max_receive_message_length': 256 * 1024 * 1024,
      'grpc.max_send_message_length': 64 * 1024 * 1024,
    };
    const serverName = options.tls?.serverName;
    // An IP server name is pinned per endpoint below (an IP is no valid SNI).
    if (serverName && !isIP(serverName)) grpcOptions['grpc.ssl_target_name_override'] = serverName;
    const opts: IOptions = {
      hosts: this.endpoints,
      dialTimeout: this.dialTimeoutMs,
      grpcOptions,
      defaultCallOptions: (ctx) =>
        ctx.isStream ? {} : { deadline: Date.now() + requestTimeoutMs },
    };
    if (options.tls) {
      opts.credentials = { rootCertificate: toBuf(options.tls.ca) };
      if (options.tls.cert) opts.credentials.certChain = toBuf(options.tls.cert);
      if (options.tls.key) opts.credentials.privateKey = toBuf(options.tls.key);
    }
    if (options.auth)
      opts.auth = { username: options.auth.username, password: options.auth.password };
    this.client = new Etcd3(opts);
    if (options.tls && this.endpoints.some((e) => endpointIdentityIP(e, serverName))) {
      const tls = {
        ca: toBuf(options.tls.ca),
        cert: options.tls.cert ? toBuf(options.tls.cert) : undefined,
        key: options.tls.key ? toBuf(options.tls.key) : undefined,
      };
      if (!pinEndpointIdentities(this.client, this.endpoints, tls, serverName))
        this.log.warn(
          'etcd3 client internals changed: IP endpoints get their IP as TLS server name (Node warns DEP0123); the certificate is still checked',
        );
    }
  }

  async get(key: string): Promise<KVPair | undefined> {
    this.check();
    const res = await this.call(`get ${key}`, () => this.client.get(key).exec());
    const kv = res.kvs[0];
    return kv ? toPair(kv) : undefined;
  }

  async list(prefix: string): Promise<{ kvs: KVPair[]; revision: number }> {
    this.check();
    const res = await this.call(`list ${prefix}`, () => this.client.getAll().prefix(prefix).exec());
    return { kvs: res.kvs.map(toPair), revision: Number(res.header.revision) };
  }

  async put(key: string, value: string, options: { lease?: Lease } = {}): Promise<number> {
    this.check();
    checkKey(key);
    const res = await this.call(`put ${key}`, () => {
      const b = this.client.put(key).value(value);
      if (options.lease) b.lease(leaseToEtcd(options.lease.id));
      return b.exec();
    });
    return Number(res.header.revision);
  }

  async create(key: string, value: string, options: { lease?: Lease } = {}): Promise<boolean> {
    this.check();
    checkKey(key);
    const res = await this.call(`create ${key}`, () => {
      const p = this.client.put(key).value(value);
      if (options.lease) p.lease(leaseToEtcd(options.lease.id));
      return this.client.if(key, 'Create', '==', 0).then(p).commit();
    });
    return res.succeeded;
  }

  /**
   * Puts all pairs in transactions of up to 128 operations (4 in flight);
   * a key given twice keeps its last value. Returns the highest revision written.
   */
  async putMany(
    pairs: readonly { key: string; value: string }[],
    options: { lease?: Lease } = {},
  ): Promise<number> {
    this.check();
    const last = new Map<string, string>();
    for (const p of pairs) {
      checkKey(p.key);
      last.delete(p.key);
      last.set(p.key, p.value);
    }
    const lease = options.lease ? leaseToEtcd(options.lease.id) : undefined;
    const chunks = chunkPairs([...last].map(([key, value]) => ({ key, value })));
    let rev = 0;
    await inParallel(chunks, 4, async (chunk) => {
      const res = await this.call(`put ${chunk.length} keys (${chunk[0]!.key} ...)`, () =>
        this.client.kv.txn({
          success: chunk.map((p) => ({
            request_put: {
              key: Buffer.from(p.key),
              value: Buffer.from(p.value),
              ...(lease ? { lease } : {}),
            },
          })),
        }),
      );
      rev = Math.max(rev, Number(res.header.revision));
    });
    return rev;
  }

  /** Deletes all keys in transactions of up to 128 operations. */
  async deleteMany(keys: readonly string[]): Promise<void> {
    this.check();
    const chunks = chunkPairs([...new Set(keys)].map((key) => ({ key })));
    await inParallel(chunks, 4, async (chunk) => {
      await this.call(`delete ${chunk.length} keys (${chunk[0]!.key} ...)`, () =>
        this.client.kv.txn({
          success: chunk.map((p) => ({ request_delete_range: { key: Buffer.from(p.key) } })),
        }),
      );
    });
  }

  async delete(key: string): Promise<void> {
    this.check();
    await this.call(`delete ${key}`, () => this.client.delete().key(key).exec());
  }

  async deletePrefix(prefix: string): Promise<void> {
    this.check();
    await this.call(`delete prefix ${prefix}`, () => this.client.delete().prefix(prefix).exec());
  }

  async watchPrefix(
    prefix: string,
    onEvent: (ev: WatchEvent) => void,
    options: WatchOptions = {},
  ): Promise<Watch> {
    this.check();
    const builder = this.client.watch().prefix(prefix);
    if (options.prevKV) builder.withPreviousKV();
    if (options.afterRevision !== undefined)
      builder.startRevision(String(options.afterRevision + 1));
    const watcher = builder.watcher();
    // `safe`: every event up to this revision has been delivered; a resumed
    // stream starts right after it. (etcd3 itself would resume after the
    // response header's revision, which may skip events of a catch-up batch.)
    let safe = options.afterRevision ?? -1;
    let connectedOnce = false;
    let down = false;
    let ended = false;
    const what = `watch ${prefix}`;

    const handleData = (res: IWatchResponse) => {
      if (ended) return;
      if (res.events.length === 0) {
        // Progress notification: everything up to the header revision was sent.
        if (connectedOnce) safe = Math.max(safe, Number(res.header.revision));
        return;
      }
      for (const ev of res.events) {
        const rev = Number(ev.kv.mod_revision);
        if (rev < safe) continue; // never deliver twice
        const out: WatchEvent =
          ev.type === 'Put'
            ? ev.prev_kv
              ? { type: 'put', kv: toPair(ev.kv), prev: toPair(ev.prev_kv) }
              : { type: 'put', kv: toPair(ev.kv) }
            : ev.prev_kv
              ? {
                  type: 'delete',
                  key: ev.kv.key.toString(),
                  modRevision: rev,
                  prev: toPair(ev.prev_kv),
                }
              : { type: 'delete', key: ev.kv.key.toString(), modRevision: rev };
        try {
          onEvent(out);
        } catch (err) {
          options.onError?.(err instanceof Error ? err : new Error(String(err)));
        }
        safe = Math.max(safe, rev);
      }
    };
    watcher.on('data', handleData);
    watcher.on('disconnected', (err: Error) => {
      if (ended) return;
      if (safe >= 0)
        (watcher.request as { start_revision?: string }).start_revision = String(safe + 1);
      if (!down && connectedOnce) {
        down = true;
        const e = wrapError(err, this.endpoints, what);
        this.log.warn('watch disconnected, reconnecting', { prefix, error: e.message });
        options.onDisconnect?.(e);
      }
    });

    const first = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new KVStoreError(
            'KVSTORE_UNREACHABLE',
            `${what}: no etcd answered at ${this.endpoints.join(', ')} within ${this.dialTimeoutMs} ms`,
            { hint: unreachableHint(this.endpoints) },
          ),
        );
      }, this.dialTimeoutMs + 1000);
      watcher.on('connected', (res: IWatchResponse) => {
        clearTimeout(timer);
        if (!connectedOnce) {
          connectedOnce = true;
          if (safe < 0) safe = Number(res.header.revision);
          resolve();
        } else if (down) {
          down = false;
          this.log.info('watch reconnected', { prefix, fromRevision: safe + 1 });
          options.onReconnect?.();
        }
      });
      watcher.on('error', (err: Error) => {
        clearTimeout(timer);
        if (ended) return;
        ended = true;
        void this.explainCancel(err, prefix, safe + 1).then((e) => {
          if (!connectedOnce) reject(e);
          else options.onError?.(e);
        });
      });
    });

    const w: Watch = {
      close: async () => {
        if (ended) return;
        ended = true;
        this.watches.delete(w);
        await Promise.race([
          watcher.cancel().catch(() => undefined),
          new Promise((r) => setTimeout(r, 2000).unref()),
        ]);
      },
    };
    try {
      await first;
    } catch (err) {
      ended = true;
      void watcher.cancel().catch(() => undefined);
      throw err;
    }
    this.watches.add(w);
    return w;
  }

  async grantLease(ttlSeconds: number, options: LeaseOptions = {}): Promise<Lease> {
    this.check();
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
      throw new KVStoreError(
        'KVSTORE_INVALID',
        `grant lease: TTL ${ttlSeconds}s is not a whole number of seconds >= 1`,
      );
    }
    const lease = this.client.lease(ttlSeconds, { autoKeepAlive: options.keepAlive !== false });
    lease.on('lost', (err: Error) => {
      const e = wrapError(err, this.endpoints, `keep lease alive`);
      if (this.closed) return;
      this.log.warn('lease lost', { error: e.message });
      options.onLost?.(e);
    });
    const dec = await this.call(`grant lease (TTL ${ttlSeconds}s)`, () => lease.grant());
    const id = BigInt(dec).toString(16);
    this.leases.set(id, lease);
    return {
      id,
      ttlSeconds,
      revoke: async () => {
        this.leases.delete(id);
        if (lease.revoked()) return;
        await this.call(`revoke lease ${id}`, () => lease.revoke());
      },
    };
  }

  /** The store's current revision. */
  async revision(): Promise<number> {
    this.check();
    const res = await this.call('read revision', () =>
      this.client.kv.range({ key: Buffer.from([0]), limit: '1' }),
    );
    return Number(res.header.revision);
  }

  /** Compacts history up to `revision` (watches from before it then fail with KVSTORE_COMPACTED). */
  async compact(revision: number): Promise<void> {
    this.check();
    await this.call(`compact to ${revision}`, () =>
      this.client.kv.compact({ revision: String(revision), physical: true }),
    );
  }

  /** Server status: etcd version, current revision, database size; throws when unreachable. */
  async status(): Promise<{
    version: string;
    revision: number;
    dbSizeBytes: number;
    leader: string;
  }> {
    this.check();
    const s = await this.call('status', () => this.client.maintenance.status({}));
    return {
      version: s.version,
      revision: Number(s.header.revision),
      dbSizeBytes: Number(s.dbSize),
      leader: s.leader,
    };
  }

  /**
   * Stops keep-alives (leases then expire after their TTL), cancels watches
   * and closes the connection.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const l of this.leases.values()) l.release();
    this.leases.clear();
    await Promise.all([...this.watches].map((w) => w.close()));
    this.client.close();
  }

  // --- internals ---

  private check(): void {
    if (this.closed)
      throw new KVStoreError(
        'KVSTORE_CLOSED',
        `etcd ${this.endpoints.join(', ')}: the store is closed`,
      );
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw wrapError(err, this.endpoints, what);
    }
  }

  private async explainCancel(
    err: Error,
    prefix: string,
    fromRevision: number,
  ): Promise<KVStoreError> {
    if (/Watcher canceled/.test(err.message) && fromRevision > 0) {
      try {
        await this.client.kv.range({
          key: Buffer.from(prefix || '\0'),
          revision: String(fromRevision),
          limit: '1',
        });
      } catch (probe) {
        if (/compacted/.test(String((probe as Error).message))) {
          return new KVStoreError(
            'KVSTORE_COMPACTED',
            `watch ${prefix} from revision ${fromRevision} at ${this.endpoints.join(', ')}: that revision has been compacted`,
            {
              hint: 'list the prefix again and watch from the revision the list returns',
              cause: err,
            },
          );
        }
      }
    }
    return wrapError(err, this.endpoints, `watch ${prefix}`);
  }
}

/**
 * Turns an etcd3/gRPC error into a KVStoreError naming the endpoints, the
 * operation and a hint. Exported for code that uses EtcdKVStore.client directly.
 */
export function wrapError(err: unknown, endpoints: string[], what: string): KVStoreError {
  if (err instanceof KVStoreError) return err;
  const name = (err as Error)?.constructor?.name ?? '';
  const msg = err instanceof Error ? err.message : String(err);
  const at = endpoints.join(', ');
  const mk = (code: KVStoreErrorCode, text: string, hint: string) =>
    new KVStoreError(code, `${what} at etcd ${at}: ${text}`, { hint, cause: err });
  if (/permission denied/i.test(msg) || name === 'EtcdPermissionDeniedError') {
    return mk(
      'KVSTORE_PERMISSION_DENIED',
      'permission denied',
      "the etcd user (the client certificate's CN, or the user name) has no role that allows this; a remote cluster may only read cilium/state/",
    );
  }
  if (
    /authentication failed|invalid auth token|user name is empty|user name not found/i.test(msg) ||
    name === 'EtcdAuthenticationFailedError'
  ) {
    return mk(
      'KVSTORE_AUTH_FAILED',
      `authentication failed (${firstLine(msg)})`,
      "check the etcd user name and password, or the client certificate's CN",
    );
  }
  if (
    /alert bad certificate|alert unknown ca|certificate required|alert certificate|SSL alert number (42|43|44|45|46|48|116)/i.test(
      msg,
    )
  ) {
    return mk(
      'KVSTORE_TLS',
      `TLS handshake failed: the server rejected this client's certificate (missing, expired, or not signed by the server's CA) (${grpcDetail(msg)})`,
      'the client certificate must be signed by the CA the server trusts (each mesh etcd trusts only the CA of its own cluster); re-run `tendril clustermesh connect` to exchange certificates again',
    );
  }
  if (
    /unable to verify|self[- ]signed|certificate has expired|not yet valid|does not match certificate|altnames|unable to get (local )?issuer/i.test(
      msg,
    )
  ) {
    return mk(
      'KVSTORE_TLS',
      `TLS handshake failed: the server's certificate is not trusted (other CA, expired, or not naming this host) (${grpcDetail(msg)})`,
      "the CA given to the client must be the one that signed the server certificate, and the certificate must name the endpoint's address; `tendril clustermesh status` compares the clusters' CAs",
    );
  }
  if (/certificate|handshake|ssl|tls|x509|alert/i.test(msg)) {
    return mk(
      'KVSTORE_TLS',
      `TLS handshake failed (${grpcDetail(msg)})`,
      'check the CA, certificate and key given to the client, and that the endpoint uses https',
    );
  }
  if (/lease not found|requested lease not found/i.test(msg) || name === 'EtcdLeaseInvalidError') {
    return mk(
      'KVSTORE_LEASE_NOT_FOUND',
      'the lease expired or was revoked',
      'grant a new lease and write the keys again',
    );
  }
  if (name === 'ClientClosedError')
    return mk('KVSTORE_CLOSED', 'the client is closed', 'create a new store');
  if (
    /UNAVAILABLE|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|DEADLINE_EXCEEDED|No connection established|circuit|Failed to connect/i.test(
      msg,
    ) ||
    name === 'GRPCUnavailableError' ||
    name === 'GRPCDeadlineExceededError' ||
    name === 'BrokenCircuitError'
  ) {
    const detail = /circuit breaker/i.test(msg)
      ? 'the last attempts failed; the client pauses 5 s before trying again'
      : grpcDetail(msg);
    return mk('KVSTORE_UNREACHABLE', `unreachable (${detail})`, unreachableHint(endpoints));
  }
  return mk(
    'KVSTORE_ERROR',
    firstLine(msg),
    'see the cause; `etcdctl --endpoints ... endpoint status` checks the server',
  );
}

function unreachableHint(endpoints: string[]): string {
  return `is etcd running and listening at ${endpoints.join(', ')}? (http vs https must match the server; \`tendril clustermesh status\` shows the mesh's endpoints)`;
}

/** The useful part of a gRPC connection error ("14 UNAVAILABLE: No connection established. Last error: X. Resolution note: "). */
function grpcDetail(msg: string): string {
  const m =
    /Last error: (?:Error: )?([\s\S]*?)(?:\s*\(\d{4}-\d\d-\d\dT[^)]*\))?\.?\s*(?:Resolution note:.*)?$/.exec(
      msg,
    );
  const detail = m ? m[1]! : msg;
  const ssl = /:SSL routines:[^:]*:([^:]+):/.exec(detail);
  return firstLine(ssl ? ssl[1]! : detail);
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.slice(0, 300);
}

function toPair(kv: IKeyValue): KVPair {
  const p: KVPair = {
    key: kv.key.toString(),
    value: kv.value.toString(),
    createRevision: Number(kv.create_revision),
    modRevision: Number(kv.mod_revision),
  };
  if (kv.lease && kv.lease !== '0') p.lease = BigInt(kv.lease).toString(16);
  return p;
}

function leaseToEtcd(hexId: string): string {
  if (!/^[0-9a-f]+$/i.test(hexId)) {
    throw new KVStoreError(
      'KVSTORE_INVALID',
      `lease id ${JSON.stringify(hexId)} is not an etcd lease id (hex)`,
      { hint: 'use a lease granted by this store' },
    );
  }
  return BigInt('0x' + hexId).toString(10);
}

function checkKey(key: string): void {
  if (key.length === 0) throw new KVStoreError('KVSTORE_INVALID', 'write: the key is empty');
}

async function inParallel<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

function toBuf(v: string | Buffer): Buffer {
  return typeof v === 'string' ? Buffer.from(v) : v;
}

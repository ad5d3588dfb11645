/**
 * The clustermesh-apiserver's status endpoint: HTTP over a Unix socket in
 * the cluster's mesh directory (Unix sockets cross network namespaces, so the
 * CLI in the root namespace reaches the daemon in the control plane's).
 *
 *   GET /status   MeshDaemonStatus (JSON)
 *   GET /healthz  "ok" when etcd answers and the syncer is synced, else 503
 */
import { createServer, request, type Server } from 'node:http';
import { rm } from 'node:fs/promises';
import { TendrilError } from '../util/errors.js';
import type { RemoteClusterStatus } from './kvstoremesh.js';
import type { SyncerStatus } from './syncer.js';

/** What `clustermesh status` reads from the daemon. */
export interface MeshDaemonStatus {
  cluster: { name: string; id: number; labCluster: string; maxConnectedClusters: number };
  pid: number;
  startedAt: string;
  serviceType: string;
  accessEndpoints: string[];
  etcd: {
    ok: boolean;
    endpoint: string;
    error?: string;
    revision?: number;
    checkedAt: string;
    /** etcd's raised alarms ("NOSPACE": the backend quota is exhausted, writes are refused; "CORRUPT"). */
    alarms?: string[];
    /** The backend's size on disk (bytes). */
    dbSizeBytes?: number;
  };
  syncer: SyncerStatus | undefined;
  kvstoremesh: { enabled: boolean; cacheTTL?: string; remotes: RemoteClusterStatus[] };
  /** Remote clusters admitted to read this etcd (users remote-<name>). */
  readers: string[];
  /** The etcd users those readers authenticate as (their certificates' CNs), as applied. */
  readerUsers?: string[];
  /** Problems found while reading the mesh files (corrupt remote records, ...). */
  problems: string[];
}

/** Serves `get()` on a Unix socket. Removes a stale socket file first. */
export async function serveStatus(
  socketPath: string,
  get: () => Promise<MeshDaemonStatus>,
): Promise<Server> {
  await rm(socketPath, { force: true });
  const srv = createServer((req, res) => {
    void (async () => {
      try {
        if (req.url === '/status') {
          const st = await get();
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(st));
        } else if (req.url === '/healthz') {
          const st = await get();
          const ok =
            st.etcd.ok && st.syncer !== undefined && Object.values(st.syncer.synced).every(Boolean);
          res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
          res.end(
            ok
              ? 'ok\n'
              : `not ready: etcd ${st.etcd.ok ? 'ok' : st.etcd.error}; syncer ${st.syncer ? 'syncing' : 'not started'}\n`,
          );
        } else {
          res.writeHead(404).end();
        }
      } catch (err) {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(String((err as Error).message));
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(socketPath, () => resolve());
  });
  return srv;
}

/**
 * Reads the daemon's status. Throws TendrilError CLUSTERMESH_APISERVER_DOWN
 * when nothing answers on the socket.
 */
export async function fetchStatus(socketPath: string, timeoutMs = 5000): Promise<MeshDaemonStatus> {
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath, path: '/status', method: 'GET', timeout: timeoutMs },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => {
          if (res.statusCode !== 200) {
            reject(
              new TendrilError(
                'CLUSTERMESH_APISERVER_ERROR',
                `clustermesh-apiserver status: HTTP ${res.statusCode}: ${body.trim()}`,
              ),
            );
            return;
          }
          try {
            resolve(JSON.parse(body) as MeshDaemonStatus);
          } catch (err) {
            reject(err);
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) =>
      reject(
        new TendrilError(
          'CLUSTERMESH_APISERVER_DOWN',
          `the clustermesh-apiserver is not answering on ${socketPath}: ${err.message}`,
          {
            hint: 'check it with `tendril lab status` / its log clustermesh-apiserver.log; `tendril clustermesh enable` restarts it',
            cause: err,
          },
        ),
      ),
    );
    req.end();
  });
}

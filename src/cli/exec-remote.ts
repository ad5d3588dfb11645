/**
 * A client of the API server's pods/exec over Kubernetes' WebSocket
 * remote-command protocol (v5.channel.k8s.io, else v4): what `tendril exec`
 * uses, as kubectl does. Channel bytes: 0 stdin, 1 stdout, 2 stderr, 3 the
 * closing Status, 255 (v5) close of a channel.
 */
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import type { ResolvedClientOptions } from '../k8s/client-config.js';
import { TendrilError } from '../util/errors.js';
import { CHANNEL, STREAM_PROTOCOLS, decodeFrame, encodeFrame } from '../lab/apiserver/streaming.js';

/** What to run. */
export interface RemoteExecRequest {
  namespace: string;
  pod: string;
  container: string;
  command: string[];
  /** Send this stream as stdin (ends with it). */
  stdin?: NodeJS.ReadableStream;
  tty?: boolean;
  /**
   * With `tty`: the local terminal's size now (sent when the session opens)
   * and a way to hear of its changes (each is sent on the resize channel).
   */
  termSize?: {
    get(): { rows: number; cols: number } | undefined;
    onChange(fn: () => void): () => void;
  };
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** The exit code a closing Status carries (0 for Success; undefined for another failure). */
export function exitCodeOf(status: {
  status?: string;
  reason?: string;
  details?: { causes?: Array<{ reason?: string; message?: string }> };
}): number | undefined {
  if (status.status === 'Success') return 0;
  if (status.reason === 'NonZeroExitCode') {
    const c = status.details?.causes?.find((x) => x.reason === 'ExitCode');
    const n = Number(c?.message);
    return Number.isInteger(n) ? n : undefined;
  }
  return undefined;
}

/** The ws:// or wss:// (or ws+unix:) URL of a path on the API server. */
function wsURL(server: string, pathAndQuery: string): string {
  if (server.startsWith('unix:')) return `ws+unix://${server.slice(5)}:${pathAndQuery}`;
  return server.replace(/^http/, 'ws').replace(/\/+$/, '') + pathAndQuery;
}

/**
 * Runs the command through pods/exec; resolves its exit code. A refused
 * upgrade rejects with TendrilError EXEC_REFUSED carrying the server's message.
 */
export function remoteExec(client: ResolvedClientOptions, r: RemoteExecRequest): Promise<number> {
  const q = new URLSearchParams();
  for (const c of r.command) q.append('command', c);
  q.set('container', r.container);
  if (r.stdin) q.set('stdin', 'true');
  q.set('stdout', 'true');
  q.set('stderr', 'true');
  if (r.tty) q.set('tty', 'true');
  const path = `/api/v1/namespaces/${encodeURIComponent(r.namespace)}/pods/${encodeURIComponent(r.pod)}/exec?${q}`;
  const tls = client.tls ?? {};
  const read = (data?: string, file?: string) =>
    data ?? (file ? readFileSync(file, 'utf8') : undefined);
  const token =
    client.token ?? (client.tokenFile ? readFileSync(client.tokenFile, 'utf8').trim() : undefined);
  const ws = new WebSocket(wsURL(client.server, path), [...STREAM_PROTOCOLS], {
    headers: { ...(client.headers ?? {}), ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    ca: read(tls.ca, tls.caFile),
    cert: read(tls.cert, tls.certFile),
    key: read(tls.key, tls.keyFile),
  });
  return new Promise((resolve, reject) => {
    let status: Record<string, unknown> | undefined;
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => {
        let message = body.slice(0, 500);
        try {
          message = (JSON.parse(body) as { message?: string }).message ?? message;
        } catch {
          /* not a Status */
        }
        reject(new TendrilError('EXEC_REFUSED', `${message} (HTTP ${res.statusCode})`));
      });
    });
    ws.on('error', (err) =>
      reject(
        new TendrilError('EXEC_FAILED', `exec ${r.namespace}/${r.pod}: ${err.message}`, {
          cause: err,
        }),
      ),
    );
    ws.on('open', () => {
      const v5 = ws.protocol === 'v5.channel.k8s.io';
      if (r.tty && r.termSize) {
        const sendSize = () => {
          const sz = r.termSize!.get();
          if (sz && ws.readyState === ws.OPEN)
            ws.send(
              encodeFrame(CHANNEL.resize, JSON.stringify({ Width: sz.cols, Height: sz.rows })),
            );
        };
        sendSize();
        ws.on('close', r.termSize.onChange(sendSize));
      }
      if (!r.stdin) return;
      r.stdin.on('data', (d: Buffer | string) => {
        if (ws.readyState === ws.OPEN)
          ws.send(encodeFrame(CHANNEL.stdin, typeof d === 'string' ? Buffer.from(d) : d));
      });
      r.stdin.on('end', () => {
        if (v5 && ws.readyState === ws.OPEN) ws.send(Buffer.from([CHANNEL.close, CHANNEL.stdin]));
      });
    });
    ws.on('message', (msg: Buffer) => {
      const f = decodeFrame(msg);
      if (!f) return;
      if (f.channel === CHANNEL.stdout) r.stdout.write(f.data);
      else if (f.channel === CHANNEL.stderr) r.stderr.write(f.data);
      else if (f.channel === CHANNEL.error) {
        try {
          status = JSON.parse(f.data.toString()) as Record<string, unknown>;
        } catch {
          status = { status: 'Failure', message: f.data.toString() };
        }
      }
    });
    ws.on('close', () => {
      if (!status) return resolve(0); // v4/v5 close without a Status: success
      const code = exitCodeOf(status);
      if (code !== undefined) return resolve(code);
      reject(new TendrilError('EXEC_FAILED', String(status.message ?? 'exec failed')));
    });
  });
}

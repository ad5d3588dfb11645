/**
 * `tendril logs POD [-c C] [-f] [-p] [--tail N] [--timestamps] [--since D | --since-time T]`:
 * a lab container's output,
 * read from the API server's pods/log endpoint (the same one `kubectl logs`
 * uses; the API server reads the file the kubelet captures it in).
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Command } from 'commander';
import { ApiError, type Status } from '../k8s/status.js';
import { parseDuration } from '../util/duration.js';
import { TendrilError } from '../util/errors.js';
import { resolveLabTarget } from '../lab/target.js';
import { labAdminClientOptions } from '../lab/client.js';
import type { ResolvedClientOptions } from '../k8s/client-config.js';
import { podPath } from '../lab/kubelet/api.js';
import { tailBuffer } from '../lab/apiserver/streaming.js';
import { fetchPod, pickContainer } from './exec.js';

/** The last `n` lines of a buffer (n < 0: all). */
export const tailLines = tailBuffer;

/** The CA, client certificate and bearer token of client options, for one https request. */
function tlsRequestOptions(auth: ResolvedClientOptions | undefined): {
  headers: Record<string, string>;
  ca?: string;
  cert?: string;
  key?: string;
} {
  const t = auth?.tls;
  const pem = (text?: string, file?: string) =>
    text ?? (file ? readFileSync(file, 'utf8') : undefined);
  const token =
    auth?.token ?? (auth?.tokenFile ? readFileSync(auth.tokenFile, 'utf8').trim() : undefined);
  const ca = pem(t?.ca, t?.caFile);
  const cert = pem(t?.cert, t?.certFile);
  const key = pem(t?.key, t?.keyFile);
  return {
    headers: { accept: '*/*', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
  };
}

/**
 * Streams GET `url` (a pods/log URL) into `out` until the server ends it or
 * `signal` aborts; a non-2xx answer throws the Status as ApiError. An https
 * URL is verified with `auth`'s CA and sent its credential.
 */
export function streamLog(
  url: string,
  out: (d: Buffer) => void,
  signal?: AbortSignal,
  auth?: ResolvedClientOptions,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const https = url.startsWith('https:');
    const opts = https
      ? { ...tlsRequestOptions(auth), agent: false as const, signal }
      : { headers: { accept: '*/*' }, agent: false as const, signal };
    const send = https ? httpsRequest : httpRequest;
    const req = send(url, opts, (res) => {
      const code = res.statusCode ?? 0;
      if (code < 200 || code >= 300) {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let st: Status | undefined;
          try {
            st = JSON.parse(text) as Status;
          } catch {
            st = undefined;
          }
          reject(
            st?.kind === 'Status'
              ? new ApiError(st)
              : new TendrilError('LOGS_FAILED', `GET ${url}: HTTP ${code} ${text.slice(0, 200)}`),
          );
        });
        return;
      }
      res.on('data', out);
      res.on('end', () => resolve());
      res.on('error', reject);
    });
    req.on('error', (err) => (signal?.aborted ? resolve() : reject(err)));
    req.end();
  });
}

/** The options of `tendril logs` that go into the pods/log query. */
export interface LogFlags {
  follow?: boolean;
  previous?: boolean;
  /** Lines from the end (a negative number or undefined: all). */
  tail?: string;
  /** Each line prefixed with its RFC3339Nano time (the kubelet's record of it), as `kubectl logs --timestamps`. */
  timestamps?: boolean;
  /** Only lines newer than this duration ("5s", "2m", "1h"), as `kubectl logs --since`. */
  since?: string;
  /** Only lines from this RFC 3339 time on, as `kubectl logs --since-time`. */
  sinceTime?: string;
}

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/;

/**
 * The pods/log query of `tendril logs` (kubectl's parameter names). A pod
 * reflecting a lab daemon refuses `timestamps` with a message saying so (its
 * log has no per-line times); the CLI passes that message on.
 * @throws TendrilError LOGS_BAD_FLAGS for --since with --since-time or a
 *   --since-time that is no RFC 3339 time; INVALID_DURATION for a bad --since.
 */
export function logQuery(container: string, o: LogFlags): URLSearchParams {
  const q = new URLSearchParams({ container });
  if (o.follow) q.set('follow', 'true');
  if (o.previous) q.set('previous', 'true');
  if (o.timestamps) q.set('timestamps', 'true');
  if (o.since !== undefined && o.sinceTime !== undefined)
    throw new TendrilError(
      'LOGS_BAD_FLAGS',
      'at most one of --since and --since-time may be given',
      {
        hint: 'drop one of them',
      },
    );
  if (o.since !== undefined) {
    // kubectl rounds up to whole seconds
    const ms = parseDuration(o.since, { what: '--since' });
    q.set('sinceSeconds', String(Math.max(1, Math.ceil(ms / 1000))));
  }
  if (o.sinceTime !== undefined) {
    if (!RFC3339.test(o.sinceTime) || !Number.isFinite(Date.parse(o.sinceTime)))
      throw new TendrilError(
        'LOGS_BAD_FLAGS',
        `--since-time "${o.sinceTime}" is no RFC 3339 time`,
        {
          hint: 'write it as 2026-12-06T10:00:00Z (or with an offset, +01:00)',
        },
      );
    q.set('sinceTime', o.sinceTime);
  }
  const tail = Number(o.tail ?? '-1');
  if (Number.isInteger(tail) && tail >= 0) q.set('tailLines', String(tail));
  return q;
}

/** Registers `tendril logs`. */
export function register(program: Command): void {
  program
    .command('logs')
    .description("print a pod's container output")
    .argument('<pod>', 'pod name')
    .option('-c, --container <name>', 'container name')
    .option('-f, --follow', 'stream new output until the container ends')
    .option('-p, --previous', 'the previous (restarted) instance of the container')
    .option('--tail <n>', 'only the last N lines', '-1')
    .option('--timestamps', 'prefix each line with its RFC3339Nano time')
    .option('--since <duration>', 'only lines newer than this (5s, 2m, 1h)')
    .option('--since-time <time>', 'only lines from this RFC 3339 time on')
    .option('-n, --namespace <ns>', 'namespace')
    .action(
      async (
        podName: string,
        o: {
          container?: string;
          follow?: boolean;
          previous?: boolean;
          tail: string;
          timestamps?: boolean;
          since?: string;
          sinceTime?: string;
          namespace?: string;
        },
        command: Command,
      ) => {
        const globals = command.optsWithGlobals() as { context?: string };
        const target = resolveLabTarget(globals.context);
        const ns = o.namespace ?? target.namespace;
        const pod = await fetchPod(target, ns, podName);
        const c = pickContainer(pod, o.container);
        const q = logQuery(c.name, o);
        const ac = new AbortController();
        process.once('SIGINT', () => ac.abort());
        try {
          await streamLog(
            `${target.api.baseURL}${podPath(ns, podName)}/log?${q}`,
            (d) => process.stdout.write(d),
            ac.signal,
            labAdminClientOptions(target.cluster),
          );
        } catch (err) {
          if (err instanceof ApiError && err.httpCode === 400)
            throw new TendrilError('LOGS_NOT_FOUND', err.message, { cause: err });
          throw err;
        }
      },
    );
}

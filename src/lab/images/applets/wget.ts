/**
 * `wget` of the lab's busybox image, with busybox's flags (Debian's busybox
 * 1.35 wget segfaults with -T):
 *   wget [-cqS] [--spider] [-O FILE] [--header STR] [--post-data STR]
 *        [-Y on/off] [--no-check-certificate] [-P DIR] [-U AGENT] [-T SEC] URL...
 * Follows redirects; an HTTP error is `wget: server returned error: HTTP/1.1
 * 404 Not Found` and exit status 1; `-O -` writes to stdout. Like busybox,
 * certificates are not verified.
 */
import { createWriteStream, existsSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { basename, join } from 'node:path';
import { AppletUsageError, last, parseArgs, seconds } from './args.js';
import type { AppletIO } from './nc.js';

const SPECS = [
  { short: 'c', long: 'continue' },
  { short: 'q', long: 'quiet' },
  { short: 'S', long: 'server-response' },
  { long: 'spider' },
  { short: 'O', long: 'output-document', value: true, key: 'O' },
  { short: 'o', long: 'output-file', value: true, key: 'o' },
  { long: 'header', value: true },
  { long: 'post-data', value: true },
  { short: 'Y', long: 'proxy', value: true, key: 'Y' },
  { long: 'no-check-certificate' },
  { short: 'P', long: 'directory-prefix', value: true, key: 'P' },
  { short: 'U', long: 'user-agent', value: true, key: 'U' },
  { short: 'T', long: 'timeout', value: true, key: 'T' },
  { short: 't', long: 'tries', value: true, key: 't' },
];

const USAGE = `Usage: wget [-cqS] [--spider] [-O FILE] [-o LOGFILE] [--header STR]
	[--post-data STR | --post-file FILE] [-Y on/off]
	[--no-check-certificate] [-P DIR] [-U AGENT] [-T SEC] URL...
`;

class WgetError extends Error {}

interface Fetched {
  res: IncomingMessage;
  url: URL;
}

function get(
  url: URL,
  options: { headers: Record<string, string>; body?: string; timeoutMs: number; spider: boolean },
  io: AppletIO,
  quiet: boolean,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const go = (ip: string) => {
      if (!quiet) io.stderr.write(`Connecting to ${url.host} (${ip}:${port})\n`);
      const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
        {
          host: ip,
          port,
          servername: isIP(host) ? undefined : host,
          path: url.pathname + url.search,
          method: options.body !== undefined ? 'POST' : options.spider ? 'HEAD' : 'GET',
          headers: {
            Host: url.host,
            'User-Agent': 'Wget',
            Connection: 'close',
            ...options.headers,
          },
          rejectUnauthorized: false,
        },
        resolve,
      );
      req.setTimeout(options.timeoutMs, () => req.destroy(new WgetError('download timed out')));
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err instanceof WgetError) return reject(err);
        const why =
          err.code === 'ECONNREFUSED'
            ? 'Connection refused'
            : err.code === 'EHOSTUNREACH'
              ? 'No route to host'
              : err.code === 'ECONNRESET'
                ? 'Connection reset by peer'
                : err.message;
        reject(
          new WgetError(
            err.code === 'ECONNRESET'
              ? `error getting response: ${why}`
              : `can't connect to remote host (${ip}): ${why}`,
          ),
        );
      });
      if (options.body !== undefined) req.write(options.body);
      req.end();
    };
    if (isIP(host)) return go(host);
    lookup(host).then(
      (a) => go(a.address),
      () => reject(new WgetError(`bad address '${host}'`)),
    );
  });
}

async function fetchFollowing(
  start: URL,
  options: { headers: Record<string, string>; body?: string; timeoutMs: number; spider: boolean },
  io: AppletIO,
  quiet: boolean,
  showHeaders: boolean,
): Promise<Fetched> {
  let url = start;
  for (let hop = 0; hop < 20; hop++) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new WgetError(`not an http or ftp url: ${url.href}`);
    const res = await get(url, options, io, quiet);
    if (showHeaders) {
      io.stderr.write(`  HTTP/${res.httpVersion} ${res.statusCode} ${res.statusMessage}\n`);
      for (let i = 0; i < res.rawHeaders.length; i += 2)
        io.stderr.write(`  ${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}\n`);
    }
    const code = res.statusCode ?? 0;
    if (code >= 300 && code < 400 && res.headers.location) {
      res.resume();
      url = new URL(res.headers.location, url);
      continue;
    }
    if (code < 200 || code >= 300) {
      res.resume();
      throw new WgetError(
        `server returned error: HTTP/${res.httpVersion} ${code} ${res.statusMessage}`,
      );
    }
    return { res, url };
  }
  throw new WgetError('too many redirections');
}

/** Runs `wget ARGS`; resolves to the exit status. */
export async function wget(args: string[], io: AppletIO): Promise<number> {
  let p;
  try {
    p = parseArgs(args, SPECS);
  } catch (err) {
    io.stderr.write(`wget: ${(err as Error).message}\n${USAGE}`);
    return 1;
  }
  if (p.rest.length === 0) {
    io.stderr.write(USAGE);
    return 1;
  }
  const quiet = p.flags.has('quiet');
  let timeoutMs = 900_000;
  try {
    const t = seconds(last(p, 'T'), '-T');
    if (t !== undefined && t > 0) timeoutMs = t * 1000;
  } catch (err) {
    io.stderr.write(`wget: ${(err as AppletUsageError).message}\n`);
    return 1;
  }
  const headers: Record<string, string> = {};
  for (const h of p.values.get('header') ?? []) {
    const i = h.indexOf(':');
    if (i > 0) headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
  }
  const ua = last(p, 'U');
  if (ua) headers['User-Agent'] = ua;
  const body = last(p, 'post-data');
  if (body !== undefined) headers['Content-Type'] ??= 'application/x-www-form-urlencoded';
  const spider = p.flags.has('spider');
  for (const arg of p.rest) {
    let url: URL;
    try {
      url = new URL(/^[a-z]+:\/\//i.test(arg) ? arg : `http://${arg}`);
    } catch {
      io.stderr.write(`wget: bad address '${arg}'\n`);
      return 1;
    }
    try {
      const { res, url: final } = await fetchFollowing(
        url,
        { headers, body, timeoutMs, spider },
        io,
        quiet,
        p.flags.has('server-response'),
      );
      if (spider) {
        res.resume();
        if (!quiet) io.stderr.write('remote file exists\n');
        continue;
      }
      const out = last(p, 'O');
      if (out === '-') {
        if (!quiet) io.stderr.write('writing to stdout\n');
        await new Promise<void>((resolve, reject) => {
          res.on('data', (d: Buffer) => io.stdout.write(d));
          res.on('end', resolve);
          res.on('error', reject);
        });
        if (!quiet) io.stderr.write('written to stdout\n');
        continue;
      }
      const name = out ?? join(last(p, 'P') ?? '.', basename(final.pathname) || 'index.html');
      if (out === undefined && existsSync(name) && !p.flags.has('continue')) {
        res.resume();
        io.stderr.write(`wget: can't open '${name}': File exists\n`);
        return 1;
      }
      if (!quiet) io.stderr.write(`saving to '${name}'\n`);
      await new Promise<void>((resolve, reject) => {
        const file = createWriteStream(name);
        file.on('error', reject);
        res.on('error', reject);
        res.pipe(file);
        file.on('finish', resolve);
      });
      if (!quiet) io.stderr.write(`'${name}' saved\n`);
    } catch (err) {
      if (err instanceof WgetError) {
        io.stderr.write(`wget: ${err.message}\n`);
        return 1;
      }
      io.stderr.write(`wget: ${(err as Error).message}\n`);
      return 1;
    }
  }
  return 0;
}

/**
 * `nc` of the lab's busybox image, with the flags of the busybox image's own
 * nc (the "bloaty" one Docker's busybox ships; Debian's lacks -v/-z):
 *   nc [-vznu] [-w SEC] [-s ADDR] HOST PORT[-PORT]   connect (or -z: probe)
 *   nc -l [-k] -p PORT [-e PROG ARGS...]             listen
 * `-v` reports `HOST (IP:PORT) open` on stderr, a failure is
 * `nc: HOST (IP:PORT): Connection refused` and exit status 1, as busybox.
 */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { connect, createServer, isIP, type Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { AppletUsageError, last, parseArgs, seconds } from './args.js';

/** The standard streams an applet works with (the process's, or a test's). */
export interface AppletIO {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
}

const SPECS = [
  { short: 'v' },
  { short: 'z' },
  { short: 'n' },
  { short: 'u' },
  { short: 'l' },
  { short: 'k' },
  { short: 'w', value: true },
  { short: 'i', value: true },
  { short: 'p', value: true },
  { short: 's', value: true },
  { short: 'e', value: true },
];

const USAGE = `Usage: nc [OPTIONS] HOST PORT  - connect
nc [OPTIONS] -l -p PORT [HOST] [PORT]  - listen

	-e PROG	Run PROG after connect (must be last)
	-l	Listen mode, for inbound connects
	-lk	With -e, provides persistent server
	-p PORT	Local port
	-s ADDR	Local address
	-w SEC	Timeout for connects and final net reads
	-i SEC	Delay interval for lines sent
	-n	Don't do DNS resolution
	-u	UDP mode
	-v	Verbose
	-z	Zero-I/O mode (scanning)
`;

function errnoText(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'Connection refused';
    case 'ETIMEDOUT':
      return 'Connection timed out';
    case 'EHOSTUNREACH':
      return 'No route to host';
    case 'ENETUNREACH':
      return 'Network is unreachable';
    case 'ECONNRESET':
      return 'Connection reset by peer';
    default:
      return err.message;
  }
}

function ports(text: string): number[] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  const lo = m ? Number(m[1]) : NaN;
  const hi = m?.[2] ? Number(m[2]) : lo;
  if (!m || lo < 1 || hi > 65535 || hi < lo) throw new AppletUsageError(`bad port '${text}'`);
  return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
}

function open(
  host: string,
  port: number,
  options: { timeoutMs?: number; localAddress?: string },
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, localAddress: options.localAddress });
    const timer =
      options.timeoutMs !== undefined
        ? setTimeout(() => {
            const e: NodeJS.ErrnoException = new Error('Connection timed out');
            e.code = 'ETIMEDOUT';
            s.destroy();
            reject(e);
          }, options.timeoutMs)
        : undefined;
    s.once('connect', () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Pipes STDIN to the socket and the socket to STDOUT until the peer closes. */
function relay(s: Socket, io: AppletIO, idleMs: number | undefined): Promise<number> {
  return new Promise((resolve) => {
    s.pipe(io.stdout, { end: false });
    io.stdin.pipe(s);
    io.stdin.once('end', () => {
      if (idleMs !== undefined) s.setTimeout(idleMs, () => s.destroy());
    });
    s.once('error', () => {});
    s.once('close', () => {
      io.stdin.unpipe(s);
      resolve(0);
    });
  });
}

/**
 * Runs `nc ARGS`; resolves to the exit status.
 */
export async function nc(args: string[], io: AppletIO): Promise<number> {
  // -e takes the rest of the line as the program.
  const eAt = args.findIndex((a) => a === '-e' || (/^-[a-z]*e$/.test(a) && a.length > 1));
  const prog = eAt >= 0 ? args.slice(eAt + 1) : [];
  const own = eAt >= 0 ? [...args.slice(0, eAt), args[eAt]!, '_'] : args;
  let p;
  try {
    p = parseArgs(own, SPECS);
  } catch (err) {
    io.stderr.write(`nc: ${(err as Error).message}\n${USAGE}`);
    return 1;
  }
  const verbose = (p.flags.get('v') ?? 0) > 0;
  const timeoutS = seconds(last(p, 'w'), '-w');
  const timeoutMs = timeoutS === undefined ? undefined : timeoutS * 1000;
  if (p.flags.get('l')) return listen(p.rest, last(p, 'p'), p.flags.has('k'), prog, io, verbose);
  if (p.rest.length < 2) {
    io.stderr.write(USAGE);
    return 1;
  }
  const [host, portText] = p.rest as [string, string];
  let portList: number[];
  try {
    portList = ports(portText);
  } catch (err) {
    io.stderr.write(`nc: ${(err as Error).message}\n`);
    return 1;
  }
  let ip = host;
  if (!isIP(host)) {
    if (p.flags.has('n')) {
      io.stderr.write(`nc: bad address '${host}'\n`);
      return 1;
    }
    try {
      ip = (await lookup(host)).address;
    } catch {
      io.stderr.write(`nc: bad address '${host}'\n`);
      return 1;
    }
  }
  if (p.flags.has('u')) return udp(host, ip, portList[0]!, io, verbose, p.flags.has('z'));
  let status = 0;
  for (const port of portList) {
    let s: Socket;
    try {
      s = await open(ip, port, { timeoutMs, localAddress: last(p, 's') });
    } catch (err) {
      // busybox reports a failed probe of a range only with -v; a single port always.
      if (verbose || portList.length === 1)
        io.stderr.write(
          `nc: ${host} (${ip}:${port}): ${errnoText(err as NodeJS.ErrnoException)}\n`,
        );
      status = 1;
      continue;
    }
    if (verbose) io.stderr.write(`${host} (${ip}:${port}) open\n`);
    if (p.flags.has('z')) {
      s.destroy();
      continue;
    }
    if (prog.length > 0) return runProg(s, prog);
    return relay(s, io, timeoutMs);
  }
  return status;
}

function udp(
  host: string,
  ip: string,
  port: number,
  io: AppletIO,
  verbose: boolean,
  zero: boolean,
): Promise<number> {
  return new Promise((resolve) => {
    const sock = createSocket(isIP(ip) === 6 ? 'udp6' : 'udp4');
    sock.on('error', (err) => {
      io.stderr.write(`nc: ${host} (${ip}:${port}): ${errnoText(err)}\n`);
      sock.close();
      resolve(1);
    });
    sock.connect(port, ip, () => {
      if (verbose) io.stderr.write(`${host} (${ip}:${port}) open\n`);
      if (zero) {
        sock.close();
        return resolve(0);
      }
      sock.on('message', (m) => io.stdout.write(m));
      io.stdin.on('data', (d: Buffer) => sock.send(d));
      io.stdin.once('end', () => {
        setTimeout(() => {
          sock.close();
          resolve(0);
        }, 1000);
      });
    });
  });
}

function runProg(s: Socket, prog: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(prog[0]!, prog.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
    s.pipe(child.stdin);
    child.stdout.pipe(s);
    child.stdin.on('error', () => {});
    s.on('error', () => {});
    child.on('error', () => resolve(127));
    child.on('close', (code) => {
      s.end();
      resolve(code ?? 1);
    });
  });
}

function listen(
  rest: string[],
  portText: string | undefined,
  keep: boolean,
  prog: string[],
  io: AppletIO,
  verbose: boolean,
): Promise<number> {
  const port = Number(portText ?? rest[1] ?? 0);
  return new Promise((resolve) => {
    const server = createServer((s) => {
      if (verbose)
        io.stderr.write(
          `connect to [${s.localAddress}]:${s.localPort} from [${s.remoteAddress}]:${s.remotePort}\n`,
        );
      if (!keep) server.close();
      const done = prog.length > 0 ? runProg(s, prog) : relay(s, io, undefined);
      void done.then((code) => {
        if (!keep) resolve(code);
      });
    });
    server.on('error', (err: NodeJS.ErrnoException) => {
      io.stderr.write(`nc: bind: ${err.code === 'EADDRINUSE' ? 'Address in use' : err.message}\n`);
      resolve(1);
    });
    server.listen(port, rest[0], () => {
      if (verbose) {
        const a = server.address();
        if (a && typeof a === 'object')
          io.stderr.write(`listening on [${a.address}]:${a.port} ...\n`);
      }
    });
  });
}

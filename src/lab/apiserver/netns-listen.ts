/**
 * A listening TCP socket inside another network namespace, for a server that
 * runs in the root namespace: the lab API server serves the nodes at
 * <control-plane IP>:6443, an address that exists only in the control
 * plane's namespace. A socket belongs to the namespace it was created in, so
 * socket(2) and bind(2) run with the main thread switched there (setns(2),
 * see withNetns); Node then takes the fd (`server.listen({ fd })`), calls
 * listen(2) on it and accepts as on any other listener.
 */
import { constants } from 'node:os';
import koffi from 'koffi';
import { withNetns } from '../../datapath/bpf/netns.js';
import { TendrilError } from '../../util/errors.js';

/** Address families of socket(2). */
export const AF_INET = 2;
export const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;

interface SocketCalls {
  socket(domain: number, type: number, proto: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, len: number): number;
  bind(fd: number, addr: Buffer, len: number): number;
  close(fd: number): number;
}

let calls: SocketCalls | undefined;

function libc(): SocketCalls {
  if (!calls) {
    const lib = koffi.load('libc.so.6');
    calls = {
      socket: lib.func('int socket(int, int, int)') as SocketCalls['socket'],
      setsockopt: lib.func(
        'int setsockopt(int, int, int, const void *, uint32)',
      ) as SocketCalls['setsockopt'],
      bind: lib.func('int bind(int, const void *, uint32)') as SocketCalls['bind'],
      close: lib.func('int close(int)') as SocketCalls['close'],
    };
  }
  return calls;
}

function errnoName(errno: number): string {
  const hit = Object.entries(constants.errno).find(([, v]) => v === errno);
  return hit ? hit[0] : `errno ${errno}`;
}

/**
 * A non-blocking, close-on-exec TCP socket of `domain` (AF_INET, AF_INET6) in
 * the calling thread's network namespace (call it inside withNetns); -1 on
 * failure (koffi.errno() says why).
 */
export function rawTcpSocket(domain: number): number {
  return libc().socket(domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

/** struct sockaddr_in for an IPv4 address and port. */
function sockaddrIn(host: string, port: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(AF_INET, 0);
  b.writeUInt16BE(port, 2);
  host.split('.').forEach((o, i) => b.writeUInt8(Number(o), 4 + i));
  return b;
}

/**
 * Creates a TCP socket in the network namespace `netns` (a name under
 * /run/netns or a path) and binds it to host:port (IPv4, SO_REUSEADDR as Node
 * sets on its own listeners). Returns the fd, not yet listening: hand it to
 * `server.listen({ fd })`.
 * @throws TendrilError `APISERVER_LISTEN` naming the address, the namespace
 *   and the errno (e.g. EADDRNOTAVAIL when the namespace lacks the address);
 *   BpfError("setns") when the namespace cannot be entered.
 */
export function bindInNetns(netns: string, host: string, port: number): number {
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.split('.').some((o) => Number(o) > 255))
    throw new TendrilError('APISERVER_LISTEN', `listen on ${host}:${port}: not an IPv4 address`, {
      hint: "give the control plane's underlay address, e.g. 172.30.1.10:6443",
    });
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new TendrilError('APISERVER_LISTEN', `listen on ${host}:${port}: not a port`, {
      hint: 'give a port 0..65535',
    });
  const c = libc();
  return withNetns(netns, () => {
    const fd = rawTcpSocket(AF_INET);
    if (fd < 0)
      throw new TendrilError(
        'APISERVER_LISTEN',
        `socket() in network namespace ${netns} failed: ${errnoName(koffi.errno())}`,
        { hint: 'check the open file limit (ulimit -n)' },
      );
    const one = Buffer.alloc(4);
    one.writeInt32LE(1, 0);
    const addr = sockaddrIn(host, port);
    if (c.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4) < 0 || c.bind(fd, addr, 16) < 0) {
      const errno = koffi.errno();
      c.close(fd);
      throw new TendrilError(
        'APISERVER_LISTEN',
        `listen on ${host}:${port} in network namespace ${netns}: ${errnoName(errno)}`,
        {
          hint:
            errno === constants.errno.EADDRINUSE
              ? 'another process listens there: stop it (an old api-forwarder daemon?) or recreate the lab cluster'
              : `the namespace must hold ${host} (\`ip -n ${netns} addr\`); recreate the lab cluster if it does not`,
        },
      );
    }
    return fd;
  });
}

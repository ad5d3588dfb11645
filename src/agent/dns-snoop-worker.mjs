// DNS answer capture thread (plain JS: it must load without the TypeScript
// loader). Opens one AF_PACKET socket in the agent's (the node's) network
// namespace for every interface, with a classic BPF filter that passes only
// IPv4 UDP packets from port 53 (tcpdump -dd 'ip and udp src port 53'), so
// the kernel drops everything else before it reaches user space. Waits in
// poll(2) on the socket and an eventfd (the wake-up for shutdown), and posts
// each captured frame (at most `snapLen` bytes) to the main thread. The main
// thread may also read the socket itself (it has the fd): a packet goes to
// whichever thread reads it first.
import { parentPort, workerData } from 'node:worker_threads';
import koffi from 'koffi';

const { snapLen, control, port } = workerData;
const libc = koffi.load('libc.so.6');
const socket = libc.func('int socket(int domain, int type, int protocol)');
const setsockopt = libc.func('int setsockopt(int fd, int level, int name, void *val, uint32 len)');
const recv = libc.func('int64 recv(int fd, void *buf, uint64 len, int flags)');
const poll = libc.func('int poll(void *fds, uint64 nfds, int timeout)');
const eventfd = libc.func('int eventfd(uint32 initval, int flags)');
const close = libc.func('int close(int fd)');
const ctl = new Int32Array(control); // [0] stop

const AF_PACKET = 17;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const SOCK_NONBLOCK = 0o4000;
const ETH_P_ALL_BE = 0x0300; // htons(0x0003)
const SOL_SOCKET = 1;
const SO_ATTACH_FILTER = 26;
const MSG_DONTWAIT = 0x40;

// {code, jt, jf, k}: ether type IPv4, protocol UDP, not a fragment, source port 53
const FILTER = [
  [0x28, 0, 0, 12],
  [0x15, 0, 8, 0x0800],
  [0x30, 0, 0, 23],
  [0x15, 0, 6, 17],
  [0x28, 0, 0, 20],
  [0x45, 4, 0, 0x1fff],
  [0xb1, 0, 0, 14],
  [0x48, 0, 0, 14],
  [0x15, 0, 1, 53],
  [0x06, 0, 0, 0x40000],
  [0x06, 0, 0, 0],
];

function fail(what) {
  parentPort.postMessage({ type: 'error', message: `${what}: errno ${koffi.errno()}` });
}

const fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, ETH_P_ALL_BE);
if (fd < 0) {
  fail('socket(AF_PACKET)');
} else {
  const prog = Buffer.alloc(FILTER.length * 8);
  FILTER.forEach(([code, jt, jf, k], i) => {
    prog.writeUInt16LE(code, i * 8);
    prog.writeUInt8(jt, i * 8 + 2);
    prog.writeUInt8(jf, i * 8 + 3);
    prog.writeUInt32LE(k, i * 8 + 4);
  });
  // struct sock_fprog { unsigned short len; struct sock_filter *filter; } (x86_64/arm64: 16 bytes)
  const fprog = Buffer.alloc(16);
  fprog.writeUInt16LE(FILTER.length, 0);
  fprog.writeBigUInt64LE(koffi.address(prog), 8);
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, fprog, 16) < 0) {
    fail('setsockopt(SO_ATTACH_FILTER)');
    close(fd);
  } else {
    const efd = eventfd(0, SOCK_CLOEXEC | SOCK_NONBLOCK);
    parentPort.postMessage({ type: 'ready', efd, fd });
    run(fd, efd);
    close(efd);
    close(fd);
  }
}
port.close();
parentPort.postMessage({ type: 'stopped' });

function run(fd, efd) {
  // struct pollfd { int fd; short events; short revents; } x 2
  const fds = Buffer.alloc(16);
  fds.writeInt32LE(fd, 0);
  fds.writeInt16LE(1, 4); // POLLIN
  fds.writeInt32LE(efd, 8);
  fds.writeInt16LE(1, 12);
  const buf = Buffer.alloc(snapLen);
  while (Atomics.load(ctl, 0) === 0) {
    fds.writeInt16LE(0, 6);
    fds.writeInt16LE(0, 14);
    const r = poll(fds, 2, 1000);
    if (r < 0) {
      if (koffi.errno() === 4) continue; // EINTR
      fail('poll');
      return;
    }
    if (Atomics.load(ctl, 0) !== 0) return;
    if (r === 0 || (fds.readInt16LE(6) & 1) === 0) continue;
    for (let i = 0; i < 256; i++) {
      const n = Number(recv(fd, buf, snapLen, MSG_DONTWAIT));
      if (n <= 0) break;
      port.postMessage({ frame: buf.buffer.slice(0, n) });
    }
  }
}

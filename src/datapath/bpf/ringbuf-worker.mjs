// Ring buffer consumer thread (plain JS: it must load without the TypeScript
// loader). Maps the ring buffer, waits in poll(2) on the map fd and an
// eventfd (the wake-up for shutdown), copies committed records into one
// ArrayBuffer per batch and transfers it to the main thread. At most
// `maxOutstanding` batches are in flight; beyond that it waits (Atomics.wait)
// for the main thread to consume, so a slow reader backs up into the kernel
// ring (which then drops), not into memory.
//
// Wake-ups: the kernel wakes a poller when a record is committed while the
// consumer is caught up, i.e. once per record at moderate rates. Each wake-up
// is a context switch onto a CPU that is serving packets, which cost far more
// than reading the record (Hubble on halved new-connection rates). With
// `batchDelayMs` > 0 the worker, after reading records, waits that long before
// reading again; records committed meanwhile raise no wake-up (the consumer is
// behind), so a busy ring costs at most 1000/batchDelayMs wake-ups a second
// and an idle one none (it blocks in poll).
//
// Ring layout (kernel/bpf/ringbuf.c): page 0 (read-write) holds consumer_pos;
// from offset 4096 a read-only mapping holds producer_pos, then the data area
// mapped twice so a record never wraps. Record header: u32 len with bit 31
// BUSY and bit 30 DISCARD, u32 pad; records are 8-byte aligned.
import { parentPort, workerData } from 'node:worker_threads';
import koffi from 'koffi';

const { fd, size, control, maxBatchBytes, maxOutstanding, batchDelayMs = 0 } = workerData;
const PAGE = 4096;
const libc = koffi.load('libc.so.6');
const mmap = libc.func(
  'void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64 off)',
);
const munmap = libc.func('int munmap(void *addr, size_t len)');
const poll = libc.func('int poll(void *fds, uint64 nfds, int timeout)');
const eventfd = libc.func('int eventfd(uint32 initval, int flags)');
const close = libc.func('int close(int fd)');
const ctl = new Int32Array(control); // [0] stop, [1] outstanding batches

function fail(what) {
  parentPort.postMessage({ type: 'error', message: `${what}: errno ${koffi.errno()}` });
}

function isFailed(p) {
  return p === null || koffi.address(p) === 0xffffffffffffffffn;
}

const consPtr = mmap(null, PAGE, 3, 1, fd, 0);
if (isFailed(consPtr)) {
  fail('mmap consumer page');
} else {
  const prodLen = PAGE + 2 * size;
  const prodPtr = mmap(null, prodLen, 1, 1, fd, PAGE);
  if (isFailed(prodPtr)) {
    fail('mmap producer pages');
    munmap(consPtr, PAGE);
  } else {
    const efd = eventfd(0, 0o2000000 | 0o4000);
    parentPort.postMessage({ type: 'ready', efd });
    run(consPtr, prodPtr, prodLen, efd);
    munmap(prodPtr, prodLen);
    munmap(consPtr, PAGE);
    close(efd);
  }
}
parentPort.postMessage({ type: 'stopped' });

function run(consPtr, prodPtr, prodLen, efd) {
  const consView = new DataView(koffi.view(consPtr, PAGE));
  const prodBuf = koffi.view(prodPtr, prodLen);
  const prodView = new DataView(prodBuf);
  const data = new Uint8Array(prodBuf, PAGE);
  const hdrView = new DataView(prodBuf, PAGE);
  let recOff = new Uint32Array(1024);
  let recLen = new Uint32Array(1024);
  const mask = BigInt(size - 1);
  const pfds = Buffer.from(new ArrayBuffer(16));
  pfds.writeInt32LE(fd, 0);
  pfds.writeInt16LE(1, 4); // POLLIN
  pfds.writeInt32LE(efd, 8);
  pfds.writeInt16LE(1, 12);
  for (;;) {
    if (Atomics.load(ctl, 0) !== 0) return;
    while (Atomics.load(ctl, 1) >= maxOutstanding) {
      if (Atomics.load(ctl, 0) !== 0) return;
      Atomics.wait(ctl, 1, Atomics.load(ctl, 1), 200);
    }
    let cons = consView.getBigUint64(0, true);
    const prod = prodView.getBigUint64(0, true);
    // first pass: where the committed records are (no copies yet)
    let n = 0;
    let bytes = 0;
    let busy = false;
    while (cons < prod && bytes < maxBatchBytes) {
      const off = Number(cons & mask);
      const hdr = hdrView.getUint32(off, true);
      if (hdr & 0x80000000) {
        busy = true; // reserved, not yet committed
        break;
      }
      const len = hdr & 0x3fffffff;
      if (!(hdr & 0x40000000)) {
        if (n === recOff.length) {
          const grow = new Uint32Array(recOff.length * 2);
          grow.set(recOff);
          recOff = grow;
          const growL = new Uint32Array(recLen.length * 2);
          growL.set(recLen);
          recLen = growL;
        }
        recOff[n] = off + 8;
        recLen[n] = len;
        n++;
        bytes += len;
      }
      cons += BigInt((len + 8 + 7) & ~7);
    }
    if (n > 0) {
      // second pass: one buffer for the batch, then release the ring space
      const out = new Uint8Array(bytes);
      const offsets = new Uint32Array(n + 1);
      let p = 0;
      for (let i = 0; i < n; i++) {
        offsets[i] = p;
        out.set(data.subarray(recOff[i], recOff[i] + recLen[i]), p);
        p += recLen[i];
      }
      offsets[n] = p;
      consView.setBigUint64(0, cons, true);
      Atomics.add(ctl, 1, 1);
      parentPort.postMessage({ type: 'batch', buf: out.buffer, offsets: offsets.buffer }, [
        out.buffer,
        offsets.buffer,
      ]);
      // let records gather (they raise no wake-up while we are behind)
      if (batchDelayMs > 0 && bytes < maxBatchBytes) Atomics.wait(ctl, 0, 0, batchDelayMs);
      continue;
    }
    consView.setBigUint64(0, cons, true);
    if (busy) {
      // A producer is mid-write: give it a moment rather than spin.
      Atomics.wait(ctl, 0, 0, 1);
      continue;
    }
    pfds.writeInt16LE(0, 6);
    pfds.writeInt16LE(0, 14);
    const r = poll(pfds, 2, -1);
    if (r < 0 && koffi.errno() !== 4) {
      fail('poll');
      return;
    }
  }
}

// The per-pod helper of test/e2e/policy-matrix.privileged.test.ts, run inside
// a lab pod's network namespace and cgroup (lab-fixture's inPodCommand): one
// long-lived process per pod that
//   - echoes on TCP and UDP on every port given in argv (each line / datagram
//     comes back as sent), and
//   - answers requests read as JSON lines on stdin, one JSON line on stdout each:
//       {"id":1,"op":"probe","targets":[{"ip":"10.1.0.5","port":80,"proto":"tcp"}],"timeoutMs":1500}
//         -> {"id":1,"results":[true]}   (the peer echoed within timeoutMs)
//       (a TCP target may name "from": the local address to connect from)
//       {"id":2,"op":"open","ip":"10.1.0.5","port":80,"timeoutMs":1500}
//         -> {"id":2,"ok":true,"conn":1}  (a TCP connection kept open)
//       {"id":3,"op":"ping","conn":1,"timeoutMs":1500} -> {"id":3,"ok":true}
//       {"id":4,"op":"close","conn":1} -> {"id":4,"ok":true}
// Probes of one request run concurrently, at most 64 at once. A plain .mjs
// file so that it starts fast (no TypeScript loader), once per pod.
import dgram from 'node:dgram';
import net from 'node:net';
import readline from 'node:readline';

const ports = process.argv.slice(2).map(Number);
let listening = 0;
for (const port of ports) {
  net
    .createServer((s) => {
      s.on('error', () => {});
      s.pipe(s);
    })
    .listen(port, '0.0.0.0', ready);
  const u = dgram.createSocket('udp4');
  u.on('message', (msg, from) => u.send(msg, from.port, from.address));
  u.bind(port, '0.0.0.0', ready);
}
function ready() {
  if (++listening === ports.length * 2) out({ ready: true });
}

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

/** Resolves true when a TCP connection to ip:port echoes a line within ms. */
function probeTcp(ip, port, ms, from) {
  return new Promise((resolve) => {
    const s = net.connect({ host: ip, port, ...(from ? { localAddress: from } : {}) });
    const done = (v) => {
      clearTimeout(t);
      s.destroy();
      resolve(v);
    };
    const t = setTimeout(() => done(false), ms);
    let got = '';
    s.on('connect', () => s.write('ping\n'));
    s.on('data', (d) => {
      got += d;
      if (got.includes('ping\n')) done(true);
    });
    s.on('error', () => done(false));
  });
}

/** Resolves true when a UDP datagram to ip:port comes back within ms (sent twice: at 0 and ms/2). */
function probeUdp(ip, port, ms) {
  return new Promise((resolve) => {
    const u = dgram.createSocket('udp4');
    const msg = Buffer.from(`probe-${Math.random()}`);
    let over = false;
    const done = (v) => {
      if (over) return;
      over = true;
      clearTimeout(t);
      clearTimeout(again);
      u.close();
      resolve(v);
    };
    const t = setTimeout(() => done(false), ms);
    const send = () => u.send(msg, port, ip, (err) => err && done(false));
    const again = setTimeout(send, ms / 2);
    u.on('message', (m) => m.equals(msg) && done(true));
    u.on('error', () => done(false));
    send();
  });
}

async function pool(items, n, fn) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return results;
}

const conns = new Map();
let connIds = 0;

async function handle(req) {
  const ms = req.timeoutMs ?? 1500;
  switch (req.op) {
    case 'probe':
      return {
        results: await pool(req.targets, 64, (t) =>
          t.proto === 'udp' ? probeUdp(t.ip, t.port, ms) : probeTcp(t.ip, t.port, ms, t.from),
        ),
      };
    case 'open':
      return new Promise((resolve) => {
        const s = net.connect({ host: req.ip, port: req.port });
        const t = setTimeout(() => {
          s.destroy();
          resolve({ ok: false });
        }, ms);
        s.on('error', () => {});
        s.once('connect', () => {
          clearTimeout(t);
          const id = ++connIds;
          conns.set(id, s);
          resolve({ ok: true, conn: id });
        });
      });
    case 'ping': {
      const s = conns.get(req.conn);
      if (!s || s.destroyed) return { ok: false };
      return new Promise((resolve) => {
        const word = `p${Math.random()}\n`;
        let got = '';
        const onData = (d) => {
          got += d;
          if (got.includes(word)) finish(true);
        };
        const finish = (v) => {
          clearTimeout(t);
          s.off('data', onData);
          resolve({ ok: v });
        };
        const t = setTimeout(() => finish(false), ms);
        s.on('data', onData);
        s.write(word);
      });
    }
    case 'close':
      conns.get(req.conn)?.destroy();
      conns.delete(req.conn);
      return { ok: true };
    default:
      return { error: `unknown op ${req.op}` };
  }
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const req = JSON.parse(line);
  handle(req).then((r) => out({ id: req.id, ...r }));
});
process.stdin.on('end', () => process.exit(0));

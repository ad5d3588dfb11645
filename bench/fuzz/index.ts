/**
 * Fuzz benchmark: fast-check cases against the lab API server (REST bodies,
 * patches of the three kinds, list and watch query strings, `apply` of
 * multi-document YAML manifests) and the cluster DNS server (random and
 * malformed packets, many compressed questions, EDNS sizes; in-process and
 * over real UDP and TCP sockets). Both servers run in this process on
 * loopback; HTTP requests reuse keep-alive connections.
 *
 *   fuzz_cases                 all cases run (API server + DNS)
 *   fuzz_api_cases             API server cases (one request, or one apply of a manifest)
 *   fuzz_server_errors         5xx answers from the API server (must be 0; the one 5xx Kubernetes
 *                              itself gives, 504 ResourceVersionTooLarge, is counted apart)
 *   fuzz_rv_too_large_504      those 504s
 *   fuzz_crashes               uncaught exceptions, unhandled rejections, a server that stopped
 *                              answering, a DNS handler that threw (must be 0)
 *   fuzz_dns_cases             DNS cases (in-process handler + UDP + TCP)
 *   fuzz_dns_oversize          UDP answers over 512 bytes (or the query's EDNS size) (must be 0)
 *   fuzz_dns_amplification_max largest UDP answer bytes / query bytes seen on the socket
 *
 * Sizes: FUZZ_API_CASES (default 20000), FUZZ_DNS_CASES (default 80000, in-process),
 * FUZZ_DNS_WIRE_CASES (default 10000, half UDP half TCP), FUZZ_SEED.
 *
 * Run: npm run bench -- fuzz
 */
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import fc from 'fast-check';
import { report, type Figure } from '../lib/report.js';
import { applyObjects } from '../../src/k8s/apply.js';
import { KubeClient } from '../../src/k8s/client.js';
import { parseManifest } from '../../src/k8s/manifest.js';
import { ApiError } from '../../src/k8s/status.js';
import {
  manifestArb,
  objectArb,
  patchArb,
  pathArb,
  queryArb,
  watchQueryArb,
  fuzzPaths,
} from '../../src/lab/apiserver/fuzz-arbitraries.js';
import { startBareApiServer } from '../../src/lab/apiserver/testing.js';
import { dnsQueryArb, udpAnswerLimit } from '../../src/dns/fuzz-arbitraries.js';
import { ServiceRecordStore } from '../../src/dns/records.js';
import { handleQuery, startDNSServer } from '../../src/dns/server.js';
import { svc } from '../../src/services/fixtures.js';
import { addBigHeadlessService } from '../../src/dns/testing.js';

const API_CASES = Number(process.env.FUZZ_API_CASES ?? 20_000);
const DNS_CASES = Number(process.env.FUZZ_DNS_CASES ?? 80_000);
const DNS_WIRE_CASES = Number(process.env.FUZZ_DNS_WIRE_CASES ?? 10_000);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const PARALLEL = 8;

const load0 = loadavg()[0]!;
let crashes = 0;
const crashNotes: string[] = [];
process.on('uncaughtException', (err) => {
  crashes++;
  if (crashNotes.length < 5) crashNotes.push(`uncaught: ${err.stack ?? String(err)}`);
});
process.on('unhandledRejection', (err) => {
  crashes++;
  if (crashNotes.length < 5) crashNotes.push(`unhandled rejection: ${String(err)}`);
});

// ---------------------------------------------------------------- API server
// On tmpfs when there is one: the fuzz run tests the server's logic, not the disk's fsync rate.
const apiServer = await startBareApiServer(
  'bench-fuzz',
  {},
  existsSync('/dev/shm') ? '/dev/shm' : tmpdir(),
);
const { port } = apiServer;
const agent = new Agent({ keepAlive: true, maxSockets: PARALLEL * 2 });
const kube = new KubeClient({ server: `http://127.0.0.1:${port}`, timeoutMs: 20_000 });

let apiCases = 0;
let serverErrors = 0;
let rvTooLarge = 0;
let transportErrors = 0;
const errorNotes: string[] = [];

interface Answer {
  status: number;
  body: string;
}

/** One request over the keep-alive agent; a reused socket the server closed is retried once on a new one. */
function call(
  method: string,
  path: string,
  body: string | undefined,
  contentType: string,
  stream = false,
  fresh = false,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent: fresh ? false : agent,
        headers: { 'content-type': contentType },
        timeout: 30_000,
      },
      (res) => {
        if (stream && res.statusCode! < 300) {
          // A watch that started: the status line is the answer; stop reading. A refused
          // watch ends with a Status body (504 ResourceVersionTooLarge): read below.
          resolve({ status: res.statusCode!, body: '' });
          res.destroy();
          return;
        }
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          if (text.length < 4096) text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode!, body: text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer in 30 s')));
    req.on('error', (err: NodeJS.ErrnoException) => {
      // The server may close a kept-alive connection after answering before it read the
      // body (lingerThenClose): a fresh connection is the client's ordinary recovery.
      if (!fresh && (req.reusedSocket || err.code === 'ECONNRESET' || err.code === 'EPIPE'))
        call(method, path, body, contentType, stream, true).then(resolve, reject);
      else reject(err);
    });
    req.end(body);
  });
}

function judge(what: string, r: Answer): void {
  if (r.status < 500) return;
  if (r.status === 504 && /ResourceVersionTooLarge|Too large resource version/.test(r.body)) {
    rvTooLarge++;
    return;
  }
  serverErrors++;
  if (errorNotes.length < 10) errorNotes.push(`${what} -> ${r.status} ${r.body.slice(0, 300)}`);
}

async function safely(what: string, f: () => Promise<void>): Promise<void> {
  try {
    await f();
  } catch (err) {
    transportErrors++;
    if (errorNotes.length < 10) errorNotes.push(`${what} -> ${String(err)}`);
  }
}

const apiCaseArb = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .tuple(
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'),
        pathArb,
        queryArb,
        fc.oneof(
          objectArb.object.map((o) => JSON.stringify(o)),
          fc.string(),
          fc.constantFrom('', 'null', '[]', '{', '"x"', '{"__proto__":{"x":1}}'),
        ),
      )
      .map(([method, path, query, body]) => ({ kind: 'rest' as const, method, path, query, body })),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(pathArb, queryArb, patchArb)
      .map(([path, query, patch]) => ({ kind: 'patch' as const, path, query, patch })),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(...fuzzPaths), watchQueryArb)
      .map(([path, query]) => ({ kind: 'watch' as const, path, query })),
  },
  { weight: 1, arbitrary: manifestArb.map((text) => ({ kind: 'apply' as const, text })) },
);
type ApiCase = typeof apiCaseArb extends fc.Arbitrary<infer T> ? T : never;

async function runApiCase(c: ApiCase): Promise<void> {
  apiCases++;
  switch (c.kind) {
    case 'rest': {
      const what = `${c.method} ${c.path}?${c.query} ${c.body.slice(0, 200)}`;
      await safely(what, async () =>
        judge(
          what,
          await call(
            c.method,
            `${c.path}?${c.query}`,
            c.method === 'GET' ? undefined : c.body,
            'application/json',
          ),
        ),
      );
      return;
    }
    case 'patch': {
      const what = `PATCH ${c.path}?${c.query} (${c.patch.contentType}) ${c.patch.body.slice(0, 200)}`;
      await safely(what, async () =>
        judge(what, await call('PATCH', `${c.path}?${c.query}`, c.patch.body, c.patch.contentType)),
      );
      return;
    }
    case 'watch': {
      const what = `GET ${c.path}?${c.query}`;
      await safely(what, async () =>
        judge(what, await call('GET', `${c.path}?${c.query}`, undefined, 'application/json', true)),
      );
      return;
    }
    case 'apply': {
      const what = `apply ${JSON.stringify(c.text.slice(0, 200))}`;
      let objects;
      try {
        objects = parseManifest(c.text, 'fuzz.yaml');
      } catch {
        return; // refused before anything reaches the server, with a ManifestError
      }
      try {
        await applyObjects(kube, objects, { namespace: 'default' });
      } catch (err) {
        if (err instanceof ApiError) {
          judge(what, { status: err.httpCode, body: err.message });
          return;
        }
        // Client-side refusals (TendrilError) are fine; transport errors are not.
        const code = (err as { code?: string }).code ?? '';
        if (/ECONN|EPIPE|SOCKET|TIMEOUT|K8S_UNREACHABLE/i.test(code)) {
          transportErrors++;
          if (errorNotes.length < 10) errorNotes.push(`${what} -> ${String(err)}`);
        }
      }
    }
  }
}

const tApi = performance.now();
const perWorker = Math.ceil(API_CASES / PARALLEL);
await Promise.all(
  Array.from({ length: PARALLEL }, (_, w) =>
    fc.check(
      fc.asyncProperty(apiCaseArb, async (c) => {
        await runApiCase(c);
        return true;
      }),
      { numRuns: perWorker, seed: SEED + w, endOnFailure: true },
    ),
  ),
);
const apiSeconds = (performance.now() - tApi) / 1000;
const health = await call('GET', '/healthz', undefined, 'text/plain').catch(() => undefined);
if (health?.status !== 200) {
  crashes++;
  crashNotes.push(`API server no longer healthy after the run: ${health?.status ?? 'no answer'}`);
}
agent.destroy();
await apiServer.close();

// ---------------------------------------------------------------- DNS server
const store = new ServiceRecordStore();
store.upsertService(svc('a'));
addBigHeadlessService(store, 200);
let dnsCases = 0;
let dnsOversize = 0;
const dnsNotes: string[] = [];

const tDns = performance.now();
fc.check(
  fc.property(dnsQueryArb, (q) => {
    dnsCases++;
    for (const transport of ['udp', undefined] as const) {
      try {
        const r = handleQuery(q, { source: store }, transport);
        if (transport === 'udp' && r && r.buf.length > udpAnswerLimit(q)) {
          dnsOversize++;
          if (dnsNotes.length < 5)
            dnsNotes.push(
              `UDP answer of ${r.buf.length} bytes to ${q.toString('hex').slice(0, 120)}`,
            );
        }
      } catch (err) {
        crashes++;
        if (crashNotes.length < 5)
          crashNotes.push(
            `DNS handler threw on ${q.toString('hex').slice(0, 120)}: ${String(err)}`,
          );
      }
    }
    return true;
  }),
  { numRuns: DNS_CASES, seed: SEED },
);

// Over the wire: a real server on loopback, UDP and TCP.
const server = await startDNSServer({ host: '127.0.0.1', port: 0, source: store });
let amplificationMax = 0;
let udpAnswered = 0;
let tcpAnswered = 0;
const wire = fc.sample(dnsQueryArb, { numRuns: DNS_WIRE_CASES, seed: SEED + 100 });

// UDP: batches of 64; each query gets a unique id (its first two bytes) to pair answers.
const udp = createSocket('udp4');
await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
const udpQueries = wire.slice(0, wire.length >> 1).filter((q) => q.length >= 2);
const pending = new Map<number, Buffer>();
let onAll: (() => void) | undefined;
udp.on('message', (m) => {
  if (m.length < 2) return;
  const q = pending.get(m.readUInt16BE(0));
  if (!q) return;
  pending.delete(m.readUInt16BE(0));
  udpAnswered++;
  amplificationMax = Math.max(amplificationMax, m.length / q.length);
  if (m.length > udpAnswerLimit(q)) {
    dnsOversize++;
    if (dnsNotes.length < 5) dnsNotes.push(`UDP answer of ${m.length} bytes on the wire`);
  }
  if (pending.size === 0) onAll?.();
});
for (let i = 0; i < udpQueries.length; i += 64) {
  pending.clear();
  for (const [j, q0] of udpQueries.slice(i, i + 64).entries()) {
    const q = Buffer.from(q0);
    q.writeUInt16BE(j, 0);
    pending.set(j, q);
    dnsCases++;
    udp.send(q, server.port, '127.0.0.1');
  }
  // Malformed queries get no answer: wait for all answers or 150 ms of silence.
  await new Promise<void>((resolve) => {
    let timer = setTimeout(resolve, 150);
    onAll = () => {
      clearTimeout(timer);
      resolve();
    };
    udp.on('message', function bump() {
      clearTimeout(timer);
      timer = setTimeout(() => {
        udp.off('message', bump);
        resolve();
      }, 150);
    });
  });
  udp.removeAllListeners('message');
  udp.on('message', (m) => {
    if (m.length < 2) return;
    const q = pending.get(m.readUInt16BE(0));
    if (!q) return;
    pending.delete(m.readUInt16BE(0));
    udpAnswered++;
    amplificationMax = Math.max(amplificationMax, m.length / q.length);
    if (m.length > udpAnswerLimit(q)) dnsOversize++;
    if (pending.size === 0) onAll?.();
  });
}
udp.close();

// TCP: frames of several queries per write on one connection (reopened when the server closes
// it), plus raw byte streams with broken framing on connections of their own.
const tcpQueries = wire.slice(wire.length >> 1);
function openTcp(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(server.port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}
for (let i = 0; i < tcpQueries.length; i += 32) {
  const batch = tcpQueries.slice(i, i + 32);
  const sock = await openTcp();
  let buf = Buffer.alloc(0);
  await new Promise<void>((resolve) => {
    let timer = setTimeout(() => sock.destroy(), 300);
    sock.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        tcpAnswered++;
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      clearTimeout(timer);
      timer = setTimeout(() => sock.destroy(), 150);
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
    const frames: Buffer[] = [];
    for (const q of batch) {
      dnsCases++;
      const f = Buffer.alloc(2);
      f.writeUInt16BE(q.length, 0);
      frames.push(f, q);
    }
    // Every fourth batch ends with a frame that claims more than it sends.
    if ((i >> 5) % 4 === 3) frames.push(Buffer.from([0xff, 0xff, 1, 2, 3]));
    sock.write(Buffer.concat(frames));
  });
}
// The server still answers after all that.
const probe = handleQuery(udpQueries[0] ?? Buffer.alloc(12), { source: store }, 'udp');
void probe;
const alive = await new Promise<boolean>((resolve) => {
  const u = createSocket('udp4');
  const q = Buffer.from(
    '00070100000100000000000001610764656661756c74037376630763' +
      '6c7573746572056c6f63616c0000010001',
    'hex',
  );
  u.on('message', () => {
    u.close();
    resolve(true);
  });
  u.send(q, server.port, '127.0.0.1');
  setTimeout(() => {
    try {
      u.close();
    } catch {
      /* closed */
    }
    resolve(false);
  }, 2000).unref();
});
if (!alive) {
  crashes++;
  crashNotes.push('DNS server stopped answering over UDP');
}
await server.close();
const dnsSeconds = (performance.now() - tDns) / 1000;

for (const n of [...errorNotes, ...crashNotes, ...dnsNotes]) console.log(`  ! ${n}`);
const figures: Figure[] = [
  { name: 'fuzz_cases', value: apiCases + dnsCases, unit: 'cases', note: `seed ${SEED}` },
  {
    name: 'fuzz_api_cases',
    value: apiCases,
    unit: 'cases',
    note: `${(apiCases / apiSeconds).toFixed(0)}/s, ${PARALLEL} keep-alive clients`,
  },
  { name: 'fuzz_server_errors', value: serverErrors, unit: 'answers', note: '5xx; must be 0' },
  {
    name: 'fuzz_rv_too_large_504',
    value: rvTooLarge,
    unit: 'answers',
    note: '504 ResourceVersionTooLarge, as Kubernetes answers a list at a future RV',
  },
  {
    name: 'fuzz_transport_errors',
    value: transportErrors,
    unit: 'requests',
    note: 'no HTTP answer (reset, timeout)',
  },
  { name: 'fuzz_crashes', value: crashes, unit: 'crashes', note: 'must be 0' },
  {
    name: 'fuzz_dns_cases',
    value: dnsCases,
    unit: 'cases',
    note: `${DNS_CASES} in-process, ${udpQueries.length} UDP (${udpAnswered} answered), ${tcpQueries.length} TCP (${tcpAnswered} answered); ${dnsSeconds.toFixed(0)} s`,
  },
  { name: 'fuzz_dns_oversize', value: dnsOversize, unit: 'answers', note: 'must be 0' },
  {
    name: 'fuzz_dns_amplification_max',
    value: amplificationMax,
    unit: 'x',
    note: 'largest UDP answer bytes / query bytes',
  },
  { name: 'fuzz_seconds', value: apiSeconds + dnsSeconds, unit: 's' },
  { name: 'load_average_1m', value: load0, unit: '', note: 'at start' },
];
report('fuzz', figures);
process.exit(0);

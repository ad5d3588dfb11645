/**
 * Property-based fuzzing (fast-check) of the lab API server's REST surface and
 * the DNS server's packet parser: whatever a client sends, the API server
 * answers below 500 and stays up, and the DNS parser never throws and never
 * answers more than 512 bytes over UDP without EDNS. A bounded number of cases
 * here; raise FUZZ_RUNS for a longer run.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { handleQuery } from '../../dns/server.js';
import { ServiceRecordStore } from '../../dns/records.js';
import { compressedQuestions } from '../../dns/fuzz-arbitraries.js';
import { objectArb, pathArb, queryArb } from './fuzz-arbitraries.js';
import { startBareApiServer, type BareApiServer } from './testing.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

function call(
  port: number,
  method: string,
  path: string,
  body: string | undefined,
  contentType: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      // One connection per request: the server may close a kept-alive connection
      // after an answer sent before the body was read (lingerThenClose), which a
      // reusing client would see as a hang-up of the next, unrelated request.
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent: false,
        headers: { 'content-type': contentType },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('fuzz: lab API server REST bodies and query strings', () => {
  let server: BareApiServer;
  let port: number;
  before(async () => {
    server = await startBareApiServer('apiserver-fuzz');
    port = server.port;
  });
  after(() => server.close());

  it(`no request gets a 5xx (${RUNS} cases)`, { timeout: 600_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'),
        pathArb,
        queryArb,
        fc.oneof(
          objectArb.object.map((o) => JSON.stringify(o)),
          fc.string(),
          fc.constantFrom('', 'null', '[]', '{', '"x"', '{"__proto__":{"x":1}}'),
        ),
        async (method, path, query, body) => {
          // Watches stream; the query fuzz covers them through lists.
          const q = query.replace(/(^|&)watch=[^&]*/g, '');
          const r = await call(
            port,
            method,
            `${path}?${q}`,
            method === 'GET' ? undefined : body,
            'application/json',
          );
          assert.ok(
            r.status < 500 || (r.status === 504 && /ResourceVersionTooLarge/.test(r.body)),
            `${method} ${path}?${q} ${body.slice(0, 200)} -> ${r.status} ${r.body.slice(0, 300)}`,
          );
        },
      ),
      { numRuns: RUNS },
    );
    const health = await call(port, 'GET', '/healthz', undefined, 'text/plain');
    assert.equal(health.status, 200);
  });
});

describe('fuzz: DNS packet parser', () => {
  const store = new ServiceRecordStore();
  const opts = { source: store };
  const valid = dnsPacket.encode({
    type: 'query',
    id: 1,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: 'A', name: 'a.default.svc.cluster.local', class: 'IN' }],
  });

  it(`never throws; UDP answers fit in 512 bytes (${RUNS * 10} cases)`, () => {
    const check = (buf: Buffer) => {
      const r = handleQuery(buf, opts, 'udp');
      if (r) assert.ok(r.buf.length <= 512, `answer of ${r.buf.length} bytes`);
      handleQuery(buf, opts, undefined);
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => check(Buffer.from(bytes))),
      { numRuns: RUNS * 5 },
    );
    // Several questions, compressed (each a pointer to the first name): FORMERR, small.
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 400 }), (n) => {
        const q = compressedQuestions(n, 'a.default.svc.cluster.local');
        check(q);
        const tcp = handleQuery(q, opts, undefined);
        assert.ok(
          !tcp || tcp.buf.length <= 512,
          `TCP answer of ${tcp?.buf.length} bytes to ${n} questions`,
        );
      }),
      { numRuns: Math.min(RUNS, 200) },
    );
    // Mutations of a valid query (header counts, pointers, lengths).
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), {
          maxLength: 6,
        }),
        fc.uint8Array({ maxLength: 64 }),
        (edits, tail) => {
          const b = Buffer.concat([Buffer.from(valid), Buffer.from(tail)]);
          for (const [i, v] of edits) b[i] = v;
          check(b);
        },
      ),
      { numRuns: RUNS * 5 },
    );
  });
});

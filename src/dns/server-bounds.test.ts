/**
 * The DNS server under hostile queries: no amplification over UDP, TCP
 * backpressure, a connection cap.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import dnsPacket from 'dns-packet';
import { ServiceRecordStore } from './records.js';
import { compressedQuestions } from './fuzz-arbitraries.js';
import { handleQuery, startDNSServer, type DNSServer } from './server.js';
import { addBigHeadlessService } from './testing.js';

function frame(p: Buffer): Buffer {
  const f = Buffer.alloc(2 + p.length);
  f.writeUInt16BE(p.length, 0);
  p.copy(f, 2);
  return f;
}

describe('DNS server bounds', () => {
  let server: DNSServer;
  const store = new ServiceRecordStore();
  before(async () => {
    addBigHeadlessService(store, 60);
    server = await startDNSServer({
      host: '127.0.0.1',
      port: 0,
      source: store,
      maxTcpConnections: 4,
    });
  });
  after(async () => server?.close());

  test('a query with 230 compressed questions gets a small FORMERR, not a 59 KB answer', async () => {
    const q = compressedQuestions(230, 'big.default.svc.cluster.local');
    assert.ok(q.length < 1500);
    const u = createSocket('udp4');
    const resp = await new Promise<Buffer>((resolve, reject) => {
      u.on('message', (m) => resolve(m));
      u.send(q, server.port, '127.0.0.1');
      setTimeout(() => reject(new Error('no answer')), 2000).unref();
    });
    u.close();
    assert.ok(resp.length <= 512, `answer of ${resp.length} bytes to a ${q.length}-byte query`);
    const d = dnsPacket.decode(resp) as ReturnType<typeof dnsPacket.decode> & { rcode: string };
    assert.equal(d.id, 1);
    assert.equal(d.rcode, 'FORMERR');
    // Over TCP too: no multi-question answers.
    const tcp = handleQuery(q, { source: store }, undefined)!;
    assert.equal(tcp.rcode, 'FORMERR');
    assert.ok(tcp.buf.length <= 512);
  });

  test('UDP answers never exceed the requester size (512 without EDNS, else its size)', () => {
    const q = (ednsPayload?: number) =>
      dnsPacket.encode({
        type: 'query',
        id: 1,
        questions: [{ type: 'A', name: 'big.default.svc.cluster.local', class: 'IN' }],
        additionals: ednsPayload
          ? [{ type: 'OPT', name: '.', udpPayloadSize: ednsPayload } as never]
          : [],
      });
    for (const [size, limit] of [
      [undefined, 512],
      [100, 512],
      [700, 700],
      [1232, 1232],
      [65535, 4096],
    ] as const) {
      const r = handleQuery(q(size), { source: store }, 'udp')!;
      assert.ok(r.buf.length <= limit, `EDNS ${size}: ${r.buf.length} > ${limit}`);
    }
  });

  test('TCP: a client that does not read stops getting answers (backpressure)', async () => {
    const before = server.stats().NOERROR ?? 0;
    const q = dnsPacket.encode({
      type: 'query',
      id: 1,
      questions: [{ type: 'A', name: 'big.default.svc.cluster.local', class: 'IN' }],
    });
    const n = 20_000; // ~2.6 KB answers each: ~50 MB if nothing pushed back
    const all = Buffer.concat(Array.from({ length: n }, () => frame(q)));
    const s = connect(server.port, '127.0.0.1');
    s.pause(); // never read
    await new Promise<void>((resolve, reject) => {
      s.on('error', reject);
      s.write(all, () => resolve());
      setTimeout(resolve, 3000).unref();
    });
    // Wait until the count settles (the server is busy encoding for a while).
    let answered = -1;
    for (let i = 0; i < 40; i++) {
      await new Promise((r) => setTimeout(r, 500));
      const now = (server.stats().NOERROR ?? 0) - before;
      if (now === answered) break;
      answered = now;
    }
    s.destroy();
    assert.ok(answered < n / 2, `${answered} of ${n} answers queued for a client that reads none`);
  });

  test('TCP connections are capped', async () => {
    const socks: Socket[] = [];
    try {
      const closed: boolean[] = [];
      for (let i = 0; i < 6; i++) {
        const s = connect(server.port, '127.0.0.1');
        socks.push(s);
        s.on('error', () => {});
        const idx = i;
        s.on('close', () => (closed[idx] = true));
        await new Promise((r) => s.once('connect', r));
      }
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(closed.filter(Boolean).length, 2, 'connections over the cap of 4 are closed');
    } finally {
      for (const s of socks) s.destroy();
    }
  });
});

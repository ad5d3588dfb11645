/**
 * The DNS server for real: on 127.0.0.1 with a free port, queried over UDP
 * and TCP with dns-packet, and with busybox nslookup when installed.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import dnsPacket from 'dns-packet';
import { svc } from '../services/fixtures.js';
import { queryDNS } from './client.js';
import { ServiceRecordStore } from './records.js';
import { startDNSServer, type DNSServer } from './server.js';
import { addBigHeadlessService } from './testing.js';

const dataOf = (a: unknown): unknown => (a as { data?: unknown }).data;

describe('DNS server over UDP and TCP', () => {
  let server: DNSServer;
  const store = new ServiceRecordStore();
  before(async () => {
    store.upsertService(
      svc('echo-service-c1', { ip: '10.96.123.45', ports: [{ name: 'http', port: 80 }] }),
    );
    // A headless service big enough to need truncation over plain UDP.
    addBigHeadlessService(store, 60);
    server = await startDNSServer({ host: '127.0.0.1', port: 0, source: store });
  });
  after(async () => server?.close());
  const ask = (name: string, o: Partial<Parameters<typeof queryDNS>[0]> = {}) =>
    queryDNS({ server: '127.0.0.1', port: server.port, name, ...o });

  test('A over UDP and TCP; authoritative; no recursion', async () => {
    for (const tcp of [false, true]) {
      const r = await ask('echo-service-c1.default.svc.cluster.local', { tcp });
      assert.equal(r.rcode, 'NOERROR');
      assert.deepEqual(
        r.answers?.map((a) => dataOf(a)),
        ['10.96.123.45'],
      );
      assert.equal(r.flag_aa, true);
      assert.equal(r.flag_ra, false);
      assert.equal(r.flag_rd, true, 'RD is echoed');
    }
  });

  test('SRV, NXDOMAIN, REFUSED, NODATA', async () => {
    const srv = await ask('_http._tcp.echo-service-c1.default.svc.cluster.local', { type: 'SRV' });
    assert.deepEqual(
      srv.answers?.map((a) => dataOf(a)),
      [{ priority: 0, weight: 100, port: 80, target: 'echo-service-c1.default.svc.cluster.local' }],
    );
    assert.equal(srv.additionals?.[0]?.type, 'A');
    const nx = await ask('nope.default.svc.cluster.local', { tcp: true });
    assert.equal(nx.rcode, 'NXDOMAIN');
    assert.equal(nx.authorities?.[0]?.type, 'SOA');
    assert.equal((await ask('example.com')).rcode, 'REFUSED');
    const aaaa = await ask('echo-service-c1.default.svc.cluster.local', { type: 'AAAA' });
    assert.deepEqual([aaaa.rcode, aaaa.answers?.length], ['NOERROR', 0]);
  });

  test('live source: a new service resolves at once, a deleted one stops', async () => {
    store.upsertService(svc('late', { ip: '10.96.9.9' }));
    assert.deepEqual(
      (await ask('late.default.svc.cluster.local')).answers?.map((a) => dataOf(a)),
      ['10.96.9.9'],
    );
    store.deleteService({ metadata: { name: 'late', namespace: 'default' } });
    assert.equal((await ask('late.default.svc.cluster.local')).rcode, 'NXDOMAIN');
  });

  test('UDP truncation (TC) beyond 512 bytes; TCP and EDNS get the full answer', async () => {
    const udp = await ask('big.default.svc.cluster.local');
    assert.equal(udp.flag_tc, true);
    assert.equal(udp.answers?.length, 0);
    const tcp = await ask('big.default.svc.cluster.local', { tcp: true });
    assert.equal(tcp.flag_tc, false);
    assert.equal(tcp.answers?.length, 60);
    const edns = await ask('big.default.svc.cluster.local', { ednsPayload: 4096 });
    assert.equal(edns.flag_tc, false);
    assert.equal(edns.answers?.length, 60);
  });

  test('several queries on one TCP connection, and garbage', async () => {
    const { connect } = await import('node:net');
    const sock = connect({ host: '127.0.0.1', port: server.port });
    const frames = [1, 2, 3].map((id) => {
      const p = dnsPacket.encode({
        type: 'query',
        id,
        questions: [{ type: 'A', name: 'echo-service-c1.default.svc.cluster.local', class: 'IN' }],
      });
      const f = Buffer.alloc(2 + p.length);
      f.writeUInt16BE(p.length, 0);
      p.copy(f, 2);
      return f;
    });
    const got: number[] = [];
    await new Promise<void>((resolve, reject) => {
      let buf = Buffer.alloc(0);
      sock.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          const len = buf.readUInt16BE(0);
          got.push(dnsPacket.decode(buf.subarray(2, 2 + len)).id!);
          buf = buf.subarray(2 + len);
        }
        if (got.length === 3) resolve();
      });
      sock.on('error', reject);
      // Split the frames across writes at odd places.
      const all = Buffer.concat(frames);
      sock.write(all.subarray(0, 5));
      setTimeout(() => sock.write(all.subarray(5)), 20);
    });
    sock.destroy();
    assert.deepEqual(got, [1, 2, 3]);

    // A malformed UDP query gets FORMERR (same id) or nothing; the server stays up.
    const u = createSocket('udp4');
    const bad = Buffer.from([
      0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff,
    ]);
    const resp = await new Promise<Buffer | undefined>((resolve) => {
      u.on('message', (m) => resolve(m));
      u.send(bad, server.port, '127.0.0.1');
      setTimeout(() => resolve(undefined), 500);
    });
    u.close();
    if (resp) {
      const d = dnsPacket.decode(resp) as ReturnType<typeof dnsPacket.decode> & { rcode: string };
      assert.equal(d.id, 0x1234);
      assert.equal(d.rcode, 'FORMERR');
    }
    assert.equal((await ask('echo-service-c1.default.svc.cluster.local')).rcode, 'NOERROR');
    assert.ok((server.stats().NOERROR ?? 0) > 0);
  });

  test('busybox nslookup (a real resolver) resolves through the server', async (t) => {
    const probe = spawnSync('busybox', ['nslookup'], { encoding: 'utf8' });
    if (probe.error) return t.skip('busybox not installed');
    // Asynchronously: the server runs in this process.
    const run = (name: string) =>
      new Promise<string>((resolve) => {
        execFile(
          'busybox',
          ['nslookup', '-type=a', `-port=${server.port}`, name, '127.0.0.1'],
          { timeout: 10_000 },
          (_err, stdout, stderr) => resolve(stdout + stderr),
        );
      });
    const ok = await run('echo-service-c1.default.svc.cluster.local');
    assert.match(ok, /Address:\s*10\.96\.123\.45/, ok);
    const nx = await run('nope.default.svc.cluster.local');
    assert.match(nx, /NXDOMAIN/, nx);
  });
});

test('DNS server: a port in use gives DNS_LISTEN with a hint', async () => {
  const a = await startDNSServer({ host: '127.0.0.1', port: 0, source: new ServiceRecordStore() });
  try {
    await assert.rejects(
      startDNSServer({ host: '127.0.0.1', port: a.port, source: new ServiceRecordStore() }),
      (e: Error & { code?: string; hint?: string }) =>
        e.code === 'DNS_LISTEN' && /another process uses that port/.test(e.hint ?? ''),
    );
    await assert.rejects(
      startDNSServer({ host: '192.0.2.1', port: 0, source: new ServiceRecordStore() }),
      (e: Error & { code?: string; hint?: string }) =>
        e.code === 'DNS_LISTEN' && /not an address of this host/.test(e.hint ?? ''),
    );
  } finally {
    await a.close();
  }
});

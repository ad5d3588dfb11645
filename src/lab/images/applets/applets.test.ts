import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import { missingAppletMessage, resolveImage } from '../resolve.js';
import { nc, type AppletIO } from './nc.js';
import { candidates, nslookup, parseResolvConf } from './nslookup.js';
import { wget } from './wget.js';

function io(input = ''): AppletIO & { out: () => string; err: () => string } {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let o = '';
  let e = '';
  stdout.on('data', (d: Buffer) => (o += d.toString()));
  stderr.on('data', (d: Buffer) => (e += d.toString()));
  stdin.end(input);
  return { stdin, stdout, stderr, out: () => o, err: () => e };
}

const port = (s: { address(): unknown }) => (s.address() as AddressInfo).port;

describe('busybox image applets (nc, wget, nslookup)', () => {
  const tcp = createServer((s) => s.pipe(s)); // echo
  let http: Server;
  const dns = createSocket('udp4');
  let tmp: string;
  before(async () => {
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
    http = createHttpServer((req, res) => {
      if (req.url === '/hang') return; // never answers
      if (req.url === '/moved') {
        res.writeHead(302, { Location: '/hello' });
        return res.end();
      }
      if (req.url === '/hello') return res.end('hello from http\n');
      res.writeHead(404, 'Not Found');
      res.end();
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    dns.on('message', (msg, rinfo) => {
      const q = dnsPacket.decode(msg);
      const question = q.questions![0]!;
      const known = question.name === 'kubernetes.default.svc.cluster.local';
      const answers =
        known && question.type === 'A'
          ? [{ type: 'A' as const, name: question.name, ttl: 5, data: '10.96.0.1' }]
          : [];
      const reply = dnsPacket.encode({
        type: 'response',
        id: q.id,
        flags: dnsPacket.AUTHORITATIVE_ANSWER | (known ? 0 : 3), // rcode 3 = NXDOMAIN
        questions: q.questions,
        answers,
      });
      dns.send(reply, rinfo.port, rinfo.address);
    });
    await new Promise<void>((r) => dns.bind(0, '127.0.0.1', r));
    tmp = mkdtempSync(join(tmpdir(), 'tendril-applets-'));
  });
  after(() => {
    tcp.close();
    http.close();
    http.closeAllConnections();
    dns.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('nc -vz reports an open port and a refused one as busybox does', async () => {
    const a = io();
    assert.equal(await nc(['-vz', '127.0.0.1', String(port(tcp))], a), 0);
    assert.equal(a.err(), `127.0.0.1 (127.0.0.1:${port(tcp)}) open\n`);
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const free = port(closed);
    closed.close();
    const b = io();
    assert.equal(await nc(['-v', '-z', '-w', '2', '127.0.0.1', String(free)], b), 1);
    assert.equal(b.err(), `nc: 127.0.0.1 (127.0.0.1:${free}): Connection refused\n`);
    const c = io();
    assert.equal(await nc(['-x', '127.0.0.1', '1'], c), 1);
    assert.match(c.err(), /nc: invalid option -- 'x'/);
  });

  it('nc relays stdin to the peer and the answer to stdout', async () => {
    const a = io('ping\n');
    assert.equal(await nc(['-w', '1', '127.0.0.1', String(port(tcp))], a), 0);
    assert.equal(a.out(), 'ping\n');
  });

  it('wget -qO- prints the body, follows redirects, reports HTTP errors and -T timeouts', async () => {
    const base = `http://127.0.0.1:${port(http)}`;
    const a = io();
    assert.equal(await wget(['-qO-', `${base}/moved`], a), 0);
    assert.equal(a.out(), 'hello from http\n');
    assert.equal(a.err(), '');
    const b = io();
    assert.equal(await wget(['-q', '-O', '-', `${base}/nope`], b), 1);
    assert.equal(b.err(), 'wget: server returned error: HTTP/1.1 404 Not Found\n');
    const c = io();
    const start = Date.now();
    assert.equal(await wget(['-T', '1', '-qO-', `${base}/hang`], c), 1);
    assert.equal(c.err(), 'wget: download timed out\n');
    assert.ok(Date.now() - start < 5000);
    const d = io();
    assert.equal(await wget(['-O', join(tmp, 'f'), `${base}/hello`], d), 0);
    assert.match(
      d.err(),
      /Connecting to 127\.0\.0\.1:\d+ \(127\.0\.0\.1:\d+\)\nsaving to '.*\/f'\n'.*\/f' saved\n/,
    );
  });

  it('nslookup tries the search list and prints busybox layout; exit 1 for an unknown name', async () => {
    const conf = join(tmp, 'resolv.conf');
    writeFileSync(
      conf,
      'search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n',
    );
    const rc = parseResolvConf(
      'search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n',
    );
    assert.deepEqual(rc, {
      nameservers: ['10.96.0.10'],
      search: ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'],
      ndots: 5,
    });
    assert.deepEqual(candidates('a.b.', rc), ['a.b']);
    assert.equal(candidates('kubernetes', rc)[0], 'kubernetes.default.svc.cluster.local');
    const a = io();
    assert.equal(await nslookup(['-port=' + port(dns), 'kubernetes', '127.0.0.1'], a, conf), 0);
    assert.equal(
      a.out(),
      `Server:\t\t127.0.0.1\nAddress:\t127.0.0.1:${port(dns)}\n\nName:\tkubernetes.default.svc.cluster.local\nAddress: 10.96.0.1\n\n`,
    );
    const b = io();
    assert.equal(await nslookup(['-port=' + port(dns), 'nothing', '127.0.0.1'], b, conf), 1);
    assert.match(b.out(), /\*\* server can't find nothing: NXDOMAIN\n/);
  });

  it('the busybox image runs these applets with Node, and refuses a missing applet with 127', () => {
    const argv = resolveImage({
      image: 'busybox',
      command: ['nc'],
      args: ['-vz', '1.2.3.4', '53'],
    }).argv;
    assert.ok(
      argv.includes('nc') && argv.some((a) => a.endsWith('applets/main.ts')),
      argv.join(' '),
    );
    const viaBusybox = resolveImage({
      image: 'busybox',
      args: ['busybox', 'wget', '-qO-', 'x'],
    }).argv;
    assert.deepEqual(viaBusybox.slice(-3).join(' '), 'wget -qO- x');
    assert.ok(viaBusybox.at(-4)!.endsWith('applets/main.ts'));
    const missing = resolveImage({ image: 'busybox', args: ['curl', 'http://x'] }).argv;
    const r = spawnSync(missing[0]!, missing.slice(1), { encoding: 'utf8' });
    assert.equal(r.status, 127);
    assert.match(
      r.stderr,
      /^busybox image: applet 'curl' is not available in the lab \(available: .*\bnc\b.*\bsh\b.*\bwget\b/,
    );
    assert.equal(r.stderr.trim(), missingAppletMessage('curl'));
    // sh is busybox's own
    assert.deepEqual(resolveImage({ image: 'busybox', args: ['sh', '-c', 'true'] }).argv, [
      '/usr/bin/busybox',
      'sh',
      '-c',
      'true',
    ]);
  });
});

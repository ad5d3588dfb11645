import assert from 'node:assert/strict';
import { test } from 'node:test';
import { echoResponse, plainIP, startEchoServer, trustedProxy } from './echo-server.js';

test('the JSON has the image fields, with Express semantics', () => {
  const r = echoResponse({
    method: 'POST',
    url: '/a/b?x=1&x=2&y=z',
    headers: {
      host: 'echo-service-c1.default.svc.cluster.local:80',
      'content-type': 'application/json',
      cookie: 'k=v; n="q"',
      'x-requested-with': 'XMLHttpRequest',
    },
    body: '{"hi":true}',
    remoteAddress: '::ffff:10.244.1.7',
    encrypted: false,
    hostname: 'echo-abc',
  });
  assert.deepEqual(Object.keys(r), [
    'path',
    'headers',
    'method',
    'body',
    'cookies',
    'fresh',
    'hostname',
    'ip',
    'ips',
    'protocol',
    'query',
    'subdomains',
    'xhr',
    'os',
    'connection',
    'json',
  ]);
  assert.equal(r.path, '/a/b');
  assert.equal(r.method, 'POST');
  assert.equal(r.body, '{"hi":true}');
  assert.deepEqual(r.cookies, { k: 'v', n: 'q' });
  assert.equal(r.fresh, false);
  assert.equal(r.hostname, 'echo-service-c1.default.svc.cluster.local');
  assert.equal(r.ip, '10.244.1.7');
  assert.deepEqual(r.ips, []);
  assert.equal(r.protocol, 'http');
  assert.deepEqual(r.query, { x: ['1', '2'], y: 'z' });
  assert.deepEqual(r.subdomains, ['svc', 'default', 'echo-service-c1']);
  assert.equal(r.xhr, true);
  assert.deepEqual(r.os, { hostname: 'echo-abc' });
  assert.deepEqual(r.connection, {});
  assert.deepEqual(r.json, { hi: true });
});

test('trust proxy: forwarded headers count only from loopback, link-local and unique-local peers', () => {
  const base = { method: 'GET', url: '/', body: '', encrypted: false, hostname: 'h' };
  const headers = {
    host: 'a.b.c',
    'x-forwarded-for': '203.0.113.9, 10.0.0.2',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'www.example.com',
  };
  const viaProxy = echoResponse({ ...base, headers, remoteAddress: '10.0.0.3' });
  assert.equal(viaProxy.ip, '203.0.113.9');
  assert.deepEqual(viaProxy.ips, ['203.0.113.9', '10.0.0.2']);
  assert.equal(viaProxy.protocol, 'https');
  assert.equal(viaProxy.hostname, 'www.example.com');
  const direct = echoResponse({ ...base, headers, remoteAddress: '198.51.100.4' });
  assert.equal(direct.ip, '198.51.100.4');
  assert.deepEqual(direct.ips, []);
  assert.equal(direct.protocol, 'http');
  assert.equal(direct.hostname, 'a.b.c');
  assert.equal(plainIP('::ffff:1.2.3.4'), '1.2.3.4');
  assert.equal(plainIP('fe80::1'), 'fe80::1');
  assert.equal(trustedProxy('172.20.0.1'), true);
  assert.equal(trustedProxy('172.32.0.1'), false);
  assert.equal(
    echoResponse({ ...base, headers: { host: '10.244.1.2:8080' }, remoteAddress: '1.1.1.1' })
      .subdomains.length,
    0,
  );
});

test('the server answers HTTP and HTTPS (self-signed) with 2-space JSON', async () => {
  const srv = await startEchoServer({
    httpPort: 0,
    httpsPort: 0,
    host: '127.0.0.1',
    env: { DISABLE_REQUEST_LOGS: 'true', LOG_IGNORE_PATH: '/q' },
  });
  try {
    const port = (srv.http.address() as { port: number }).port;
    const res = await fetch(`http://127.0.0.1:${port}/q?a=1`, {
      headers: { 'x-set-response-status-code': '418' },
    });
    assert.equal(res.status, 418);
    assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
    const text = await res.text();
    assert.ok(text.startsWith('{\n  "path": "/q",'));
    const j = JSON.parse(text);
    assert.equal(j.ip, '127.0.0.1');
    assert.equal(j.hostname, '127.0.0.1');
    const { request } = await import('node:https');
    const sport = (srv.https.address() as { port: number }).port;
    const body = await new Promise<string>((resolve, reject) => {
      const r = request(
        {
          host: '127.0.0.1',
          port: sport,
          path: '/s',
          servername: 'localhost',
          rejectUnauthorized: false,
        },
        (res2) => {
          let b = '';
          res2.on('data', (c) => (b += c));
          res2.on('end', () => resolve(b));
        },
      );
      r.on('error', reject);
      r.end();
    });
    const s = JSON.parse(body);
    assert.equal(s.protocol, 'https');
    assert.deepEqual(s.connection, { servername: 'localhost' });
  } finally {
    await srv.close();
  }
});

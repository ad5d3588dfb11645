import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parseFieldSelector, parseLabelSelector } from '../../k8s/selectors.js';
import type { ApiHttpServer } from './server.js';
import { startBareApiServer, type BareApiServer } from './testing.js';

interface Reply {
  status: number;
  body: string;
}

/** One HTTP request; the answer's status and body. */
function call(
  port: number,
  method: string,
  path: string,
  body?: string,
  headers = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: { 'content-type': 'application/json', ...headers },
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

const pod = (name: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: { containers: [{ name: 'c', image: 'busybox' }] },
    ...extra,
  });

describe('bounded lab API server', () => {
  let server: BareApiServer;
  let http: ApiHttpServer;
  let port: number;
  before(async () => {
    server = await startBareApiServer('apiserver-bounds', {
      maxWatchesPerClient: 3,
      maxWatchBufferBytes: 256 * 1024,
    });
    ({ http, port } = server);
  });
  after(() => server.close());

  it('answers 413 to a body declared over the limit without waiting for it', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const s = connect(port, '127.0.0.1');
      let text = '';
      s.on('data', (c) => {
        text += c.toString();
        if (text.includes('\r\n\r\n')) s.destroy();
      });
      s.on('close', () => resolve(text));
      s.on('error', reject);
      // Headers only: a 10 MiB body is announced and never sent.
      s.write(
        'POST /api/v1/namespaces/default/pods HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10485760\r\n\r\n{',
      );
      setTimeout(() => s.destroy(), 3000).unref();
    });
    assert.match(reply, /^HTTP\/1\.1 413 /);
    assert.match(reply, /request entity too large/);
  });

  it('answers 413 to a chunked body once it passes the limit, and closes', async () => {
    const r = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/api/v1/namespaces/default/pods',
          headers: { 'content-type': 'application/json' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode!);
        },
      );
      req.on('error', reject);
      const chunk = Buffer.alloc(256 * 1024, ' ');
      let sent = 0;
      const pump = () => {
        while (sent < 64 * 1024 * 1024) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    assert.equal(r, 413);
  });

  it('refuses bad numeric query parameters with 400 naming them', async () => {
    for (const [q, name] of [
      ['limit=abc', 'limit'],
      ['limit=-1', 'limit'],
      ['limit=1e400', 'limit'],
      ['timeoutSeconds=x', 'timeoutSeconds'],
      ['timeoutSeconds=99999999999', 'timeoutSeconds'],
      ['watch=true&timeoutSeconds=-5', 'timeoutSeconds'],
      ['resourceVersion=abc', 'resourceVersion'],
      ['watch=true&resourceVersion=1.5', 'resourceVersion'],
      ['gracePeriodSeconds=abc', 'gracePeriodSeconds'],
    ] as const) {
      const r = await call(port, 'GET', `/api/v1/namespaces/default/pods?${q}`);
      assert.equal(r.status, 400, `${q}: ${r.body}`);
      assert.match(r.body, new RegExp(name), q);
    }
    const d = await call(
      port,
      'DELETE',
      `/api/v1/namespaces/default/pods/x?gracePeriodSeconds=abc`,
    );
    assert.equal(d.status, 400, d.body);
  });

  it('parses selectors in linear time and refuses over-long ones', async () => {
    const spaces = ' '.repeat(64 * 1024);
    let t = process.hrtime.bigint();
    assert.throws(() => parseFieldSelector(`a${spaces}b`, 'Pod'), /invalid selector|not supported/);
    const fieldMs = Number(process.hrtime.bigint() - t) / 1e6;
    t = process.hrtime.bigint();
    assert.throws(() => parseLabelSelector(`${'a-'.repeat(32 * 1024)}!`));
    const labelMs = Number(process.hrtime.bigint() - t) / 1e6;
    // Quadratic parsing took seconds here; linear takes a few ms (a wide margin for a busy machine).
    assert.ok(fieldMs < 500, `fieldSelector of 64 KiB took ${fieldMs} ms`);
    assert.ok(labelMs < 500, `labelSelector of 64 KiB took ${labelMs} ms`);
    const long = await call(
      port,
      'GET',
      `/api/v1/namespaces/default/pods?labelSelector=${'a'.repeat(10 * 1024)}`,
    );
    assert.equal(long.status, 400, long.body);
    assert.match(long.body, /labelSelector.*longer than/);
  });

  it('validates status updates like spec', async () => {
    const c = await call(port, 'POST', '/api/v1/namespaces/default/pods', pod('st'));
    assert.equal(c.status, 201, c.body);
    for (const status of [
      { podIP: 'not-an-ip' },
      { phase: 'Exploded' },
      { podIPs: [{ ip: '10.0.0.1' }, { ip: 'default' }] },
      'a string',
      [1, 2],
      { conditions: 'yes' },
    ]) {
      const r = await call(
        port,
        'PUT',
        '/api/v1/namespaces/default/pods/st/status',
        pod('st', { status }),
      );
      assert.equal(r.status, 422, `${JSON.stringify(status)}: ${r.body}`);
      assert.match(r.body, /status/);
    }
    const ok = await call(
      port,
      'PUT',
      '/api/v1/namespaces/default/pods/st/status',
      pod('st', { status: { phase: 'Running', podIP: '10.0.0.5', podIPs: [{ ip: '10.0.0.5' }] } }),
    );
    assert.equal(ok.status, 200, ok.body);
  });

  it('caps watches per client (429) and cuts a watcher that does not read', async () => {
    const sockets: Socket[] = [];
    const openWatch = () =>
      new Promise<{ s: Socket; head: string }>((resolve, reject) => {
        const s = connect(port, '127.0.0.1');
        sockets.push(s);
        let head = '';
        const onData = (c: Buffer) => {
          head += c.toString();
          if (head.includes('\r\n\r\n')) {
            s.off('data', onData);
            s.pause();
            resolve({ s, head });
          }
        };
        s.on('data', onData);
        s.on('error', reject);
        s.write('GET /api/v1/namespaces/default/pods?watch=true HTTP/1.1\r\nHost: x\r\n\r\n');
      });
    try {
      const w = [await openWatch(), await openWatch(), await openWatch()];
      for (const x of w) assert.match(x.head, /^HTTP\/1\.1 200/);
      const fourth = await openWatch();
      assert.match(fourth.head, /^HTTP\/1\.1 429/);
      // The three watchers do not read: fill their buffers with events.
      const closed = new Promise<void>((resolve) => w[0]!.s.once('close', () => resolve()));
      w[0]!.s.resume(); // let it see its end...
      w[0]!.s.on('data', () => {});
      w[0]!.s.pause(); // ...but not read
      const big = 'x'.repeat(512 * 1024);
      for (let i = 0; i < 40; i++) {
        const r = await call(
          port,
          'POST',
          '/api/v1/namespaces/default/pods',
          pod(`big${i}`, { metadata: { name: `big${i}`, annotations: { big } } }),
        );
        assert.equal(r.status, 201, r.body);
      }
      w[0]!.s.resume();
      await closed;
      // Its slot is free again.
      const again = await openWatch();
      assert.match(again.head, /^HTTP\/1\.1 200/);
    } finally {
      for (const s of sockets) s.destroy();
    }
  });

  it('answers bad input with 4xx, never 5xx', async () => {
    const cases: Array<[string, string, string?, Record<string, string>?]> = [
      ['GET', '/api/v1/namespaces/%E0%A4%A/pods'],
      ['GET', '/api/v1/namespaces/default/pods/%'],
      ['POST', '/api/v1/namespaces/default/pods', 'null'],
      ['POST', '/api/v1/namespaces/default/pods', '"x"'],
      ['POST', '/api/v1/namespaces/default/pods', '[]'],
      ['POST', '/api/v1/namespaces/default/pods', '{"metadata":5}'],
      [
        'POST',
        '/api/v1/namespaces/default/pods',
        '{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a"},"spec":5}',
      ],
      [
        'POST',
        '/api/v1/namespaces/default/pods',
        '{"kind":"Pod","apiVersion":"v1","metadata":{"name":{"x":1}},"spec":{}}',
      ],
      [
        'POST',
        '/api/v1/namespaces/default/pods',
        '{"kind":"Pod","apiVersion":"v1","metadata":{"name":"b","labels":[1]},"spec":{"containers":[null]}}',
      ],
      [
        'POST',
        '/api/v1/namespaces/default/services',
        '{"kind":"Service","apiVersion":"v1","metadata":{"name":"s"},"spec":{"ports":"x"}}',
      ],
      [
        'PUT',
        '/api/v1/namespaces/default/pods/st',
        '{"kind":"Pod","apiVersion":"v1","metadata":[]}',
      ],
      ['DELETE', '/api/v1/namespaces/default/pods/st', '{"preconditions":"x"}'],
      ['DELETE', '/api/v1/namespaces/default/pods/st', '[1]'],
      ['GET', '/api/v1/namespaces/default/pods?fieldSelector=%3D%3D%3D'],
      ['GET', '/api/v1/namespaces/default/pods?labelSelector=a%20in%20(((('],
      ['GET', '/api/v1/namespaces/default/pods?watch=true&resourceVersion=99999999999999999999999'],
    ];
    for (const [method, path, body, headers] of cases) {
      const r = await call(port, method, path, body, headers);
      assert.ok(r.status < 500, `${method} ${path} ${body ?? ''}: ${r.status} ${r.body}`);
    }
  });

  it('every listening socket has an error handler', () => {
    for (const s of (http as unknown as { servers: import('node:events').EventEmitter[] }).servers)
      assert.ok(s.listenerCount('error') > 0);
  });
});

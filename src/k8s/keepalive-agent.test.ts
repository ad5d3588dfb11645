/**
 * KubeClient against a keep-alive HTTP server in another process that closes
 * idle connections (Node 20 closes them 1 s after keepAliveTimeout): the client's event loop is blocked (Atomics.wait) while
 * the server's keep-alive timeout passes, so the server's FIN is still unread
 * when the next request goes out. A plain keep-alive Agent then writes the
 * request to the closed socket and fails with "socket hang up".
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import { KubeClient } from './client.js';
import { DEFAULT_IDLE_MS, idleLimitMs, isIdempotent } from './keepalive-agent.js';

/** Blocks this thread (and its event loop) for `ms`. */
function blockEventLoop(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

interface Counts {
  connections: number;
  requests: string[];
}

/**
 * An HTTP server in a child process: keepAliveTimeout `closeMs`, announcing
 * `announce` seconds in Keep-Alive when given (a server that closes earlier
 * than it says). GET /counts reports connections and requests so far.
 */
async function startServer(
  closeMs: number,
  announce?: number,
): Promise<{ url: string; counts(): Promise<Counts>; stop(): Promise<void> }> {
  const code = `
    const http = require('node:http');
    let connections = 0; const requests = [];
    const s = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.url === '/counts') { res.end(JSON.stringify({ connections, requests })); return; }
        requests.push(req.method + ' ' + req.url);
        ${announce !== undefined ? `res.setHeader('Keep-Alive', 'timeout=${announce}');` : ''}
        res.writeHead(req.method === 'POST' ? 201 : 200, { 'Content-Type': 'application/json' });
        res.end('{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"tendril-x"}}');
      });
    });
    s.on('connection', () => connections++);
    s.keepAliveTimeout = ${closeMs};
    s.listen(0, '127.0.0.1', () => console.log(s.address().port));
    process.stdin.on('end', () => process.exit(0)); process.stdin.resume();
  `;
  const child: ChildProcess = spawn(process.execPath, ['-e', code], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  const url = `http://127.0.0.1:${Number(line)}`;
  const exited = once(child, 'exit');
  return {
    url,
    counts: async () => (await (await fetch(`${url}/counts`)).json()) as Counts,
    stop: async () => {
      child.stdin!.end();
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
  };
}

test('idleLimitMs: 3/4 of the announced keep-alive timeout; a default without one', () => {
  assert.equal(idleLimitMs('timeout=65'), 48_750);
  assert.equal(idleLimitMs('timeout=5, max=100'), 3750);
  assert.equal(idleLimitMs('max=100, timeout=2'), 1500);
  assert.equal(idleLimitMs('timeout=0'), 0);
  assert.equal(idleLimitMs(undefined), DEFAULT_IDLE_MS);
  assert.equal(idleLimitMs('max=3'), DEFAULT_IDLE_MS);
  assert.ok(isIdempotent('get') && isIdempotent('PUT') && isIdempotent('DELETE'));
  assert.ok(!isIdempotent('POST') && !isIdempotent('PATCH'));
});

test('one kept-alive socket serves many requests without piling up listeners', async () => {
  const srv = await startServer(10_000);
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  const c = new KubeClient({ server: srv.url, timeoutMs: 5000 });
  try {
    for (let i = 0; i < 30; i++) await c.request('GET', '/version');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      warnings.map((w) => w.name),
      [],
    );
    assert.equal((await srv.counts()).connections, 2); // one for the client, one for /counts
  } finally {
    process.off('warning', onWarning);
    c.close();
    await srv.stop();
  }
});

describe('KubeClient: kept-alive sockets the server closes', { timeout: 30_000 }, () => {
  const stops: (() => Promise<void>)[] = [];
  after(async () => {
    for (const s of stops) await s();
  });

  test('a POST right after the server closed the idle connection (client busy meanwhile) succeeds on a new connection', async () => {
    const srv = await startServer(2000); // announces timeout=2: the client reuses for 1.5 s
    stops.push(srv.stop);
    const c = new KubeClient({ server: srv.url, timeoutMs: 5000 });
    try {
      await c.request('GET', '/version');
      // Reuse within the limit: same connection.
      await c.request('GET', '/version');
      assert.equal((await srv.counts()).connections, 2); // + the /counts fetch
      blockEventLoop(3500); // the server closes the idle socket at 2 s (+1 s, Node's buffer); its FIN stays unread
      const ns = await c.request<{ metadata: { name: string } }>('POST', '/api/v1/namespaces', {
        body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'tendril-x' } },
      });
      assert.equal(ns.metadata.name, 'tendril-x');
      const counts = await srv.counts();
      assert.deepEqual(counts.requests, [
        'GET /version',
        'GET /version',
        'POST /api/v1/namespaces',
      ]);
    } finally {
      c.close();
    }
  });

  test('a server closing earlier than it announces: an idempotent request is retried once, a POST is not resent', async () => {
    const srv = await startServer(300, 60); // closes after 1.3 s (Node adds 1 s), says 60 s
    stops.push(srv.stop);
    const c = new KubeClient({ server: srv.url, timeoutMs: 5000 });
    try {
      await c.request('GET', '/version');
      blockEventLoop(1800);
      await c.request('GET', '/api/v1/namespaces'); // the reused socket is reset; retried
      blockEventLoop(1800);
      await assert.rejects(
        c.request('POST', '/api/v1/namespaces', { body: { kind: 'Namespace' } }),
        (e) => {
          assert.equal((e as { code?: string }).code, 'K8S_UNREACHABLE');
          assert.match((e as Error).message, /socket hang up|ECONNRESET|EPIPE/);
          return true;
        },
      );
      // The server never read the POST, and the client did not send it again.
      assert.deepEqual((await srv.counts()).requests, ['GET /version', 'GET /api/v1/namespaces']);
    } finally {
      c.close();
    }
  });
});

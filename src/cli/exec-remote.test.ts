import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { WebSocketServer } from 'ws';
import { CHANNEL, decodeFrame, encodeFrame, exitStatus } from '../lab/apiserver/streaming.js';
import { exitCodeOf, remoteExec } from './exec-remote.js';

describe('remote exec client', () => {
  it('reads exit codes from the closing Status', () => {
    assert.equal(exitCodeOf(exitStatus(0, ['true'])), 0);
    assert.equal(exitCodeOf(exitStatus(7, ['false'])), 7);
    assert.equal(exitCodeOf({ status: 'Failure', reason: 'InternalError' }), undefined);
  });

  it('sends the command and stdin (closed with v5 close), writes stdout/stderr, returns the exit code', async () => {
    const server = createServer();
    const wss = new WebSocketServer({
      server,
      handleProtocols: (p) => (p.has('v5.channel.k8s.io') ? 'v5.channel.k8s.io' : false),
    });
    let url = '';
    wss.on('connection', (ws, req) => {
      url = req.url ?? '';
      let input = '';
      ws.on('message', (m: Buffer) => {
        const f = decodeFrame(m)!;
        if (f.channel === CHANNEL.stdin) input += f.data.toString();
        if (f.channel === CHANNEL.close && f.data[0] === CHANNEL.stdin) {
          ws.send(encodeFrame(CHANNEL.stdout, input.toUpperCase()));
          ws.send(encodeFrame(CHANNEL.stderr, 'warn\n'));
          ws.send(encodeFrame(CHANNEL.error, JSON.stringify(exitStatus(3, ['x']))));
          ws.close(1000);
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const stdin = new PassThrough();
      const out = new PassThrough();
      const err = new PassThrough();
      let o = '';
      let e = '';
      out.on('data', (d: Buffer) => (o += d.toString()));
      err.on('data', (d: Buffer) => (e += d.toString()));
      const done = remoteExec(
        {
          server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
          namespace: 'default',
        },
        {
          namespace: 'ns1',
          pod: 'p',
          container: 'c',
          command: ['sh', '-c', 'cat'],
          stdin,
          stdout: out,
          stderr: err,
        },
      );
      stdin.end('hello\n');
      assert.equal(await done, 3);
      assert.equal(o, 'HELLO\n');
      assert.equal(e, 'warn\n');
      assert.equal(
        url,
        '/api/v1/namespaces/ns1/pods/p/exec?command=sh&command=-c&command=cat&container=c&stdin=true&stdout=true&stderr=true',
      );
    } finally {
      wss.close();
      server.close();
    }
  });

  it('turns a refused upgrade into an error carrying the server message', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', message: 'container x is not valid for pod p' }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      await assert.rejects(
        remoteExec(
          {
            server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
            namespace: 'default',
          },
          {
            namespace: 'd',
            pod: 'p',
            container: 'x',
            command: ['true'],
            stdout: new PassThrough(),
            stderr: new PassThrough(),
          },
        ),
        /container x is not valid for pod p \(HTTP 400\)/,
      );
    } finally {
      server.close();
    }
  });
});

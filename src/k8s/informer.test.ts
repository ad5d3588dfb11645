import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { startTestApiServer, type TestApiServer } from '../../test/helpers/apiserver.js';
import { KubeClient } from './client.js';
import { Informer } from './informer.js';
import type { KubeObject } from './objects.js';

const CEP = 'cilium.io/v2';

const cep = (name: string, id = 1): KubeObject => ({
  apiVersion: CEP,
  kind: 'CiliumEndpoint',
  metadata: { name, namespace: 'default' },
  status: { id },
});

/** A TCP proxy in front of the API server whose connections the test can cut. */
interface Proxy {
  url: string;
  /** Cuts every connection and refuses new ones until resume(). */
  pause(): void;
  resume(): void;
  /** Cuts every connection (new ones work). */
  kick(): void;
  close(): Promise<void>;
}

async function startProxy(port: number): Promise<Proxy> {
  const sockets = new Set<Socket>();
  let paused = false;
  const server: Server = createServer((client) => {
    if (paused) return client.destroy();
    const upstream = createConnection({ host: '127.0.0.1', port });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('proxy has no port');
  const cut = () => {
    for (const s of sockets) s.destroy();
  };
  return {
    url: `http://127.0.0.1:${addr.port}`,
    pause: () => {
      paused = true;
      cut();
    },
    resume: () => {
      paused = false;
    },
    kick: cut,
    close: () => {
      cut();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Recorder {
  events: string[];
  problems: Array<string | undefined>;
}

function record(inf: Informer): Recorder {
  const r: Recorder = { events: [], problems: [] };
  for (const ev of ['add', 'update', 'delete'] as const)
    inf.on(ev, (o) => r.events.push(`${ev} ${o.metadata.name}`));
  return r;
}

describe('Informer (lab API server over a cuttable proxy)', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  async function setup(historySize?: number) {
    const api: TestApiServer = await startTestApiServer({
      bookmarkIntervalMs: 100,
      ...(historySize ? { historySize } : {}),
    });
    cleanups.push(() => api.cleanup());
    const proxy = await startProxy(api.server.port);
    cleanups.push(() => proxy.close());
    const client = new KubeClient({ server: proxy.url, timeoutMs: 2000 });
    cleanups.push(() => client.close());
    const problems: Array<string | undefined> = [];
    const inf = new Informer({
      client,
      apiVersion: CEP,
      kind: 'CiliumEndpoint',
      minBackoffMs: 50,
      maxBackoffMs: 200,
      onProblem: (c) => problems.push(c),
    });
    cleanups.push(() => inf.stop());
    const rec = record(inf);
    rec.problems = problems;
    return { api, proxy, inf, rec, kube: api.client };
  }

  it('lists, then follows adds, updates, deletes and bookmarks', async () => {
    const { api, inf, rec, kube } = await setup();
    await kube.create(cep('a'));
    await kube.create(cep('b'));
    inf.start();
    await inf.synced;
    assert.deepEqual(rec.events.sort(), ['add a', 'add b']);
    assert.equal(inf.list().length, 2);
    assert.equal(inf.get('a', 'default')?.metadata.name, 'a');
    assert.equal(inf.get('a'), undefined, 'namespaced objects are keyed namespace/name');
    rec.events.length = 0;
    await kube.create(cep('c'));
    await kube.patch(CEP, 'CiliumEndpoint', 'a', { status: { id: 7 } });
    await kube.delete(CEP, 'CiliumEndpoint', 'b');
    await until('three events', () => rec.events.length === 3);
    assert.deepEqual(rec.events, ['add c', 'update a', 'delete b']);
    assert.equal(inf.get('a', 'default')?.status.id, 7);
    assert.deepEqual(
      inf
        .list()
        .map((o) => o.metadata.name)
        .sort(),
      ['a', 'c'],
    );
    // a write of another kind moves the server's version; only a BOOKMARK tells the informer
    const svc = await kube.create<KubeObject>({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'tendril-other' },
      spec: { ports: [{ port: 80 }] },
    });
    const target = Number(svc.metadata.resourceVersion);
    await until('a bookmark', () => Number(inf.resourceVersion) >= target);
    assert.equal(rec.events.length, 3);
    assert.equal(inf.listCount, 1);
    assert.ok(api.server.registry.currentRevision() >= target);
  });

  it('resumes a watch the server ended from its resourceVersion, without listing again', async () => {
    const { proxy, inf, rec, kube } = await setup();
    inf.start();
    await inf.synced;
    proxy.kick();
    await kube.create(cep('x'));
    await until('add x', () => rec.events.includes('add x'));
    proxy.kick();
    await kube.delete(CEP, 'CiliumEndpoint', 'x');
    await until('delete x', () => rec.events.includes('delete x'));
    assert.equal(inf.listCount, 1);
  });

  it('sees deletes made while disconnected (watch resumed within the history)', async () => {
    const { proxy, inf, rec, kube } = await setup();
    await kube.create(cep('a'));
    await kube.create(cep('b'));
    inf.start();
    await inf.synced;
    rec.events.length = 0;
    proxy.pause();
    await kube.delete(CEP, 'CiliumEndpoint', 'a');
    await kube.patch(CEP, 'CiliumEndpoint', 'b', { status: { id: 2 } });
    await kube.create(cep('c'));
    await until('a problem report', () => rec.problems.some((p) => p !== undefined));
    assert.match(
      rec.problems.find((p) => p)!,
      /CiliumEndpoint.*cannot reach the API server/,
    );
    proxy.resume();
    await until('three events', () => rec.events.length === 3);
    assert.deepEqual(rec.events, ['delete a', 'update b', 'add c']);
    await until('problem cleared', () => rec.problems.at(-1) === undefined);
    assert.equal(inf.listCount, 1, 'the history still covered the gap');
  });

  it('re-lists after 410 Gone and emits the differences (deletes while disconnected)', async () => {
    const { proxy, inf, rec, kube } = await setup(5);
    await kube.create(cep('a'));
    await kube.create(cep('b'));
    await kube.create(cep('keep'));
    inf.start();
    await inf.synced;
    rec.events.length = 0;
    proxy.pause();
    await kube.delete(CEP, 'CiliumEndpoint', 'a');
    for (let i = 0; i < 8; i++) await kube.patch(CEP, 'CiliumEndpoint', 'b', { status: { id: i } });
    await kube.create(cep('c'));
    proxy.resume();
    await until('relist', () => inf.listCount === 2);
    await until('three events', () => rec.events.length === 3);
    // deletes first, then adds/updates; 'keep' did not change so emits nothing
    assert.equal(rec.events[0], 'delete a');
    assert.deepEqual(rec.events.slice(1).sort(), ['add c', 'update b']);
    assert.equal(inf.get('b', 'default')?.status.id, 7);
    assert.deepEqual(
      inf
        .list()
        .map((o) => o.metadata.name)
        .sort(),
      ['b', 'c', 'keep'],
    );
    // and it keeps watching from the new list
    await kube.delete(CEP, 'CiliumEndpoint', 'keep');
    await until('delete keep', () => rec.events.includes('delete keep'));
  });

  it('stop() ends the watch and leaves no timer, also while retrying', async () => {
    const { proxy, inf, rec } = await setup();
    const timersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout');
    inf.start();
    await inf.synced;
    proxy.pause();
    await until('a retry', () => rec.problems.length >= 2);
    await inf.stop();
    const timers = process.getActiveResourcesInfo().filter((r) => r === 'Timeout');
    assert.deepEqual(timers, timersBefore, 'no timers left');
    const before = rec.problems.length;
    proxy.resume();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(rec.problems.length, before, 'nothing runs after stop');
  });

  it('does not spin against a server whose every watch ends at once with 410', async () => {
    // a small real server speaking the list/watch protocol, broken on purpose
    let lists = 0;
    let watches = 0;
    const srv = createHttpServer((req, res) => {
      res.setHeader('Content-Type', 'application/json');
      if (req.url?.includes('watch=true')) {
        watches++;
        const gone = {
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          code: 410,
          reason: 'Expired',
          message: 'too old',
        };
        res.end(JSON.stringify({ type: 'ERROR', object: gone }) + '\n');
        return;
      }
      lists++;
      res.end(
        JSON.stringify({
          kind: 'CiliumEndpointList',
          apiVersion: CEP,
          metadata: { resourceVersion: '5' },
          items: [],
        }),
      );
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => srv.close(() => r())));
    const addr = srv.address();
    assert.ok(addr && typeof addr !== 'string');
    const client = new KubeClient({ server: `http://127.0.0.1:${addr.port}` });
    cleanups.push(() => client.close());
    const inf = new Informer({
      client,
      apiVersion: CEP,
      kind: 'CiliumEndpoint',
      minBackoffMs: 100,
    });
    cleanups.push(() => inf.stop());
    inf.start();
    await inf.synced;
    await new Promise((r) => setTimeout(r, 1000));
    await inf.stop();
    assert.ok(watches >= 3, `it kept trying (${watches} watches)`);
    assert.ok(lists <= 12 && watches <= 12, `${lists} lists and ${watches} watches in 1 s`);
    // a list the server answered just as stop() ran is not a complete list for the informer
    assert.ok(
      inf.listCount === lists || inf.listCount === lists - 1,
      `informer counted ${inf.listCount} lists, the server answered ${lists}`,
    );
  });
});

import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { KubeObject } from '../k8s/objects.js';
import { startTestApiServer, type TestApiServer } from '../lab/apiserver/testing.js';
import { LogTimeIndexer, rfc3339Nano } from '../lab/kubelet/log-times.js';
import { podLogDir } from '../lab/state.js';
import { TendrilError } from '../util/errors.js';
import { logQuery, streamLog } from './logs.js';

describe('tendril logs: the pods/log query', () => {
  it('passes --timestamps, -f, -p and --tail as kubectl’s parameters', () => {
    assert.equal(
      logQuery('app', { timestamps: true, follow: true, previous: true, tail: '3' }).toString(),
      'container=app&follow=true&previous=true&timestamps=true&tailLines=3',
    );
    assert.equal(logQuery('app', { tail: '-1' }).toString(), 'container=app');
    assert.equal(logQuery('app', {}).toString(), 'container=app');
  });

  it('passes --since as whole seconds (rounded up, as kubectl) and --since-time as given', () => {
    assert.equal(logQuery('app', { since: '2m' }).get('sinceSeconds'), '120');
    assert.equal(logQuery('app', { since: '1.2s' }).get('sinceSeconds'), '2');
    assert.equal(logQuery('app', { since: '1h30m' }).get('sinceSeconds'), '5400');
    assert.equal(
      logQuery('app', { sinceTime: '2026-12-06T10:00:00+01:00' }).get('sinceTime'),
      '2026-12-06T10:00:00+01:00',
    );
  });

  it('refuses --since with --since-time, a bad duration and a time that is no RFC 3339', () => {
    assert.throws(
      () => logQuery('app', { since: '5s', sinceTime: '2026-12-06T10:00:00Z' }),
      (err: unknown) =>
        err instanceof TendrilError &&
        err.code === 'LOGS_BAD_FLAGS' &&
        /at most one of --since and --since-time/.test(err.message),
    );
    assert.throws(() => logQuery('app', { since: '5 minutes' }), /--since: invalid duration/);
    assert.throws(
      () => logQuery('app', { sinceTime: 'yesterday' }),
      /--since-time "yesterday" is no RFC 3339 time/,
    );
  });
});

describe('tendril logs --timestamps against the lab API server', () => {
  let api: TestApiServer;
  let home: string;
  const oldHome = process.env.TENDRIL_HOME;
  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'tendril-logs-'));
    process.env.TENDRIL_HOME = home;
    api = await startTestApiServer();
  });
  after(async () => {
    await api.cleanup();
    rmSync(home, { recursive: true, force: true });
    if (oldHome === undefined) delete process.env.TENDRIL_HOME;
    else process.env.TENDRIL_HOME = oldHome;
  });

  it('prints each line with the kubelet’s RFC3339Nano time of it', async () => {
    const pod: KubeObject = await api.client.create<KubeObject>({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'ticker', namespace: 'default' },
      spec: { nodeName: 'n1', containers: [{ name: 'app', image: 'busybox' }] },
    } as KubeObject);
    const dir = podLogDir('test', 'default', 'ticker', pod.metadata.uid!);
    mkdirSync(dir, { recursive: true });
    const log = join(dir, 'app.log');
    writeFileSync(log, 'tick 0\n');
    // the kubelet's indexer stamps the lines it finds (a fixed clock here: 2 min and 10 s ago)
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    const times = [nowNs - 120_000_000_000n + 123_456_789n, nowNs - 10_000_000_000n];
    let i = 0;
    const indexer = new LogTimeIndexer(log, () => times[Math.min(i++, times.length - 1)]!);
    indexer.start();
    appendFileSync(log, 'tick 1\n');
    indexer.scan();
    indexer.stop();
    const url = (q: URLSearchParams) =>
      `${api.server.url}/api/v1/namespaces/default/pods/ticker/log?${q}`;
    const read = async (q: URLSearchParams) => {
      const chunks: Buffer[] = [];
      await streamLog(url(q), (d) => chunks.push(d));
      return Buffer.concat(chunks).toString();
    };
    const stamped = await read(logQuery('app', { timestamps: true }));
    const lines = stamped.trim().split('\n');
    assert.equal(lines.length, 2, stamped);
    lines.forEach((l, n) => {
      const m = /^(\S+) (tick \d)$/.exec(l);
      assert.ok(m, `not a stamped line: ${l}`);
      assert.equal(m[2], `tick ${n}`);
      assert.match(m[1]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/);
    });
    assert.equal(stamped, `${rfc3339Nano(times[0]!)} tick 0\n${rfc3339Nano(times[1]!)} tick 1\n`);
    assert.match(rfc3339Nano(times[0]!), /\.\d{3}456789Z$/);
    assert.equal(await read(logQuery('app', {})), 'tick 0\ntick 1\n');
    assert.equal(
      await read(logQuery('app', { timestamps: true, tail: '1' })).then((t) =>
        t.replace(/^\S+ /, ''),
      ),
      'tick 1\n',
    );
    // --since and --since-time select by the same per-line times
    assert.equal(await read(logQuery('app', { since: '1m' })), 'tick 1\n');
    assert.equal(await read(logQuery('app', { since: '5m' })), 'tick 0\ntick 1\n');
    assert.equal(await read(logQuery('app', { sinceTime: rfc3339Nano(times[1]!) })), 'tick 1\n');
  });
});

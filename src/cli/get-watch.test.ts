// `get -w` against the lab API server: the list, then one row (or object) per change.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestApiServer, type TestApiServer } from '../lab/apiserver/testing.js';
import type { KubeObject } from '../k8s/objects.js';
import { resolveResourceName } from '../k8s/resources.js';
import { watchGet, type WatchGetOptions } from './get-watch.js';

const pod = (name: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'default', labels: { app: 'w' } },
  spec: { containers: [{ name: 'c', image: 'busybox' }] },
});

describe('get --watch', () => {
  let t: TestApiServer;
  before(async () => {
    t = await startTestApiServer();
  });
  after(async () => {
    await t.cleanup();
  });

  /** Starts a watch; returns its output so far, a way to wait for text, and stop. */
  function start(o: Partial<WatchGetOptions>) {
    let out = '';
    const ac = new AbortController();
    const done = watchGet(t.client, resolveResourceName('pods'), {
      namespace: 'default',
      watchOnly: false,
      write: (s) => (out += s),
      signal: ac.signal,
      ...o,
    });
    return {
      out: () => out,
      async until(pred: (s: string) => boolean, what: string) {
        for (let i = 0; i < 300 && !pred(out); i++) await new Promise((r) => setTimeout(r, 10));
        assert.ok(pred(out), `timed out waiting for ${what}; output:\n${out}`);
      },
      async stop() {
        ac.abort();
        await done;
      },
    };
  }

  it('prints the table, then a row per change with the same column widths', async () => {
    await t.client.create(pod('first-pod'));
    const w = start({});
    await w.until((s) => s.includes('first-pod'), 'the listed pod');
    assert.match(
      w.out(),
      /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\nfirst-pod\s+0\/1\s+Pending\s+0\s+\S+\n$/,
    );
    await t.client.create(pod('p2'));
    const p2Rows = () =>
      w
        .out()
        .split('\n')
        .filter((l) => l.startsWith('p2 ')).length;
    await w.until(() => p2Rows() >= 1, 'the row of the added pod');
    const seen = p2Rows();
    await t.client.patch('v1', 'Pod', 'p2', { metadata: { labels: { x: 'y' } } });
    await t.client.delete('v1', 'Pod', 'p2');
    await w.until(() => p2Rows() >= seen + 2, 'rows of the update and the delete');
    await w.stop();
    const lines = w.out().trimEnd().split('\n');
    assert.equal(lines.filter((l) => l.startsWith('NAME')).length, 1, 'one header');
    for (const l of lines.slice(2)) {
      assert.match(l, /^p2 {10}0\/1/, "new rows keep the first rows' NAME width");
    }
    assert.ok(lines.slice(2).length >= 3, 'added, modified, deleted');
  });

  it('--watch-only -o json prints one object per event and not the existing ones', async () => {
    const w = start({ watchOnly: true, output: 'json', selector: 'app=w' });
    await new Promise((r) => setTimeout(r, 100));
    await t.client.create(pod('p3'));
    await t.client.delete('v1', 'Pod', 'p3');
    await w.until((s) => (s.match(/^\{$/gm) ?? []).length >= 2, 'two objects');
    await w.stop();
    const docs = w
      .out()
      .split(/\n(?=\{)/)
      .map((d) => JSON.parse(d) as KubeObject);
    assert.ok(docs.every((d) => d.kind === 'Pod' && d.metadata.name === 'p3'));
    assert.ok(!w.out().includes('first-pod'));
  });

  it('-o name and jsonpath for one named object', async () => {
    const w = start({
      name: 'first-pod',
      output: 'jsonpath={.metadata.name}:{.metadata.labels.x}{"\\n"}',
    });
    await w.until((s) => s === 'first-pod:\n', 'the object');
    await t.client.patch('v1', 'Pod', 'first-pod', { metadata: { labels: { x: '1' } } });
    await t.client.create(pod('other'));
    await w.until((s) => s.includes('first-pod:1\n'), 'the change');
    await w.stop();
    assert.equal(w.out(), 'first-pod:\nfirst-pod:1\n');
    await assert.rejects(
      watchGet(t.client, resolveResourceName('pods'), {
        namespace: 'default',
        name: 'absent',
        watchOnly: false,
        write: () => undefined,
        signal: new AbortController().signal,
      }),
      /pods "absent" not found/,
    );
  });
});

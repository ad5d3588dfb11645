import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EndpointManager } from './endpoints.js';
import type { EndpointInfo } from './api/types.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("endpoints: refreshNamespace re-resolves a namespace's endpoints, retrying while the new identity is not allocated", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-ep-'));
  // the "identity allocator": namespace team label -> identity; a missing one fails (not allocated yet)
  let team = 'blue';
  const allocated = new Map<string, number>([['blue', 1001]]);
  const calls: string[] = [];
  const m = new EndpointManager({
    stateFile: join(dir, 'endpoints.json'),
    retryMs: 50,
    podLookup: async () => ({ labels: { app: 'x' } }),
    resolveIdentity: async (o) => {
      calls.push(o.namespace);
      const id = allocated.get(team);
      if (id === undefined) throw new Error(`no identity for team=${team} yet`);
      return id;
    },
  });
  const seen: EndpointInfo[] = [];
  m.onChange((ev, ep) => {
    if (ev === 'upsert') seen.push(ep);
  });
  try {
    const reg = (id: string, ns: string, ip: string) =>
      m.register({
        containerId: id,
        ifName: 'eth0',
        podNamespace: ns,
        podName: id,
        ip,
        hostIfName: `lxc${id}`,
      });
    assert.equal((await reg('a', 'blue', '10.0.0.2')).identity, 1001);
    assert.equal((await reg('b', 'other', '10.0.0.3')).identity, 1001);

    team = 'green'; // the namespace was relabelled; its identity is allocated a little later
    calls.length = 0;
    m.refreshNamespace('blue');
    await sleep(120);
    assert.equal(m.get('a')!.identity, 1001, 'keeps its identity until the new one exists');
    assert.deepEqual([...new Set(calls)], ['blue'], 'only the namespace`s endpoints');
    allocated.set('green', 1002);
    for (let i = 0; i < 50 && m.get('a')!.identity !== 1002; i++) await sleep(50);
    assert.equal(m.get('a')!.identity, 1002);
    assert.equal(m.get('a')!.state, 'ready');
    assert.equal(m.get('b')!.identity, 1001, 'another namespace untouched');
    assert.equal(seen.at(-1)!.identity, 1002, 'listeners told');
  } finally {
    m.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

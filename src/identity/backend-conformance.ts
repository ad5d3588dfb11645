/**
 * Tests any IdentityBackend must pass (the kvstore backend runs them; the
 * CRD backend should too):
 *
 *   identityBackendConformance('crd', async () => ({ backend, second, teardown }));
 *
 * `second` is another backend instance on the same storage (another
 * process's view), to check that allocation is atomic across instances.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { IdentityBackend } from './backend.js';

export interface IdentityBackendTarget {
  backend: IdentityBackend;
  second: IdentityBackend;
  teardown(): Promise<void>;
}

/** Registers the suite. Uses identities 0x01xxxx of cluster 1 with distinct label sets per test. */
export function identityBackendConformance(
  name: string,
  setup: () => Promise<IdentityBackendTarget>,
): void {
  describe(`IdentityBackend conformance: ${name}`, () => {
    let t: IdentityBackendTarget;
    let a: IdentityBackend;
    let b: IdentityBackend;
    let n = 0;
    const labels = (tag: string) =>
      `k8s:app=${tag}-${process.pid}-${++n};k8s:io.kubernetes.pod.namespace=default`;
    let nextId = 0x010000 | 1000;
    const id = () => nextId++;
    before(async () => {
      t = await setup();
      a = t.backend;
      b = t.second;
    });
    after(async () => t?.teardown());

    test('allocate binds a free ID; get/lookup/list see it', async () => {
      const l = labels('bind');
      const i = id();
      assert.deepEqual(await a.allocate(i, l), { id: i, created: true });
      assert.equal(await a.lookup(l), i);
      assert.equal(await b.lookup(l), i);
      assert.equal(await a.get(i), l);
      const listed = await b.list();
      assert.ok(listed.some((r) => r.id === i && r.labels === l));
      assert.deepEqual(
        listed.map((r) => r.id),
        [...listed.map((r) => r.id)].sort((x, y) => x - y),
        'list is sorted by ID',
      );
    });

    test('allocate of a bound label set returns its ID, whatever ID was asked', async () => {
      const l = labels('again');
      const i = id();
      await a.allocate(i, l);
      assert.deepEqual(await b.allocate(id(), l), { id: i, created: false });
      assert.deepEqual(await a.allocate(i, l), { id: i, created: false });
    });

    test('allocate of an ID bound to other labels says taken', async () => {
      const i = id();
      await a.allocate(i, labels('owner'));
      assert.deepEqual(await b.allocate(i, labels('intruder')), { taken: true });
    });

    test('release removes the binding only for the labels it is bound to', async () => {
      const l = labels('rel');
      const i = id();
      await a.allocate(i, l);
      await b.release(i, labels('someone-else'));
      assert.equal(await a.get(i), l);
      await b.release(i, l);
      assert.equal(await a.get(i), undefined);
      assert.equal(await a.lookup(l), undefined);
      assert.deepEqual(await a.allocate(i, labels('reuse')), { id: i, created: true });
    });

    test('racing instances never bind one label set to two IDs', async () => {
      for (let round = 0; round < 5; round++) {
        const l = labels('race');
        const ids = [id(), id(), id(), id()];
        const results = await Promise.all(ids.map((i, k) => (k % 2 ? a : b).allocate(i, l)));
        const bound = new Set(results.map((r) => ('taken' in r ? -1 : r.id)));
        assert.equal(bound.size, 1, `one ID for the label set, got ${JSON.stringify(results)}`);
        assert.equal(results.filter((r) => 'created' in r && r.created).length, 1);
        const winner = [...bound][0]!;
        assert.equal(await a.lookup(l), winner);
        // The losers' candidate IDs are free again.
        for (const i of ids)
          if (i !== winner) assert.equal(await b.get(i), undefined, `ID ${i} left behind`);
      }
    });

    test('racing instances never bind one ID to two label sets', async () => {
      for (let round = 0; round < 5; round++) {
        const i = id();
        const ls = [labels('x'), labels('y'), labels('z')];
        const results = await Promise.all(ls.map((l, k) => (k % 2 ? a : b).allocate(i, l)));
        assert.equal(results.filter((r) => 'created' in r).length, 1, JSON.stringify(results));
        const w = ls[results.findIndex((r) => 'created' in r)]!;
        assert.equal(await a.get(i), w);
        for (const l of ls) if (l !== w) assert.equal(await a.lookup(l), undefined);
      }
    });
  });
}

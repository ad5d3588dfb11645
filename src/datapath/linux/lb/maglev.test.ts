import assert from 'node:assert/strict';
import { test } from 'node:test';
import { maglevTable } from './maglev.js';

const backends = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => ({
    name: `10.0.${(i + from) >> 8}.${(i + from) & 255}:80/TCP`,
    id: i + from + 1,
  }));

function counts(t: number[]): Map<number, number> {
  const c = new Map<number, number>();
  for (const id of t) c.set(id, (c.get(id) ?? 0) + 1);
  return c;
}

test('maglev: every slot filled, each backend gets M/N slots (+-1)', () => {
  for (const n of [1, 2, 3, 7, 50]) {
    const t = maglevTable(backends(n), 1021);
    assert.equal(t.length, 1021);
    const c = counts(t);
    assert.equal(c.size, n, `all ${n} backends present`);
    for (const [, k] of c) {
      assert.ok(Math.abs(k - 1021 / n) < 1, `slots ${k} for n=${n}`);
    }
  }
});

test('maglev: the table depends only on the set, not the order', () => {
  const b = backends(5);
  assert.deepEqual(maglevTable(b, 251), maglevTable([...b].reverse(), 251));
});

test('maglev: removing a backend moves few slots it did not own', () => {
  const b = backends(10);
  const before = maglevTable(b, 1021);
  const removed = b[3]!.id;
  const after = maglevTable(
    b.filter((x) => x.id !== removed),
    1021,
  );
  let movedOthers = 0;
  for (let i = 0; i < 1021; i++) {
    if (before[i] === removed) assert.notEqual(after[i], removed);
    else if (before[i] !== after[i]) movedOthers++;
  }
  // The paper reports a small disruption beyond the removed backend's own slots.
  assert.ok(movedOthers / 1021 < 0.1, `moved ${movedOthers} slots of surviving backends`);
  // Adding a backend takes ~M/(N+1) slots, most from others fairly.
  const added = maglevTable([...b, ...backends(1, 10)], 1021);
  let changed = 0;
  for (let i = 0; i < 1021; i++) if (added[i] !== before[i]) changed++;
  assert.ok(changed < 1021 / 11 + 0.1 * 1021, `adding moved ${changed}`);
});

test('maglev: bad input', () => {
  assert.throws(() => maglevTable(backends(2), 1000), /not a prime/);
  assert.throws(() => maglevTable([...backends(1), ...backends(1)], 251), /appears twice/);
  assert.deepEqual(maglevTable([], 251), []);
});

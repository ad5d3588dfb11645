import assert from 'node:assert/strict';
import { test } from 'node:test';
import { abbaRounds, alternatingAbba, ratioFigure, type AbState } from './abba.js';

test('abbaRounds measures in the given order, averages each state and gives A/B per round', async () => {
  const seen: AbState[] = [];
  let n = 0;
  const logged: number[] = [];
  const r = await abbaRounds(
    2,
    alternatingAbba,
    (s) => {
      seen.push(s);
      n++;
      // A: 200 then 400 (mean 300) rps; B: always 100; cps half of rps
      const rps = s === 'a' ? (n % 2 === 0 ? 400 : 200) : 100;
      return { rps, cps: rps / 2 };
    },
    (round) => logged.push(round),
  );
  assert.deepEqual(seen, ['a', 'b', 'b', 'a', 'b', 'a', 'a', 'b']);
  assert.deepEqual(logged, [0, 1]);
  assert.equal(r.a.length, 2);
  assert.deepEqual(r.b, [
    { rps: 100, cps: 50 },
    { rps: 100, cps: 50 },
  ]);
  assert.deepEqual(
    r.rpsRatio,
    r.a.map((t) => t.rps / 100),
  );
  assert.deepEqual(
    r.cpsRatio,
    r.a.map((t) => t.cps / 50),
  );
  assert.equal(r.a[0]!.rps, 300); // 1st (n=1) 200 and 4th (n=4) 400
});

test('ratioFigure is the median of the finite ratios, with their count and spread', () => {
  const f = ratioFigure('x_vs_y_rps', [1, 0.9, Infinity, NaN, 0.95], 'target >= 0.95');
  assert.equal(f.value, 0.95);
  assert.equal(f.unit, 'ratio');
  assert.equal(f.note, 'median of 3 rounds (p25 0.900, p75 1.000); target >= 0.95');
});

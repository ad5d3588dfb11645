import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chunkPairs, MAX_TXN_OPS } from './batch.js';

test('chunkPairs: by count and by bytes; a big pair alone', () => {
  const small = Array.from({ length: 300 }, (_, i) => ({ key: `k${i}`, value: 'v' }));
  assert.deepEqual(
    chunkPairs(small).map((c) => c.length),
    [MAX_TXN_OPS, MAX_TXN_OPS, 300 - 2 * MAX_TXN_OPS],
  );
  const big = [
    { key: 'a', value: 'x'.repeat(600) },
    { key: 'b', value: 'x'.repeat(600) },
    { key: 'c', value: 'x'.repeat(2000) },
    { key: 'd', value: '' },
  ];
  assert.deepEqual(
    chunkPairs(big, 128, 1000).map((c) => c.map((p) => p.key).join('')),
    ['a', 'b', 'c', 'd'],
  );
  assert.deepEqual(chunkPairs([]), []);
});

/**
 * Maglev consistent hashing (Eisenbud et al., NSDI 2016, section 3.4), as
 * Cilium computes it in userspace for its lb4_maglev map: each backend gets a
 * permutation of the table's slots from two hashes of its name (offset, skip),
 * and backends take turns claiming their next preferred free slot until the
 * table is full. Every backend gets M/N slots (+-1), and removing a backend
 * moves only the slots that were its own (plus a small fraction).
 */
import { TendrilError } from '../../../util/errors.js';

/** 64-bit FNV-1a of a string with a seed mixed in first, reduced to a safe integer. */
function fnv1a(s: string, seed: number): bigint {
  let h = 0xcbf29ce484222325n ^ BigInt(seed);
  const prime = 0x100000001b3n;
  for (let i = 0; i < s.length; i++) {
    h ^= BigInt(s.charCodeAt(i) & 0xff);
    h = (h * prime) & 0xffffffffffffffffn;
  }
  // final avalanche (splitmix64 finaliser)
  h ^= h >> 30n;
  h = (h * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn;
  h ^= h >> 27n;
  h = (h * 0x94d049bb133111ebn) & 0xffffffffffffffffn;
  h ^= h >> 31n;
  return h;
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let i = 2; i * i <= n; i++) if (n % i === 0) return false;
  return true;
}

/**
 * Builds a Maglev lookup table of size `m` (a prime) for `backends`, each a
 * stable name (e.g. "10.0.0.1:80/TCP") and the value to put in its slots (a
 * backend id). Names are sorted first, so the table depends only on the set.
 * Returns `m` values; an empty array when there are no backends.
 * Throws TendrilError (LB_MAGLEV) when m is not a prime or names repeat.
 */
export function maglevTable(backends: Array<{ name: string; id: number }>, m: number): number[] {
  if (!isPrime(m))
    throw new TendrilError('LB_MAGLEV', `maglev table size ${m} is not a prime`, {
      hint: 'use a prime table size such as 251 or 1021',
    });
  if (backends.length === 0) return [];
  const sorted = [...backends].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (let i = 1; i < sorted.length; i++)
    if (sorted[i]!.name === sorted[i - 1]!.name)
      throw new TendrilError('LB_MAGLEV', `maglev: backend ${sorted[i]!.name} appears twice`);
  const M = BigInt(m);
  const n = sorted.length;
  const offset = sorted.map((b) => Number(fnv1a(b.name, 0) % M));
  const skip = sorted.map((b) => Number(fnv1a(b.name, 0x5bd1e995) % (M - 1n)) + 1);
  const next = new Array<number>(n).fill(0);
  const table = new Array<number>(m).fill(-1);
  let filled = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      let c = (offset[i]! + next[i]! * skip[i]!) % m;
      while (table[c]! >= 0) {
        next[i]!++;
        c = (offset[i]! + next[i]! * skip[i]!) % m;
      }
      table[c] = sorted[i]!.id;
      next[i]!++;
      if (++filled === m) return table;
    }
  }
}

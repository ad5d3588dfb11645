import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { privilegedTest } from '../../../test/helpers/privileged.js';
import { BPFFS_ROOT } from '../../util/paths.js';
import { ipv4, lpmKey, struct, u32, u64, be16 } from './codec.js';
import { BpfError, CodecError, MapMismatchError, SpecError } from './errors.js';
import { liveFds, openFdCount } from './fd.js';
import { createOrReusePinnedMap, newMap, openPinnedMap, possibleCpus } from './map.js';
import { runProcess, uniqueName } from './testing.js';
import { MapType, UpdateFlags } from './types.js';

/** What /proc/self/fd/N links to for a BPF map. */
const BPF_MAP_FD = /^anon_inode:bpf-map$/;

function pinDir(): { dir: string; remove(): void } {
  const dir = join(BPFFS_ROOT, uniqueName('pins'));
  mkdirSync(dir, { recursive: true });
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

privilegedTest('privileged: hash map lookup/update flags/delete/iterate with codecs', () => {
  const fdsBefore = openFdCount(BPF_MAP_FD);
  const key = struct('k', 8, { ip: [0, ipv4], port: [4, be16] });
  const m = newMap({ name: 'svc', type: MapType.Hash, maxEntries: 4, key, value: u64 });
  try {
    assert.equal(m.lookup({ ip: '10.0.0.1', port: 80 }), undefined);
    m.update({ ip: '10.0.0.1', port: 80 }, 7n);
    assert.equal(m.lookup({ ip: '10.0.0.1', port: 80 }), 7n);
    assert.throws(
      () => m.update({ ip: '10.0.0.1', port: 80 }, 8n, UpdateFlags.NoExist),
      (e: BpfError) => e.errnoName === 'EEXIST',
    );
    assert.throws(
      () => m.update({ ip: '10.0.0.9', port: 80 }, 8n, UpdateFlags.Exist),
      (e: BpfError) => e.errnoName === 'ENOENT',
    );
    m.update({ ip: '10.0.0.1', port: 80 }, 9n, UpdateFlags.Exist);
    for (let i = 2; i <= 4; i++) m.update({ ip: `10.0.0.${i}`, port: 80 }, BigInt(i));
    // Full: a fifth key fails with E2BIG and a hint.
    assert.throws(
      () => m.update({ ip: '10.0.0.5', port: 80 }, 5n),
      (e: BpfError) => e.errnoName === 'E2BIG' && /map is full/.test(e.hint ?? ''),
    );
    const entries = [...m.entries()].sort((a, b) => a[0].ip.localeCompare(b[0].ip));
    assert.deepEqual(
      entries.map(([k, v]) => [k.ip, k.port, v]),
      [
        ['10.0.0.1', 80, 9n],
        ['10.0.0.2', 80, 2n],
        ['10.0.0.3', 80, 3n],
        ['10.0.0.4', 80, 4n],
      ],
    );
    assert.equal(m.delete({ ip: '10.0.0.2', port: 80 }), true);
    assert.equal(m.delete({ ip: '10.0.0.2', port: 80 }), false);
    assert.equal([...m.keys()].length, 3);
    // A wrong value fails before the syscall.
    assert.throws(() => m.update({ ip: 'nope', port: 1 }, 1n), CodecError);
    const info = m.info();
    assert.equal(info.name, 'svc');
    assert.equal(info.keySize, 8);
  } finally {
    m.close();
  }
  assert.throws(() => m.lookup({ ip: '10.0.0.1', port: 80 }), /after close/);
  assert.equal(openFdCount(BPF_MAP_FD), fdsBefore, 'the map fd was closed');
});

privilegedTest(
  'privileged: array, LRU, LPM trie, per-CPU array/hash, prog array and ringbuf maps are created',
  () => {
    const made = [] as { close(): void }[];
    try {
      const arr = newMap({ name: 'arr', type: MapType.Array, maxEntries: 4, key: u32, value: u32 });
      made.push(arr);
      arr.update(3, 33);
      assert.equal(arr.lookup(3), 33);
      assert.equal(arr.lookup(0), 0);
      const lru = newMap({
        name: 'lru',
        type: MapType.LruHash,
        maxEntries: 64,
        key: u32,
        value: u32,
      });
      made.push(lru);
      for (let i = 0; i < 200; i++) lru.update(i, i);
      assert.ok([...lru.keys()].length <= 64, 'LRU evicts');
      const lpm = newMap({
        name: 'lpm',
        type: MapType.LpmTrie,
        maxEntries: 16,
        key: lpmKey(ipv4),
        value: u32,
      });
      made.push(lpm);
      lpm.update({ prefixLen: 16, addr: '10.244.0.0' }, 1);
      lpm.update({ prefixLen: 24, addr: '10.244.1.0' }, 2);
      assert.equal(lpm.lookup({ prefixLen: 32, addr: '10.244.1.7' }), 2);
      assert.equal(lpm.lookup({ prefixLen: 32, addr: '10.244.9.7' }), 1);
      assert.equal(lpm.lookup({ prefixLen: 32, addr: '10.9.9.9' }), undefined);
      const pca = newMap({
        name: 'pca',
        type: MapType.PercpuArray,
        maxEntries: 2,
        key: u32,
        value: u64,
      });
      made.push(pca);
      const n = possibleCpus();
      pca.updatePerCpu(
        1,
        Array.from({ length: n }, (_, i) => BigInt(i + 10)),
      );
      assert.deepEqual(
        pca.lookupPerCpu(1),
        Array.from({ length: n }, (_, i) => BigInt(i + 10)),
      );
      assert.throws(() => pca.lookup(1), SpecError);
      const pch = newMap({
        name: 'pch',
        type: MapType.PercpuHash,
        maxEntries: 8,
        key: u32,
        value: u32,
      });
      made.push(pch);
      pch.updatePerCpu(5, 7);
      assert.deepEqual(pch.lookupPerCpu(5), Array(n).fill(7));
      assert.deepEqual(pch.batchLookup(), [[5, Array(n).fill(7)]]);
      const pa = newMap({
        name: 'jmp',
        type: MapType.ProgArray,
        maxEntries: 4,
        key: u32,
        value: u32,
      });
      made.push(pa);
      const rb = newMap({ name: 'rb', type: MapType.Ringbuf, maxEntries: 1 << 16 });
      made.push(rb);
      assert.equal(rb.info().maxEntries, 1 << 16);
      assert.throws(
        () => newMap({ name: 'rb2', type: MapType.Ringbuf, maxEntries: 1000 }),
        SpecError,
      );
      assert.throws(
        () =>
          newMap({
            name: 'bad name!',
            type: MapType.Hash,
            maxEntries: 1,
            keySize: 4,
            valueSize: 4,
          }),
        SpecError,
      );
      assert.throws(
        () =>
          newMap({
            name: 'x',
            type: MapType.Hash,
            maxEntries: 1,
            keySize: 8,
            key: u32,
            valueSize: 4,
          }),
        CodecError,
      );
      assert.throws(
        () => newMap({ name: 'x', type: MapType.Array, maxEntries: 1, keySize: 8, valueSize: 4 }),
        (e: BpfError) =>
          e.command === 'BPF_MAP_CREATE' &&
          e.errnoName === 'EINVAL' &&
          /create map x \(Array\)/.test(e.message),
      );
    } finally {
      for (const m of made) m.close();
    }
  },
);

privilegedTest('privileged: batch update, lookup and delete of 10k entries', () => {
  const m = newMap({ name: 'batch', type: MapType.Hash, maxEntries: 10_000, key: u32, value: u32 });
  try {
    const keys = Array.from({ length: 10_000 }, (_, i) => i);
    m.batchUpdate(
      keys,
      keys.map((k) => k * 2),
    );
    assert.equal(m.lookup(1234), 2468);
    const all = m.batchLookup({ batchSize: 1000 });
    assert.equal(all.length, 10_000);
    assert.ok(all.every(([k, v]) => v === k * 2));
    m.batchDelete(keys.slice(0, 5000));
    assert.equal(m.lookup(10), undefined);
    assert.equal(m.batchLookup().length, 5000);
    const drained = m.batchLookup({ andDelete: true });
    assert.equal(drained.length, 5000);
    assert.equal([...m.keys()].length, 0);
  } finally {
    m.close();
  }
});

privilegedTest(
  'privileged: a map pinned in this process is updated by another process',
  async () => {
    const pins = pinDir();
    const path = join(pins.dir, 'shared');
    const m = newMap({ name: 'shared', type: MapType.Hash, maxEntries: 8, key: u32, value: u32 });
    try {
      m.pin(path);
      const mapTs = fileURLToPath(new URL('./map.ts', import.meta.url));
      const codecTs = fileURLToPath(new URL('./codec.ts', import.meta.url));
      const child = await runProcess(process.execPath, [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `import { openPinnedMap } from '${mapTs}'; import { u32 } from '${codecTs}';
       const m = openPinnedMap('${path}', { key: u32, value: u32 }); m.update(42, 4242); m.close(); console.log('done');`,
      ]);
      assert.equal(child.stdout.trim(), 'done', child.stderr);
      assert.equal(m.lookup(42), 4242);
      const again = openPinnedMap(path, { key: u32, value: u32 });
      assert.equal(again.lookup(42), 4242);
      assert.equal(again.name, 'shared');
      again.close();
      assert.throws(() => openPinnedMap(path, { key: u64 }), CodecError);
    } finally {
      m.close();
      pins.remove();
    }
  },
);

privilegedTest(
  'privileged: createOrReusePinnedMap reuses a matching pin and refuses a mismatch',
  () => {
    const pins = pinDir();
    const path = join(pins.dir, 'svc');
    const before = liveFds().length;
    try {
      const spec = {
        name: 'svc',
        type: MapType.Hash,
        maxEntries: 8,
        key: u32,
        value: u32,
      } as const;
      const a = createOrReusePinnedMap(spec, path);
      a.update(1, 11);
      a.close();
      const b = createOrReusePinnedMap(spec, path);
      assert.equal(b.lookup(1), 11, 'the restarted agent sees its old entries');
      b.close();
      assert.throws(
        () => createOrReusePinnedMap({ ...spec, maxEntries: 16 }, path),
        (e: unknown) => e instanceof MapMismatchError && /maxEntries 8 != 16/.test(e.message),
      );
      assert.throws(
        () => createOrReusePinnedMap({ ...spec, type: MapType.LruHash, value: u64 }, path),
        (e: unknown) =>
          e instanceof MapMismatchError &&
          /type Hash != LruHash/.test(e.message) &&
          /valueSize 4 != 8/.test(e.message),
      );
      const c = openPinnedMap(path, { key: u32, value: u32 });
      assert.equal(c.lookup(1), 11, 'a mismatch leaves the pinned map untouched');
      c.close();
    } finally {
      pins.remove();
    }
    assert.equal(liveFds().length, before);
  },
);

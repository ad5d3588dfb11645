import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { privilegedTest } from '../../../test/helpers/privileged.js';
import { BPFFS_ROOT } from '../../util/paths.js';
import { newMap, type BpfMap } from '../bpf/map.js';
import { BpfError, CodecError } from '../bpf/errors.js';
import { uniqueName } from '../bpf/testing.js';
import { MapFullError } from './datapath.js';
import { mapsOnlyDatapath } from './testing.js';
import {
  IPCACHE_BATCH_MAX,
  IPCacheWriter,
  ipcacheSpec,
  keyToPrefix,
  openPinnedIPCache,
  type IPCacheKey,
  type IPCacheValue,
  type IPCacheWrite,
} from './maps.js';

const ip = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`;

/** The map's entries as prefix -> [identity, hostIP]. */
function contents(m: BpfMap<IPCacheKey, IPCacheValue>) {
  const out = new Map<string, [number, string]>();
  for (const [k, v] of m.batchLookup()) out.set(keyToPrefix(k), [v.identity, v.hostIP]);
  return out;
}

privilegedTest(
  'privileged: IPCacheWriter writes an LPM ipcache in batches; one refused entry fails alone',
  () => {
    const m = newMap({ ...ipcacheSpec, name: 'tdl_ipcb_t', maxEntries: 12_000 });
    try {
      const w = new IPCacheWriter(m);
      // more than two batches, with a CIDR and tunnel endpoints
      const entries: IPCacheWrite[] = Array.from(
        { length: 2 * IPCACHE_BATCH_MAX + 100 },
        (_, i) => ({
          prefix: ip(i),
          identity: 70_000 + (i % 500),
          ...(i % 2 ? { hostIP: '192.0.2.7' } : {}),
        }),
      );
      entries.push({ prefix: '10.200.0.0/16', identity: 2 });
      assert.deepEqual([...w.write(entries)], [], 'nothing failed');
      assert.ok(w.batching, 'the kernel took BPF_MAP_UPDATE_BATCH on the LPM trie');
      const got = contents(m);
      assert.equal(got.size, entries.length);
      for (const e of entries)
        assert.deepEqual(got.get(e.prefix), [e.identity, e.hostIP ?? '0.0.0.0'], e.prefix);

      // a few entries: one update each (replacing), same result
      assert.deepEqual(
        [
          ...w.write([
            { prefix: ip(3), identity: 5 },
            { prefix: '10.0.0.4', identity: 6 },
          ]),
        ],
        [],
      );
      const after = contents(m);
      assert.deepEqual(after.get(ip(3)), [5, '0.0.0.0']);
      assert.deepEqual(after.get(ip(4)), [6, '0.0.0.0'], 'an address alone is its /32');

      // a batch with an entry that does not encode: it fails alone, the others are written
      const bad: IPCacheWrite[] = Array.from({ length: 20 }, (_, i) => ({
        prefix: ip(20_000 + i),
        identity: 9,
      }));
      bad[7] = { prefix: '10.9.9.9/40', identity: 9 };
      const failed = w.write(bad);
      assert.deepEqual([...failed.keys()], ['10.9.9.9/40']);
      assert.ok(failed.get('10.9.9.9/40') instanceof CodecError);
      const now = contents(m);
      for (const e of bad) if (e !== bad[7]) assert.deepEqual(now.get(e.prefix), [9, '0.0.0.0']);
    } finally {
      m.close();
    }
  },
);

privilegedTest(
  'privileged: IPCacheWriter: the kernel refusing entries mid-batch (map full) fails exactly those',
  () => {
    const m = newMap({ ...ipcacheSpec, name: 'tdl_ipcb_f', maxEntries: 100 });
    try {
      const w = new IPCacheWriter(m);
      const entries = Array.from({ length: 150 }, (_, i) => ({ prefix: ip(i), identity: 70_001 }));
      const failed = w.write(entries);
      assert.equal(failed.size, 50, 'the 50 beyond the map size');
      for (let i = 100; i < 150; i++) assert.ok(failed.get(ip(i)) instanceof BpfError, ip(i));
      assert.equal(contents(m).size, 100);
      assert.ok(w.batching, 'a refused entry does not turn batching off');
    } finally {
      m.close();
    }
  },
);

privilegedTest(
  'privileged: LinuxDatapath.applyIPCache: batch upserts and deletes, MapFullError beyond the size, pressure warning',
  async () => {
    const dir = join(BPFFS_ROOT, uniqueName('tdl-ipcb'));
    const dp = mapsOnlyDatapath('tdl-ipcb', dir, 1024);
    try {
      await dp.init();
      const upserts = Array.from({ length: 1100 }, (_, i) => ({ prefix: ip(i), identity: 65_792 }));
      const failed = await dp.applyIPCache({ upserts, deletes: [] });
      assert.equal(failed.size, 76, 'the 76 new prefixes beyond 1,024');
      for (let i = 1024; i < 1100; i++) {
        const e = failed.get(ip(i));
        assert.ok(e instanceof MapFullError && /bpf-ipcache-map-max/.test(e.hint ?? ''), ip(i));
      }
      assert.match(
        dp.problems().find((p) => p.component === 'bpf-map-pressure')?.cause ?? '',
        /ipcache map 100% full \(1024 of 1024\)/,
      );
      const m = openPinnedIPCache(dir);
      try {
        assert.equal(contents(m).size, 1024);
        // an existing prefix may change while full; deletes make room
        const f2 = await dp.applyIPCache({
          upserts: [{ prefix: ip(5), identity: 65_793 }],
          deletes: Array.from({ length: 200 }, (_, i) => ip(100 + i)),
        });
        assert.deepEqual([...f2], []);
        const got = contents(m);
        assert.equal(got.size, 824);
        assert.deepEqual(got.get(ip(5)), [65_793, '0.0.0.0']);
        assert.ok(!dp.problems().some((p) => p.component === 'bpf-map-pressure'), 'cleared');
      } finally {
        m.close();
      }
    } finally {
      await dp.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

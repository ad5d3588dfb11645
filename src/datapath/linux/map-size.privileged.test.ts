import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { privilegedTest } from '../../../test/helpers/privileged.js';
import { BPFFS_ROOT } from '../../util/paths.js';
import { uniqueName } from '../bpf/testing.js';
import { MapFullError } from './datapath.js';
import { mapsOnlyDatapath } from './testing.js';
import { openPinnedIPCache } from './maps.js';

privilegedTest(
  'privileged: the ipcache map is sized from the setting, warns at 90% and refuses when full',
  async () => {
    const dir = join(BPFFS_ROOT, uniqueName('tdl-mapsize'));
    const dp = mapsOnlyDatapath('tdl-mapsize', dir, 1024);
    try {
      await dp.init();
      const m = openPinnedIPCache(dir);
      assert.equal(m.info().maxEntries, 1024, 'created with the configured size');
      // the policy programs' maps open the same ipcache: at its configured size, not the default
      assert.deepEqual(
        dp.problems().filter((p) => p.component === 'policy'),
        [],
        'policy maps opened with the sized ipcache',
      );
      m.close();
      const ip = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`;
      for (let i = 0; i < 921; i++) await dp.upsertIPCache({ prefix: ip(i), identity: 65792 });
      assert.ok(!dp.problems().some((p) => p.component === 'bpf-map-pressure'), 'below 90%');
      await dp.upsertIPCache({ prefix: ip(921), identity: 65792 });
      const warn = dp.problems().find((p) => p.component === 'bpf-map-pressure');
      assert.match(warn?.cause ?? '', /ipcache map 90% full \(922 of 1024\)/);
      for (let i = 922; i < 1024; i++) await dp.upsertIPCache({ prefix: ip(i), identity: 65792 });
      // an update of an existing entry still works; a new one is refused with the setting to raise
      await dp.upsertIPCache({ prefix: ip(5), identity: 65793 });
      await assert.rejects(
        dp.upsertIPCache({ prefix: ip(5000), identity: 65792 }),
        (e) =>
          e instanceof MapFullError &&
          e.code === 'DATAPATH_MAP_FULL' &&
          /bpf-ipcache-map-max/.test(e.hint ?? ''),
      );
      for (let i = 0; i < 200; i++) await dp.deleteIPCache(ip(i));
      assert.ok(!dp.problems().some((p) => p.component === 'bpf-map-pressure'), 'cleared');
    } finally {
      await dp.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

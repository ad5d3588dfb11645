import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'node:test';
import { privilegedTest } from '../../../test/helpers/privileged.js';
import { TendrilError } from '../../util/errors.js';
import { DiskPersistence } from './storage.js';

describe('disk store on a full disk', () => {
  privilegedTest(
    'privileged: a full disk is an error for that write, and the store stays whole',
    async () => {
      const mnt = mkdtempSync(join(tmpdir(), 'tendril-apistore-full-'));
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tendril-test', mnt]);
      const opened: DiskPersistence[] = [];
      try {
        const filler = join(mnt, 'filler');
        writeFileSync(filler, Buffer.alloc(256 * 1024));
        const a = new DiskPersistence(join(mnt, 'store'), { snapshotEvery: 1_000_000 });
        opened.push(a);
        await a.load();
        const value = JSON.stringify({ data: 'x'.repeat(3000) });
        let acked = 0;
        let failure: unknown;
        for (let i = 0; i < 1000 && !failure; i++) {
          try {
            acked = await a.put(`/registry/x/k${i}`, value);
            await a.flush();
          } catch (err) {
            failure = err;
          }
        }
        assert.ok(failure instanceof TendrilError, `no error on a full disk: ${String(failure)}`);
        assert.equal(failure.code, 'APISERVER_STORE_FULL');
        assert.match(failure.message, /out of disk space.*not stored/);
        // Space again: the store goes on, and nothing acknowledged is lost or glued together.
        rmSync(filler);
        const next = await a.put('/registry/x/after', '{}');
        assert.equal(next, acked + 1);
        await a.flush();
        const b = new DiskPersistence(join(mnt, 'store')); // a crash: no close
        opened.push(b);
        const { kvs, revision } = await b.load();
        assert.equal(revision, next);
        assert.equal(kvs.length, acked + 1);
      } finally {
        for (const p of opened) await p.close().catch(() => {});
        execFileSync('umount', [mnt]);
        rmSync(mnt, { recursive: true, force: true });
      }
    },
  );
});

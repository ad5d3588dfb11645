/**
 * A lock around changes to the set of lab clusters (index allocation, CIDR
 * checks, underlay removal), so concurrent `lab create`/`lab delete` in one
 * TENDRIL_HOME do not race. A directory made with mkdir (atomic) holding the
 * owner's pid; a lock whose owner died is taken over.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TendrilError } from '../util/errors.js';
import { tendrilHome } from '../util/paths.js';
import { isAlive, sleep } from './proc.js';

/** Runs fn while holding the lab lock. Throws LAB_LOCKED after timeoutMs. */
export async function withLabLock<T>(fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const base = join(tendrilHome(), 'clusters');
  mkdirSync(base, { recursive: true });
  const dir = join(base, '.lock');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'pid'), `${process.pid}\n`);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let owner: number | undefined;
      try {
        owner = Number(readFileSync(join(dir, 'pid'), 'utf8').trim()) || undefined;
      } catch {
        owner = undefined;
      }
      if (owner !== undefined && !isAlive(owner)) {
        rmSync(dir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new TendrilError(
          'LAB_LOCKED',
          `another tendril lab command (pid ${owner ?? '?'}) holds ${dir}`,
          {
            hint: 'wait for it to finish; if no such process runs, remove the directory',
          },
        );
      }
      await sleep(50);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A TENDRIL_HOME of its own for the tests of one file (node:test hooks).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';

/**
 * Points TENDRIL_HOME at a new temporary directory `tendril-TAG-*` before the
 * file's tests (a `before` hook) and, after them, restores the old value and
 * removes the directory. Call at the top level of a test file; returns a
 * getter of the directory (set once the hook has run).
 */
export function useTempTendrilHome(tag: string): () => string {
  let home = '';
  const old = process.env.TENDRIL_HOME;
  before(() => {
    home = mkdtempSync(join(tmpdir(), `tendril-${tag}-`));
    process.env.TENDRIL_HOME = home;
  });
  after(() => {
    if (old === undefined) delete process.env.TENDRIL_HOME;
    else process.env.TENDRIL_HOME = old;
    rmSync(home, { recursive: true, force: true });
  });
  return () => home;
}

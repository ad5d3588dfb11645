/**
 * The lab side of the benchmarks that make lab clusters: a lab of their own
 * (test/e2e/lab-fixture.ts's useUniqueLab(tag, 'bench')) and its deletion at
 * the end, unless BENCH_KEEP is set.
 */
import { deleteLab, type UniqueLab } from '../../test/e2e/lab-fixture.js';

/**
 * Deletes every cluster of LAB (`tendril lab delete --all`, then whatever is
 * left by pid) and logs what had to be removed by force. With BENCH_KEEP set
 * it deletes nothing and logs the environment that reaches the kept lab.
 * Returns whether the lab was deleted. Never throws.
 */
export async function releaseLab(lab: UniqueLab, log: (s: string) => void): Promise<boolean> {
  if (process.env.BENCH_KEEP) {
    log(`kept: TENDRIL_LAB_PREFIX=${lab.prefix} TENDRIL_HOME=${lab.home}`);
    return false;
  }
  log('deleting the lab clusters ...');
  try {
    const { r, left } = await deleteLab(lab);
    if (r.status !== 0)
      log(`cleanup: tendril lab delete --all exited ${r.status}: ${r.all.trim()}`);
    if (left.length > 0) log(`cleanup: removed by force: ${left.join('; ')}`);
  } catch (err) {
    log(`cleanup: ${String(err)}`);
  }
  return true;
}

/**
 * Privileged tests: need root (namespaces, bpf, cgroups). Outside root they
 * skip; under CI=true a privileged test that cannot run FAILS instead.
 *
 *   import { privilegedTest } from '../../test/helpers/privileged.js';
 *   privilegedTest('privileged: attach connect4', async (t) => { ... });
 */
import { test, type TestContext } from 'node:test';

/** Why privileged tests cannot run here, or undefined when they can. */
export function privilegeProblem(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root (run the tests as root)';
  return undefined;
}

/** Declares a test that needs root. The name should start with "privileged:". */
export function privilegedTest(
  name: string,
  fn: (t: TestContext) => Promise<void> | void,
  /** `todo`: a known failure, named with its reason: it runs and reports, but does not fail the suite. */
  options: { timeout?: number; todo?: string } = {},
): void {
  const problem = privilegeProblem();
  if (problem === undefined) {
    test(
      name,
      { timeout: options.timeout ?? 120_000, ...(options.todo ? { todo: options.todo } : {}) },
      fn,
    );
  } else if (process.env.CI === 'true') {
    test(name, () => {
      throw new Error(`privileged test cannot run under CI: ${problem}`);
    });
  } else {
    test(name, { skip: `needs root: ${problem}` }, () => {});
  }
}

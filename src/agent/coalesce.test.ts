import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Coalescer } from './coalesce.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('Coalescer', () => {
  it('runs a lone change on the next turn, without a timer, and coalesces what is queued', async () => {
    let runs = 0;
    const c = new Coalescer(() => runs++);
    c.schedule();
    c.schedule();
    c.schedule();
    assert.equal(runs, 0);
    await tick();
    assert.equal(runs, 1);
    assert.equal(c.nextDelayMs(), 0);
    c.stop();
  });

  it('spaces out the run after an expensive one, capped at maxDelayMs', async () => {
    let runs = 0;
    const c = new Coalescer(
      () => {
        runs++;
        const end = performance.now() + 30;
        while (performance.now() < end);
      },
      { maxDelayMs: 40 },
    );
    c.schedule();
    await tick();
    assert.equal(runs, 1);
    const d = c.nextDelayMs();
    assert.ok(d > 20 && d <= 40, `delay ${d}`);
    c.schedule();
    await tick();
    assert.equal(runs, 1, 'waits after an expensive run');
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(runs, 2);
    c.stop();
    c.schedule();
    await tick();
    assert.equal(runs, 2, 'stopped');
  });
});

/**
 * The service map in a real headless Chromium (Debian's `chromium`, driven by
 * puppeteer-core). Needs chromium, not root: skipped when it is missing,
 * FAILS under CI=true (scripts/setup.sh installs it).
 *
 * TENDRIL_UPDATE_SCREENSHOT=1 writes docs/img/service-map.png.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import puppeteer, { type Browser } from 'puppeteer-core';
import { FlowPushQueue, startHubbleUi, HubbleUiError } from './ui-server.js';
import { deniedToEcho, forwardedToEcho, policyAllowed } from './flow-fixtures.js';

function findChromium(): string | undefined {
  for (const cmd of ['chromium', 'chromium-browser']) {
    try {
      return (
        execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || undefined
      );
    } catch {
      /* next */
    }
  }
  return undefined;
}

const chromium = findChromium();
const browserTest = (name: string, fn: () => Promise<void>): void => {
  if (chromium !== undefined) test(name, { timeout: 120_000 }, fn);
  else if (process.env.CI === 'true')
    test(name, () => {
      throw new Error(
        'chromium is missing under CI: run scripts/setup.sh (Debian package chromium)',
      );
    });
  else test(name, { skip: 'chromium is not installed (Debian package chromium)' }, () => {});
};

const FORWARDED_GREEN = 'rgb(46,125,50)';
const DROPPED_RED = 'rgb(198,40,40)';

browserTest(
  'hubble ui: the map shows cluster2 client -> echo-service-c1 green, a denied flow red, and live flows',
  async () => {
    const flows = new FlowPushQueue();
    const now = Date.now();
    for (let i = 0; i < 5; i++) flows.push(forwardedToEcho(40000 + i, now - 1000 * i));
    flows.push(policyAllowed(now));
    flows.push(deniedToEcho(now));
    const ui = await startHubbleUi(flows, { port: 0, pushIntervalMs: 200 });
    const profile = mkdtempSync(join(tmpdir(), 'tendril-chromium-'));
    let browser: Browser | undefined;
    try {
      browser = await puppeteer.launch({
        executablePath: chromium!,
        headless: true,
        userDataDir: profile,
        args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
      });
      const page = await browser.newPage();
      await page.setViewport({ width: 1200, height: 900 });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(ui.url, { waitUntil: 'load' });

      const client = 'cluster2/default/pod/client';
      const svc = 'cluster1/default/service/echo-service-c1';
      await page.waitForFunction(
        `window.tendrilMap && window.tendrilMap.getElementById(${JSON.stringify(client)}).nonempty()`,
        { timeout: 15_000 },
      );
      const info = (await page.evaluate(`(() => {
      const cy = window.tendrilMap;
      const client = cy.getElementById(${JSON.stringify(client)});
      const fwd = cy.edges().filter((e) => e.data('source') === ${JSON.stringify(client)} && e.data('target') === ${JSON.stringify(svc)});
      const dropped = cy.edges('[verdict = "DROPPED"]');
      return {
        clientParent: client.parent().id(),
        clientLabel: client.data('label'),
        fwdCount: fwd.length,
        fwdColor: fwd.length ? fwd[0].style('line-color') : null,
        fwdVerdict: fwd.length ? fwd[0].data('verdict') : null,
        fwdLabel: fwd.length ? fwd[0].data('label') : null,
        droppedColors: dropped.map((e) => e.style('line-color')),
        svcParent: cy.getElementById(${JSON.stringify(svc)}).parent().id(),
        positioned: client.position().x !== 0 || client.position().y !== 0,
      };
    })()`)) as Record<string, unknown>;
      assert.equal(info.clientParent, 'cluster:cluster2');
      assert.equal(info.clientLabel, 'default/client');
      assert.equal(info.svcParent, 'cluster:cluster1');
      assert.equal(info.fwdCount, 1);
      assert.equal(info.fwdVerdict, 'FORWARDED');
      assert.equal(String(info.fwdColor).replace(/\s/g, ''), FORWARDED_GREEN);
      assert.match(String(info.fwdLabel), /\/s TCP\/80$/);
      assert.deepEqual(
        (info.droppedColors as string[]).map((c) => c.replace(/\s/g, '')),
        [DROPPED_RED],
      );
      assert.equal(info.positioned, true);

      // the table shows the flows, and a flow pushed after load appears live
      await page.waitForFunction(`document.querySelectorAll('#flows tr').length === 7`, {
        timeout: 10_000,
      });
      const late = deniedToEcho(Date.now(), 'late-pod');
      flows.push(late);
      await page.waitForFunction(
        `document.querySelector('#flows tr[data-uuid="${late.uuid}"]') !== null`,
        {
          timeout: 10_000,
        },
      );
      const firstRow = (await page.evaluate(
        `document.querySelector('#flows tr').textContent`,
      )) as string;
      assert.match(firstRow, /default\/late-pod/);
      assert.match(firstRow, /POLICY_DENIED/);
      // ...and on the map, as a new red edge
      await page.waitForFunction(
        `window.tendrilMap.getElementById('cluster2/default/pod/late-pod').nonempty()`,
        { timeout: 10_000 },
      );

      // the verdict filter narrows the table to drops
      await page.select('#f-verdict', 'DROPPED');
      await page.evaluate(`document.getElementById('f-verdict').dispatchEvent(new Event('input'))`);
      const verdicts = (await page.evaluate(
        `[...document.querySelectorAll('#flows tr td:nth-child(5)')].map((td) => td.textContent)`,
      )) as string[];
      assert.deepEqual(verdicts, ['DROPPED', 'DROPPED']);
      await page.select('#f-verdict', '');
      await page.evaluate(`document.getElementById('f-verdict').dispatchEvent(new Event('input'))`);

      const shot =
        process.env.TENDRIL_UPDATE_SCREENSHOT === '1'
          ? fileURLToPath(new URL('../../docs/img/service-map.png', import.meta.url))
          : join(profile, 'service-map.png');
      await page.screenshot({ path: shot as `${string}.png` });
      assert.deepEqual(errors, []);
    } finally {
      const proc = browser?.process();
      await browser?.close().catch(() => proc?.kill('SIGKILL'));
      if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await ui.close();
      rmSync(profile, { recursive: true, force: true });
    }
  },
);

test('hubble ui: a bad or busy port is a clear error', async () => {
  await assert.rejects(
    startHubbleUi(new FlowPushQueue(), { port: 70000 }),
    /--port 70000 is not a port number/,
  );
  const a = await startHubbleUi(new FlowPushQueue(), { port: 0 });
  try {
    await assert.rejects(
      startHubbleUi(new FlowPushQueue(), { port: a.port }),
      (e: unknown) => e instanceof HubbleUiError && /choose another with --port/.test(e.message),
    );
    const res = await fetch(`${a.url}vendor/cytoscape.min.js`);
    assert.equal(res.status, 200);
    assert.ok((await res.text()).length > 100_000);
    assert.equal((await fetch(`${a.url}vendor/evil.js`)).status, 404);
  } finally {
    await a.close();
  }
});

/**
 * The seed's walkthrough, automated: examples/seed-walkthrough/run.sh on a
 * lab of its own (unique TENDRIL_HOME and TENDRIL_LAB_PREFIX), exit 0, and
 * the "verified:" line of every step's Verify block; afterwards nothing of
 * the lab is left (the script tears its clusters down itself).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { privilegedTest } from '../helpers/privileged.js';
import { ROOT, teardownLab, useUniqueLab } from './lab-fixture.js';

privilegedTest(
  'privileged: examples/seed-walkthrough/run.sh runs steps 1 to 7 and verifies each',
  async () => {
    const lab = useUniqueLab('walk');
    try {
      const { status, out } = await new Promise<{ status: number | null; out: string }>(
        (resolve) => {
          const child = spawn('bash', [join(ROOT, 'examples/seed-walkthrough/run.sh')], {
            cwd: ROOT,
            env: process.env,
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let text = '';
          child.stdout.setEncoding('utf8').on('data', (d: string) => (text += d));
          child.stderr.setEncoding('utf8').on('data', (d: string) => (text += d));
          const timer = setTimeout(() => child.kill('SIGTERM'), 540_000);
          child.on('close', (code) => {
            clearTimeout(timer);
            resolve({ status: code, out: text.replace(/\x1b\[[0-9;]*m/g, '') });
          });
        },
      );
      assert.equal(status, 0, `run.sh exited ${status}:\n${out}`);
      const verified = out.split('\n').filter((l) => l.startsWith('verified: '));
      const expected = [
        /^verified: contexts lab-cluster1 and lab-cluster2 exist$/,
        /^verified: agents, operator and DNS are OK on both clusters$/,
        /^verified: the mesh shows 2\/2 clusters from both sides$/,
        /^verified: echo-service-c1 is ready and its global EndpointSlice is filled$/,
        /^verified: cluster2 reached echo-service-c1; pod echo-service-c1-\S+ of cluster1 answered$/,
        /^verified: echo-service-c2 is ready and its global EndpointSlice is filled$/,
        /^verified: cluster1 reached echo-service-c2; pod echo-service-c2-\S+ of cluster2 answered$/,
      ];
      assert.equal(
        verified.length,
        expected.length,
        `verified lines:\n${verified.join('\n')}\n\n${out}`,
      );
      expected.forEach((re, i) => assert.match(verified[i]!, re));
      assert.match(out, /The walkthrough ran end to end\./);
      // the script's own teardown ran: both clusters gone from this lab's state
      assert.match(out, /== Tear down ==/);
    } finally {
      await teardownLab(lab);
    }
  },
  { timeout: 600_000 },
);

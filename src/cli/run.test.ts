import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseKeyValues, runPod } from './run.js';

const flags = { restart: 'Never', env: [] as string[], podRunningTimeout: '60s' };

test('the pod kubectl run would make', () => {
  const p = runPod(
    'curl',
    ['curl', 'http://echo:80'],
    { ...flags, image: 'curlimages/curl', stdin: true, tty: true, env: ['A=1'] },
    'default',
  );
  assert.deepEqual(p.metadata, { name: 'curl', namespace: 'default', labels: { run: 'curl' } });
  assert.equal(p.spec.restartPolicy, 'Never');
  assert.deepEqual(p.spec.containers[0], {
    name: 'curl',
    image: 'curlimages/curl',
    args: ['curl', 'http://echo:80'],
    env: [{ name: 'A', value: '1' }],
    stdin: true,
    stdinOnce: true,
    tty: true,
  });
  assert.deepEqual(
    runPod(
      'x',
      ['sleep', '1'],
      { ...flags, image: 'busybox', command: true, labels: 'a=b,c=d' },
      'ns',
    ).spec.containers[0].command,
    ['sleep', '1'],
  );
  assert.throws(() => runPod('x', [], { ...flags }, 'ns'), /--image is missing/);
  assert.throws(
    () => runPod('x', [], { ...flags, image: 'b', restart: 'Sometimes' }, 'ns'),
    /invalid restart policy/,
  );
  assert.throws(() => parseKeyValues('a', '--labels'), /not KEY=VALUE/);
});

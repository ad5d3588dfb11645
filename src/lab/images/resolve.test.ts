import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseImageRef, resolveImage } from './resolve.js';

test('image references', () => {
  assert.deepEqual(parseImageRef('mendhak/http-https-echo:28'), {
    repository: 'mendhak/http-https-echo',
    tag: '28',
  });
  assert.deepEqual(parseImageRef('docker.io/library/busybox:1.36@sha256:abc'), {
    repository: 'busybox',
    tag: '1.36',
  });
  assert.deepEqual(parseImageRef('localhost:5000/curlimages/curl'), {
    repository: 'curlimages/curl',
    tag: 'latest',
  });
});

test('built-in images and the rest', () => {
  const echo = resolveImage({ image: 'mendhak/http-https-echo:28' });
  assert.ok(echo.argv.at(-1)!.endsWith('/src/lab/images/echo-server.ts'));
  assert.equal(echo.env.HTTP_PORT, '8080');
  // kubectl run ... --image=curlimages/curl -- curl http://x : args ["curl", url]
  assert.deepEqual(resolveImage({ image: 'curlimages/curl', args: ['curl', 'http://x'] }).argv, [
    '/usr/bin/curl',
    'http://x',
  ]);
  assert.deepEqual(resolveImage({ image: 'curlimages/curl', args: ['-s', 'http://x'] }).argv, [
    '/usr/bin/curl',
    '-s',
    'http://x',
  ]);
  assert.deepEqual(resolveImage({ image: 'curlimages/curl' }).argv, ['/usr/bin/curl']);
  assert.deepEqual(resolveImage({ image: 'busybox' }).argv, ['/usr/bin/busybox', 'sh']);
  assert.deepEqual(
    resolveImage({ image: 'busybox:1.36', command: ['/bin/sh', '-c'], args: ['echo hi'] }).argv,
    ['/usr/bin/busybox', 'sh', '-c', 'echo hi'],
  );
  assert.deepEqual(resolveImage({ image: 'nginx', command: ['/bin/true'] }).argv, ['/bin/true']);
  assert.throws(
    () => resolveImage({ image: 'nginx:1.25' }),
    (err: Error & { code?: string; hint?: string }) => {
      assert.equal(err.code, 'LAB_IMAGE_NO_COMMAND');
      assert.match(err.message, /image "nginx:1.25" is not available in the lab/);
      assert.match(err.hint!, /busybox/);
      return true;
    },
  );
});

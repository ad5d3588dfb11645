import assert from 'node:assert/strict';
import { test } from 'node:test';
import { podHostname, podHosts, podResolvConf, wrapperArgv } from './runtime.js';

test('resolv.conf names cluster DNS and the namespace search path', () => {
  assert.equal(
    podResolvConf('prod', '10.96.0.10'),
    'search prod.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n',
  );
  assert.match(podHosts('p', '10.244.1.2'), /10\.244\.1\.2\tp\n$/);
  assert.equal(podHostname('a'.repeat(70)), 'a'.repeat(63));
});

test('the wrapper joins the cgroup before nsenter and passes argv as positional parameters', () => {
  const argv = wrapperArgv({
    cgroupDir: '/cg/pod',
    netns: 'tendril-pod-1',
    hostname: 'h',
    resolvConf: '/r',
    hosts: '/h',
    argv: ['sh', '-c', 'echo "$1; rm -rf /"'],
  });
  assert.equal(argv[0], '/bin/sh');
  const script = argv[2]!;
  assert.ok(script.indexOf('echo $$ > "$1"') < script.indexOf('nsenter'));
  assert.match(script, /\/usr\/bin\/nsenter "--net=\$ns" -- \/usr\/bin\/unshare --mount --uts/);
  assert.deepEqual(argv.slice(4), [
    '/cg/pod/cgroup.procs',
    '/run/netns/tendril-pod-1',
    '-',
    'h',
    '/r',
    '/h',
    'sh',
    '-c',
    'echo "$1; rm -rf /"',
  ]);
});

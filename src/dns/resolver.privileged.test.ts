/**
 * Cluster DNS through a real resolver: glibc (getent) in a network namespace
 * whose resolv.conf is a pod's (search <ns>.svc.cluster.local svc.cluster.local
 * cluster.local, ndots:5), so search paths, NXDOMAIN handling and the A/AAAA
 * pairing are exercised as pods exercise them.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { privilegedTest } from '../../test/helpers/privileged.js';

privilegedTest(
  "privileged: glibc resolves service names through cluster DNS with a pod's search path",
  async () => {
    const ns = `tendril-t${process.pid}x-dns`;
    const etcDir = `/etc/netns/${ns}`;
    const madeParent = !existsSync('/etc/netns');
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      // A non-loopback address, as a pod has: getaddrinfo (AI_ADDRCONFIG) answers nothing without one.
      // glibc judges by the address, so it can sit on lo (no extra link to clean up).
      execFileSync('ip', ['-n', ns, 'addr', 'add', '10.244.250.2/32', 'dev', 'lo']);
      mkdirSync(etcDir, { recursive: true });
      writeFileSync(
        `${etcDir}/resolv.conf`,
        'search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 127.0.0.1\noptions ndots:5 timeout:1 attempts:1\n',
      );
      const names = [
        'echo-service-c1',
        'echo-service-c1.default',
        'echo-service-c1.default.svc',
        'echo-service-c1.default.svc.cluster.local',
        'kube-dns.kube-system',
        'nope',
        'nope.default.svc.cluster.local',
      ];
      const out = execFileSync(
        'ip',
        [
          'netns',
          'exec',
          ns,
          process.execPath,
          '--import',
          'tsx',
          'src/dns/testdata/serve-and-resolve.ts',
          ...names,
        ],
        { encoding: 'utf8', timeout: 60_000 },
      );
      const got = JSON.parse(out.trim().split('\n').pop()!) as Record<string, string[] | null>;
      assert.deepEqual(got, {
        'echo-service-c1': ['10.96.123.45'],
        'echo-service-c1.default': ['10.96.123.45'],
        'echo-service-c1.default.svc': ['10.96.123.45'],
        'echo-service-c1.default.svc.cluster.local': ['10.96.123.45'],
        'kube-dns.kube-system': ['10.96.0.10'],
        nope: null,
        'nope.default.svc.cluster.local': null,
      });
    } finally {
      execFileSync('ip', ['netns', 'del', ns]);
      rmSync(etcDir, { recursive: true, force: true });
      if (madeParent && readdirSync('/etc/netns').length === 0) rmdirSync('/etc/netns');
    }
  },
);

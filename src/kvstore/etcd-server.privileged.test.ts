/**
 * startEtcd inside a network namespace (as the clustermesh-apiserver runs in
 * a lab node): the process lives in that namespace and serves there only.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { privilegedTest } from '../../test/helpers/privileged.js';
import { startEtcd } from './etcd-server.js';

privilegedTest('privileged: startEtcd runs etcd inside a network namespace', async () => {
  const ns = `tendril-t${process.pid}x-etcd`;
  const dir = mkdtempSync(join(tmpdir(), 'tendril-etcd-netns-'));
  execFileSync('ip', ['netns', 'add', ns]);
  let srv: Awaited<ReturnType<typeof startEtcd>> | undefined;
  try {
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    srv = await startEtcd({
      name: 'netns',
      dataDir: join(dir, 'data'),
      clientUrls: ['http://127.0.0.1:2379'],
      netns: ns,
      logFile: join(dir, 'etcd.log'),
    });
    // The process is in the namespace...
    const nsInode = statSync(`/run/netns/${ns}`).ino;
    assert.equal(readlinkSync(`/proc/${srv.pid}/ns/net`), `net:[${nsInode}]`);
    // ...and serves there.
    const etcdctl = (...args: string[]) =>
      execFileSync(
        'nsenter',
        [`--net=/run/netns/${ns}`, '--', 'etcdctl', '--endpoints=http://127.0.0.1:2379', ...args],
        { encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' } },
      );
    etcdctl('put', 'k', 'inside');
    assert.equal(etcdctl('get', 'k', '--print-value-only').trim(), 'inside');
  } finally {
    await srv?.stop();
    execFileSync('ip', ['netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  }
});

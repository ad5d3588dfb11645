/**
 * privileged: bindInNetns makes a listener that lives in the other network
 * namespace: a Node server on its fd answers connections made inside that
 * namespace and none from the root namespace at the same address; an address
 * the namespace does not hold is refused with a clear error.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { connect, createServer, type AddressInfo } from 'node:net';
import { after } from 'node:test';
import { privilegedTest } from '../../../test/helpers/privileged.js';
import { bindInNetns } from './netns-listen.js';
import { connectInNetns } from './portforward.js';

const ns = `tendril-nslisten-${process.pid}`;
after(() => {
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  } catch {
    // not made
  }
});

privilegedTest('privileged: a listener bound inside another network namespace', async () => {
  execFileSync('ip', ['netns', 'add', ns]);
  execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  const server = createServer((s) => s.end('hello from the namespace\n'));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ fd: bindInNetns(ns, '127.0.0.1', 0) }, () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    assert.ok(port > 0);
    // inside the namespace: answered
    const sock = await connectInNetns(ns, '127.0.0.1', port);
    let text = '';
    for await (const chunk of sock) text += String(chunk);
    assert.equal(text, 'hello from the namespace\n');
    // from the root namespace, the same address has no listener (unless by chance another process has it)
    const rootErr = await new Promise<string>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        resolve('connected');
      });
      c.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
    assert.equal(rootErr, 'ECONNREFUSED');
    // an address the namespace does not hold
    assert.throws(
      () => bindInNetns(ns, '172.30.250.10', 6443),
      (err: Error & { code?: string; hint?: string }) => {
        assert.equal(err.code, 'APISERVER_LISTEN');
        assert.match(err.message, /172\.30\.250\.10:6443 in network namespace .*EADDRNOTAVAIL/);
        assert.match(err.hint ?? '', /ip -n tendril-nslisten-\d+ addr/);
        return true;
      },
    );
    assert.throws(() => bindInNetns(ns, 'localhost', 1), /not an IPv4 address/);
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LinuxDatapath } from './datapath.js';

test('a datapath that cannot start its parts reports each with a cause and a hint, and does not throw', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-dp-'));
  try {
    const dp = new LinuxDatapath({
      // a namespace that does not exist: routing cannot start (and the host is never touched)
      router: {
        mode: 'native',
        nodeIP: '10.0.0.1',
        podCIDR: '10.1.0.0/24',
        mtu: 1500,
        netns: '/run/netns/tendril-test-no-such-netns',
      },
      // not a bpffs: pinning fails
      bpffsDir: join(dir, 'bpf'),
      cgroupPath: join(dir, 'no-cgroup'),
      socketLB: async () => {
        throw new Error('should not be called without a cgroup');
      },
    });
    await dp.init();
    const byComponent = new Map(dp.problems().map((p) => [p.component, p]));
    assert.ok(byComponent.has('routing'), JSON.stringify(dp.problems()));
    assert.ok(byComponent.has('bpf-maps'), JSON.stringify(dp.problems()));
    assert.match(byComponent.get('socket-lb')!.cause, /cgroup v2 directory .* does not exist/);
    for (const p of dp.problems()) assert.ok(p.hint, `${p.component} has a hint`);
    assert.equal(dp.socketLBAttached(), false);
    // operations of missing parts are no-ops or clear errors, never crashes
    await dp.upsertIPCache({ prefix: '10.1.0.5/32', identity: 65792 });
    await dp.upsertService({
      frontend: { ip: '10.96.0.10', port: 53, protocol: 'UDP' },
      backends: [],
      algorithm: 'random',
    });
    await assert.rejects(
      dp.upsertNodeRoute({ podCIDR: '10.2.0.0/24', nodeIP: '10.0.0.2', clusterId: 1 }),
      /routing unavailable/,
    );
    await dp.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

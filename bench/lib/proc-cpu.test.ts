import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  cpuBetween,
  daemonLabel,
  machineTicks,
  processCpu,
  processCpuS,
  type ProcessCpu,
} from './proc-cpu.js';

describe('proc-cpu', () => {
  it('reads the machine busy and total ticks, growing over time', async () => {
    const a = machineTicks();
    const t = performance.now();
    while (performance.now() - t < 50); // keep a core busy for 50 ms
    const b = machineTicks();
    assert.ok(a.total > 0 && a.busy > 0 && a.busy <= a.total);
    assert.ok(b.busy > a.busy, 'busy ticks grew while this process spun');
  });

  it("reads one process's CPU time in seconds, growing while it works", () => {
    const a = processCpuS(process.pid);
    const t = performance.now();
    while (performance.now() - t < 50); // 50 ms of CPU: at least a few 10 ms ticks
    const b = processCpuS(process.pid);
    assert.ok(b - a >= 0.02 && b - a < 1, `${a} -> ${b}`);
    assert.throws(() => processCpuS(2 ** 30), /ENOENT/);
  });

  it('finds this process with its command line and CPU time', () => {
    const me = processCpu().get(process.pid);
    assert.ok(me, 'this process is listed');
    assert.ok(me.cmdline.includes('node'), me.cmdline);
    assert.ok(me.cpuMs > 0);
  });

  it('reports each process CPU between two snapshots, largest first, leaving out idle and gone ones', () => {
    const row = (pid: number, cpuMs: number): [number, ProcessCpu] => [
      pid,
      { pid, cpuMs, cmdline: `p${pid}` },
    ];
    const before = new Map([row(1, 100), row(2, 50), row(3, 10)]);
    const after = new Map([row(1, 130), row(2, 50), row(4, 5)]);
    assert.deepEqual(
      cpuBetween(before, after).map((r) => [r.pid, r.cpuMs]),
      [
        [1, 30],
        [4, 5],
      ],
    );
  });

  it('names Tendril daemons by cluster, entry point and node', () => {
    const home = '/tmp/tendril-bench-mesh-x';
    assert.equal(
      daemonLabel(
        `/usr/bin/node --import tsx /w/src/agent/main.ts --config-dir ${home}/clusters/cluster2/nodes/cluster2-worker/agent-config --node-name cluster2-worker`,
      ),
      'cluster2 agent cluster2-worker',
    );
    assert.equal(
      daemonLabel(
        `/usr/bin/node --import tsx /w/src/clustermesh/apiserver/main.ts --mesh-dir ${home}/clusters/cluster1/clustermesh`,
      ),
      'cluster1 clustermesh/apiserver',
    );
    assert.equal(
      daemonLabel('etcd --name=clustermesh --data-dir=/dev/shm/tendril-lab-1/clustermesh-etcd'),
      'etcd tendril-lab-1/clustermesh-etcd',
    );
    assert.equal(daemonLabel('/usr/sbin/haproxy -f x'), 'haproxy');
    assert.equal(daemonLabel('anything', 42, 42), 'this benchmark');
  });
});

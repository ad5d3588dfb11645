import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  addDaemon,
  daemonStatus,
  removeDaemon,
  startSupervisor,
  stopSupervisor,
  supervisorPid,
  validateDaemonSpec,
  waitDaemonRunning,
  type DaemonSpec,
} from './daemons.js';
import { isAlive, sleep } from './proc.js';

test('validateDaemonSpec names the bad field', () => {
  assert.throws(
    () => validateDaemonSpec({ name: 'Bad Name', command: ['x'], restart: 'always' }),
    /name must match/,
  );
  assert.throws(
    () => validateDaemonSpec({ name: 'a', command: [], restart: 'always' }),
    /command must be/,
  );
  assert.throws(
    () => validateDaemonSpec({ name: 'a', command: ['x'], restart: 'sometimes' as never }),
    /restart must be/,
  );
  assert.throws(
    () => validateDaemonSpec({ name: 'a', command: ['x'], restart: 'never', cwd: 'rel' }),
    /cwd must be an absolute/,
  );
  validateDaemonSpec({
    name: 'kubelet-c1-worker',
    command: ['/bin/true'],
    restart: 'never',
    netns: 'tendril-c1-worker',
  });
});

test('supervisor runs, restarts, reloads and stops daemons', { timeout: 60_000 }, async () => {
  const home = mkdtempSync(join(tmpdir(), 'tendril-sup-'));
  const saved = process.env.TENDRIL_HOME;
  process.env.TENDRIL_HOME = home;
  const cluster = 'c1';
  let supPid: number | undefined;
  try {
    supPid = await startSupervisor(cluster);
    assert.equal(supervisorPid(cluster), supPid);
    const spec: DaemonSpec = {
      name: 'sleeper',
      command: ['/bin/sh', '-c', 'echo hello $FOO; exec sleep 300'],
      env: { FOO: 'bar' },
      restart: 'always',
      stopTimeoutMs: 1000,
    };
    addDaemon(cluster, spec);
    const st = await waitDaemonRunning(cluster, 'sleeper', 10_000);
    assert.ok(st.pid);
    assert.equal(
      readFileSync(join(home, 'clusters', cluster, 'pids', 'sleeper.pid'), 'utf8').trim(),
      String(st.pid),
    );
    // killed -> restarted, counted
    process.kill(st.pid!, 'SIGKILL');
    const deadline = Date.now() + 10_000;
    let again = daemonStatus(cluster)[0]!;
    while (!(again.running && again.pid !== st.pid) && Date.now() < deadline) {
      await sleep(50);
      again = daemonStatus(cluster)[0]!;
    }
    assert.ok(again.running, 'restarted');
    assert.equal(again.restarts, 1);
    assert.equal(again.lastExit?.signal, 'SIGKILL');
    assert.match(readFileSync(again.logPath, 'utf8'), /hello bar/);
    // a one-shot daemon with restart never finishes
    addDaemon(cluster, { name: 'oneshot', command: ['/bin/sh', '-c', 'exit 3'], restart: 'never' });
    const d2 = Date.now() + 10_000;
    let one = daemonStatus(cluster).find((d) => d.name === 'oneshot');
    while (!one?.finished && Date.now() < d2) {
      await sleep(50);
      one = daemonStatus(cluster).find((d) => d.name === 'oneshot');
    }
    assert.equal(one?.lastExit?.code, 3);
    assert.equal(one?.running, false);
    // removed -> stopped
    await removeDaemon(cluster, 'sleeper', { wait: true, timeoutMs: 10_000 });
    assert.equal(isAlive(again.pid), false);
    assert.deepEqual(
      daemonStatus(cluster).map((d) => d.name),
      ['oneshot'],
    );
    // a daemon that ignores SIGTERM is killed after stopTimeoutMs when the supervisor stops
    writeFileSync(join(home, 'stubborn.sh'), 'trap "" TERM; while :; do sleep 1; done\n');
    addDaemon(cluster, {
      name: 'stubborn',
      command: ['/bin/sh', join(home, 'stubborn.sh')],
      restart: 'always',
      stopTimeoutMs: 300,
    });
    const s = await waitDaemonRunning(cluster, 'stubborn', 10_000);
    await stopSupervisor(cluster);
    assert.equal(isAlive(s.pid), false);
    assert.equal(isAlive(supPid), false);
  } finally {
    if (supPid && isAlive(supPid)) await stopSupervisor(cluster);
    for (const d of daemonStatus(cluster)) if (d.pid) process.kill(d.pid, 'SIGKILL');
    if (saved === undefined) delete process.env.TENDRIL_HOME;
    else process.env.TENDRIL_HOME = saved;
    rmSync(home, { recursive: true, force: true });
  }
});

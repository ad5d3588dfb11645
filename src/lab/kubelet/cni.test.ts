import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  CniError,
  cniAdd,
  cniDel,
  cniEnv,
  loadNetworkConfig,
  pluginStdin,
  resultPodIPs,
  type CniPodRef,
} from './cni.js';

const pod: CniPodRef = {
  containerId: 'u-1',
  netnsPath: '/run/netns/tendril-pod-u1',
  ifName: 'eth0',
  namespace: 'default',
  name: 'echo',
  uid: 'u-1',
};

test('CNI environment as a kubelet sets it', () => {
  assert.deepEqual(cniEnv('ADD', pod, '/x/bin'), {
    CNI_COMMAND: 'ADD',
    CNI_CONTAINERID: 'u-1',
    CNI_NETNS: '/run/netns/tendril-pod-u1',
    CNI_IFNAME: 'eth0',
    CNI_ARGS:
      'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=echo;K8S_POD_INFRA_CONTAINER_ID=u-1;K8S_POD_UID=u-1',
    CNI_PATH: '/x/bin',
  });
});

test('config discovery: first *.conflist/*.conf lexicographically; a .conf becomes a list of one', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-cni-'));
  try {
    assert.equal(loadNetworkConfig(dir), undefined);
    assert.equal(loadNetworkConfig(join(dir, 'missing')), undefined);
    writeFileSync(
      join(dir, '20-b.conflist'),
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'b',
        plugins: [{ type: 'x' }, { type: 'y', k: 1 }],
      }),
    );
    writeFileSync(join(dir, 'README'), 'not a config');
    assert.deepEqual(
      loadNetworkConfig(dir)!.plugins.map((p) => p.type),
      ['x', 'y'],
    );
    writeFileSync(
      join(dir, '10-a.conf'),
      JSON.stringify({ cniVersion: '0.4.0', name: 'a', type: 'tendril', ipam: {} }),
    );
    const a = loadNetworkConfig(dir)!;
    assert.equal(a.name, 'a');
    assert.equal(a.cniVersion, '0.4.0');
    assert.deepEqual(a.plugins, [{ type: 'tendril', ipam: {} }]);
    writeFileSync(join(dir, '05-bad.conflist'), '{');
    assert.throws(() => loadNetworkConfig(dir), /is not JSON/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('plugin stdin: name and cniVersion injected, prevResult chained', () => {
  const list = { cniVersion: '1.0.0', name: 'net', plugins: [{ type: 'a', mtu: 1400 }], file: 'f' };
  assert.deepEqual(pluginStdin(list, list.plugins[0]!), {
    type: 'a',
    mtu: 1400,
    cniVersion: '1.0.0',
    name: 'net',
  });
  const prev = { cniVersion: '1.0.0', ips: [{ address: '10.244.1.5/24' }] };
  assert.deepEqual(pluginStdin(list, list.plugins[0]!, prev).prevResult, prev);
  assert.deepEqual(resultPodIPs(prev), ['10.244.1.5']);
});

test('plugins run in order for ADD (prevResult chained), reverse for DEL; errors carry code and msg', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-cni-'));
  try {
    const log = join(dir, 'log');
    // a plugin that records its env and stdin, and answers with a result naming itself
    const script = (name: string) =>
      `#!/bin/sh\nin=$(cat)\necho "${name} $CNI_COMMAND $CNI_IFNAME $in" >> ${log}\n` +
      `[ "$CNI_COMMAND" = ADD ] && echo '{"cniVersion":"1.0.0","ips":[{"address":"10.244.1.${name === 'p1' ? 7 : 8}/24"}]}'\nexit 0\n`;
    for (const n of ['p1', 'p2']) {
      writeFileSync(join(dir, n), script(n));
      chmodSync(join(dir, n), 0o755);
    }
    writeFileSync(
      join(dir, 'bad'),
      '#!/bin/sh\ncat >/dev/null\necho \'{"cniVersion":"1.0.0","code":7,"msg":"invalid network config","details":"no subnet"}\'\nexit 1\n',
    );
    chmodSync(join(dir, 'bad'), 0o755);
    const list = {
      cniVersion: '1.0.0',
      name: 'net',
      plugins: [{ type: 'p1' }, { type: 'p2' }],
      file: 'f',
    };
    const r = await cniAdd(list, pod, dir);
    assert.deepEqual(resultPodIPs(r), ['10.244.1.8']);
    await cniDel(list, pod, dir, r);
    const lines = (await import('node:fs')).readFileSync(log, 'utf8').trim().split('\n');
    assert.equal(lines.length, 4);
    assert.match(lines[0]!, /^p1 ADD eth0 \{"type":"p1","cniVersion":"1.0.0","name":"net"\}$/);
    assert.match(
      lines[1]!,
      /^p2 ADD eth0 .*"prevResult":\{"cniVersion":"1.0.0","ips":\[\{"address":"10.244.1.7\/24"\}\]\}/,
    );
    assert.match(lines[2]!, /^p2 DEL /);
    assert.match(lines[3]!, /^p1 DEL .*"prevResult":.*10.244.1.8/);
    await assert.rejects(
      cniAdd({ ...list, plugins: [{ type: 'bad' }] }, pod, dir),
      (err: CniError) => {
        assert.equal(err.cniCode, 7);
        assert.equal(err.msg, 'invalid network config');
        assert.equal(err.details, 'no subnet');
        return true;
      },
    );
    await assert.rejects(
      cniAdd({ ...list, plugins: [{ type: 'nope' }] }, pod, dir),
      /failed to find plugin "nope"/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

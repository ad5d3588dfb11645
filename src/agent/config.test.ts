import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentConfigFromFile } from './config.js';

test('agent config file (a real node): required fields, derived pod MTU, clear errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-agentcfg-'));
  try {
    const f = join(dir, 'agent.json');
    const base = {
      node: 'node-a',
      nodeIP: '192.168.1.10',
      podCIDR: '10.244.3.0/24',
      stateDir: '/var/lib/tendril/agent',
      socketPath: '/var/run/tendril/agent.sock',
      bpffsDir: '/sys/fs/bpf/tendril',
      cgroupPath: '/sys/fs/cgroup/kubepods',
      apiServerURL: 'https://10.0.0.1:6443',
    };
    writeFileSync(
      f,
      JSON.stringify({
        ...base,
        routingMode: 'tunnel',
        mtu: 9000,
        clusterName: 'prod',
        clusterId: 3,
      }),
    );
    const c = agentConfigFromFile(f);
    assert.equal(c.podMtu, 8950);
    assert.equal(c.clusterId, 3);
    assert.equal(c.lbAlgorithm, 'random');
    writeFileSync(f, JSON.stringify({ ...base, podCIDR: undefined }));
    assert.throws(() => agentConfigFromFile(f), /"podCIDR" is required/);
    writeFileSync(f, '{');
    assert.throws(() => agentConfigFromFile(f), /read agent config/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentConfigFromDir, agentConfigFromFile, completeFromNode } from './config.js';
import { writeConfigDir } from '../util/config-dir.js';

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

test("agent config dir (cilium-config's shape): cluster keys, node name, address and pod CIDR from the Node", () => {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-agentcfgdir-'));
  try {
    writeConfigDir(dir, {
      'cluster-name': 'prod',
      'cluster-id': '4',
      'routing-mode': 'tunnel',
      mtu: '1500',
      'bpf-root': '/sys/fs/bpf/tendril',
      'cgroup-root': '/sys/fs/cgroup/kubepods',
      'state-dir': '/var/lib/tendril/agent',
      'socket-path': '/var/run/tendril/agent.sock',
    });
    const partial = agentConfigFromDir(dir, { nodeName: 'n1', apiServerURL: 'http://h:6443' });
    assert.equal(partial.node, 'n1');
    assert.equal(partial.clusterId, 4);
    assert.equal(partial.podMtu, 1450);
    assert.equal(partial.nodeIP, undefined);
    const cfg = completeFromNode(partial, {
      spec: { podCIDR: '10.1.2.0/24' },
      status: { addresses: [{ type: 'InternalIP', address: '172.30.4.11' }] },
    });
    assert.equal(cfg.nodeIP, '172.30.4.11');
    assert.equal(cfg.podCIDR, '10.1.2.0/24');
    assert.equal(
      Object.keys(cfg).some((k) => /lab/i.test(k)),
      false,
      'no lab field',
    );
    assert.throws(() => completeFromNode(partial, {}), /has no InternalIP/);
    const saved = process.env.K8S_NODE_NAME;
    delete process.env.K8S_NODE_NAME;
    try {
      assert.throws(() => agentConfigFromDir(dir), /which node is this/);
    } finally {
      if (saved !== undefined) process.env.K8S_NODE_NAME = saved;
    }
    writeConfigDir(dir, { 'cluster-name': 'prod' });
    assert.throws(() => agentConfigFromDir(dir, { nodeName: 'n1' }), /"cluster-id" is missing/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

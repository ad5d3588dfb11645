import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCniArgs, parseCniEnv, parseNetConf } from './args.js';
import { pendingReleaseDir, runPlugin, type PluginAgent, type PluginNet } from './plugin.js';
import { AgentUnreachableError } from '../api/client.js';
import type { EndpointInfo, EndpointRegistration } from '../api/types.js';

const baseEnv = {
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: 'uid-1234',
  CNI_NETNS: '/run/netns/tendril-pod-x',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin',
  CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=echo-1;K8S_POD_UID=uid-1234',
};
const conf = (sock = '/tmp/agent.sock') =>
  JSON.stringify({
    cniVersion: '1.0.0',
    name: 'tendril',
    type: 'tendril-cni',
    agentSocket: sock,
    mtu: 1500,
  });

test('CNI_ARGS and env parsing', () => {
  assert.deepEqual(parseCniArgs('A=1;B=x=y'), { A: '1', B: 'x=y' });
  assert.throws(() => parseCniArgs('nope'), /expected KEY=VALUE/);
  const e = parseCniEnv(baseEnv);
  assert.equal(e.command, 'ADD');
  assert.equal(e.args.K8S_POD_NAME, 'echo-1');
  assert.throws(() => parseCniEnv({ ...baseEnv, CNI_NETNS: '' }), /CNI_NETNS is required for ADD/);
  assert.equal(parseCniEnv({ ...baseEnv, CNI_COMMAND: 'DEL', CNI_NETNS: '' }).netns, '');
  assert.throws(
    () => parseCniEnv({ ...baseEnv, CNI_COMMAND: 'BOGUS' }),
    /not one of ADD, DEL, CHECK, VERSION/,
  );
  assert.throws(
    () => parseCniEnv({ ...baseEnv, CNI_IFNAME: 'x'.repeat(16) }),
    /not a valid interface name/,
  );
});

test('network config parsing: required fields, versions', () => {
  assert.equal(parseNetConf(conf()).agentSocket, '/tmp/agent.sock');
  assert.throws(() => parseNetConf('{'), /not JSON/);
  assert.throws(
    () => parseNetConf(JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 't' })),
    /"agentSocket" must be/,
  );
  assert.throws(
    () =>
      parseNetConf(JSON.stringify({ cniVersion: '9.9.9', name: 'n', type: 't', agentSocket: 's' })),
    /unsupported cniVersion/,
  );
  assert.throws(
    () =>
      parseNetConf(
        JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 't', agentSocket: 's', mtu: 10 }),
      ),
    /"mtu"/,
  );
});

function fakes() {
  const calls: string[] = [];
  const endpoints = new Map<string, EndpointInfo>();
  const agent: PluginAgent = {
    async allocate(req) {
      calls.push(`allocate ${req.containerId} ${req.podNamespace}/${req.podName}`);
      return {
        ip: '10.244.1.7',
        prefixLength: 32,
        gateway: '169.254.1.1',
        mtu: 1450,
        hostIfName: 'lxcabc',
        podCIDR: '10.244.1.0/24',
      };
    },
    async registerEndpoint(reg: EndpointRegistration) {
      calls.push(`register ${reg.containerId} ${reg.ip} ${reg.hostIfName}`);
      const info: EndpointInfo = {
        ...reg,
        id: 1,
        identity: 0,
        labels: {},
        state: 'waiting-for-identity',
        createdAt: '',
      };
      endpoints.set(reg.containerId, info);
      return info;
    },
    async deleteEndpoint(id) {
      calls.push(`delete ${id}`);
      endpoints.delete(id);
    },
    async getEndpoint(id) {
      const ep = endpoints.get(id);
      if (!ep) throw new Error('not found');
      return ep;
    },
  };
  const net: PluginNet = {
    async setup(spec) {
      calls.push(`setup ${spec.hostIfName} ${spec.podIfName} ${spec.ip} mtu=${spec.mtu}`);
      return { hostMac: 'aa:aa:aa:aa:aa:aa', podMac: 'bb:bb:bb:bb:bb:bb' };
    },
    async teardown(name) {
      calls.push(`teardown ${name}`);
    },
    async check() {},
  };
  return { calls, agent, net };
}

test('ADD prints a CNI 1.0 result and registers the endpoint', async () => {
  const f = fakes();
  const out = await runPlugin(baseEnv, conf(), { agent: () => f.agent, net: f.net });
  assert.equal(out.exitCode, 0, out.stdout);
  const r = JSON.parse(out.stdout);
  assert.equal(r.cniVersion, '1.0.0');
  assert.deepEqual(r.ips, [{ address: '10.244.1.7/32', gateway: '169.254.1.1', interface: 1 }]);
  assert.equal(r.interfaces[1].name, 'eth0');
  assert.equal(r.interfaces[1].sandbox, '/run/netns/tendril-pod-x');
  assert.equal(r.interfaces[0].name, 'lxcabc');
  assert.deepEqual(r.routes, [{ dst: '0.0.0.0/0', gw: '169.254.1.1' }]);
  assert.deepEqual(f.calls, [
    'allocate uid-1234 default/echo-1',
    'setup lxcabc eth0 10.244.1.7 mtu=1450',
    'register uid-1234 10.244.1.7 lxcabc',
  ]);
  const chk = await runPlugin(
    { ...baseEnv, CNI_COMMAND: 'CHECK' },
    JSON.stringify({ ...JSON.parse(conf()), prevResult: r }),
    { agent: () => f.agent, net: f.net },
  );
  assert.equal(chk.exitCode, 0, chk.stdout);
});

test('ADD undoes the veth and the address when registration fails', async () => {
  const f = fakes();
  f.agent.registerEndpoint = async () => {
    throw new AgentUnreachableError('/tmp/x.sock', new Error('ECONNREFUSED'));
  };
  const out = await runPlugin(baseEnv, conf(), { agent: () => f.agent, net: f.net });
  assert.equal(out.exitCode, 1);
  const err = JSON.parse(out.stdout);
  assert.equal(err.code, 100);
  assert.match(err.msg, /agent is unreachable/);
  assert.ok(f.calls.includes('teardown lxcabc'));
  assert.ok(f.calls.includes('delete uid-1234'));
});

test('VERSION and errors are CNI objects', async () => {
  const v = await runPlugin({ CNI_COMMAND: 'VERSION' }, '');
  assert.deepEqual(JSON.parse(v.stdout).supportedVersions, ['0.3.0', '0.3.1', '0.4.0', '1.0.0']);
  const bad = await runPlugin({ ...baseEnv, CNI_CONTAINERID: '' }, conf());
  assert.equal(bad.exitCode, 1);
  assert.equal(JSON.parse(bad.stdout).code, 4);
});

test('DEL with the agent down queues the release and succeeds', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tendril-cni-'));
  try {
    const f = fakes();
    f.agent.deleteEndpoint = async () => {
      throw new AgentUnreachableError('/x', new Error('ENOENT'));
    };
    const sock = join(dir, 'agent.sock');
    const out = await runPlugin({ ...baseEnv, CNI_COMMAND: 'DEL' }, conf(sock), {
      agent: () => f.agent,
      net: f.net,
    });
    assert.equal(out.exitCode, 0, out.stdout);
    assert.equal(readdirSync(pendingReleaseDir(sock)).length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

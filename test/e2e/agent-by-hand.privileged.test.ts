/**
 * An agent started by hand, as on any Kubernetes node: a config directory
 * (one file per key, cilium-config's shape), a kubeconfig and a clustermesh
 * config directory (Cilium's clustermesh-config shape), all written here by
 * the test, none naming a lab cluster. On a node of cluster2 of a meshed pair
 * (the lab's own agent of that node stopped), it must join the mesh: its
 * pinned BPF ipcache gets cluster1's pod with cluster1's identity, and it
 * drops cluster1's entries when its clustermesh config no longer names it.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { privilegedTest } from '../helpers/privileged.js';
import { cliOk, createMeshedPair, ROOT, teardownLab, until, useUniqueLab } from './lab-fixture.js';

const lab = useUniqueLab('hand');

const { KubeClient } = await import('../../src/k8s/client.js');
const { apiServerURL, apiServerNodeURL } = await import('../../src/lab/state.js');
const { nodeBpffsDir, nodeCgroup } = await import('../../src/lab/layout.js');
const { daemonKubeconfigPath: pkiKubeconfigPath, pkiPaths } = await import('../../src/lab/pki.js');
const { netnsPath } = await import('../../src/lab/netns.js');
const { removeDaemon, tsxLoaderURL } = await import('../../src/lab/daemons.js');
const { agentDaemonName } = await import('../../src/install/install.js');
const { meshPaths, readMeshConfig } = await import('../../src/clustermesh/mesh-files.js');
const { AgentClient } = await import('../../src/agent/api/client.js');
const { openPinnedIPCache, keyToPrefix } = await import('../../src/datapath/linux/maps.js');

const ECHO = `apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, labels: {app: echo}}
spec:
  replicas: 1
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      containers: [{name: echo, image: mendhak/http-https-echo:28, ports: [{containerPort: 8080}]}]
`;

/**
 * The BPF ipcache pinned under BPF_ROOT, as prefix -> identity. Opens the
 * agent's pin (absent: throws, and `until` tries again); it never creates
 * one, which would race the agent's own start.
 */
function pinnedIPCache(bpfRoot: string): Map<string, number> {
  const m = openPinnedIPCache(bpfRoot);
  try {
    return new Map([...m.entries()].map(([k, v]) => [keyToPrefix(k), v.identity]));
  } finally {
    m.close();
  }
}

privilegedTest(
  'privileged: an agent started by hand from a config dir and a kubeconfig joins the mesh',
  async () => {
    let agent: ChildProcess | undefined;
    let cgroup: string | undefined;
    const log = join(lab.home, 'hand-agent.log');
    try {
      const { c1, c2 } = await createMeshedPair();
      await cliOk(['--context', 'lab-cluster1', 'apply', '-f', '-'], { input: ECHO });
      const k1 = new KubeClient({ server: apiServerURL(c1) });
      type Pod = { status?: { phase?: string; podIP?: string } };
      const podIP = await until(
        'the echo pod of cluster1 runs',
        async () => {
          const pods = (await k1.list('v1', 'Pod', { namespace: 'default' })).items as Pod[];
          return pods.find((p) => p.status?.phase === 'Running' && p.status.podIP)?.status?.podIP;
        },
        90_000,
      );
      k1.close();

      // cluster2's worker: stop the lab's agent, start ours by hand
      const node = c2.nodes.find((n) => n.role !== 'control-plane')!;
      await removeDaemon('cluster2', agentDaemonName(node.name), { wait: true, timeoutMs: 20_000 });
      const dir = join(lab.home, 'hand');
      const bpfRoot = join(nodeBpffsDir('cluster2', node.name), 'hand');
      cgroup = join(nodeCgroup('cluster2', node.name), 'hand');
      mkdirSync(cgroup, { recursive: true });
      const configDir = join(dir, 'config');
      mkdirSync(configDir, { recursive: true });
      const settings: Record<string, string> = {
        'cluster-name': 'cluster2',
        'cluster-id': '2',
        'routing-mode': 'native',
        'bpf-root': bpfRoot,
        'cgroup-root': cgroup,
        'state-dir': join(dir, 'state'),
        'socket-path': join(dir, 'agent.sock'),
      };
      for (const [k, v] of Object.entries(settings)) writeFileSync(join(configDir, k), v + '\n');
      // the API server as a real node reaches it: https, the cluster's CA in a file, the
      // agent's service-account token in a file (issued by the lab's PKI; kubectl's file forms)
      const caFile = join(dir, 'ca.crt');
      writeFileSync(caFile, readFileSync(pkiPaths('cluster2').caCert));
      const tokenFile = join(dir, 'token');
      const issued = parse(
        readFileSync(pkiKubeconfigPath('cluster2', `agent-${node.name}`), 'utf8'),
      ) as { users: { user: { token: string } }[] };
      writeFileSync(tokenFile, issued.users[0]!.user.token + '\n', { mode: 0o600 });
      const kubeconfig = join(dir, 'kubeconfig');
      writeFileSync(
        kubeconfig,
        [
          'apiVersion: v1',
          'kind: Config',
          'current-context: node',
          `clusters: [{name: c, cluster: {server: "${apiServerNodeURL(c2)}", certificate-authority: "${caFile}"}}]`,
          `users: [{name: agent, user: {tokenFile: "${tokenFile}"}}]`,
          'contexts: [{name: node, context: {cluster: c, user: agent}}]',
        ].join('\n') + '\n',
      );
      // one etcd config per remote cluster; with kvstoremesh it names cluster2's own etcd
      const mesh2 = readMeshConfig('cluster2')!;
      const p2 = meshPaths('cluster2');
      const meshDir = join(dir, 'clustermesh');
      mkdirSync(meshDir, { recursive: true });
      writeFileSync(
        join(meshDir, 'cluster1'),
        [
          'endpoints:',
          `- https://${mesh2.listenIP}:2379`,
          `trusted-ca-file: ${p2.caCert}`,
          `cert-file: ${p2.agentCert}`,
          `key-file: ${p2.agentKey}`,
        ].join('\n') + '\n',
      );
      const argv = [
        '--config-dir',
        configDir,
        '--kubeconfig',
        kubeconfig,
        '--clustermesh-config',
        meshDir,
        '--node-name',
        node.name,
      ];
      assert.match(apiServerNodeURL(c2), /^https:/, 'the lab API server speaks https to the nodes');
      for (const f of [configDir, kubeconfig, caFile, tokenFile, meshDir])
        assert.doesNotMatch(f, /clusters\//, 'nothing the agent reads is in the lab state');
      const out = openSync(log, 'a');
      agent = spawn(
        'nsenter',
        [
          `--net=${netnsPath(node.netns)}`,
          process.execPath,
          '--import',
          tsxLoaderURL(),
          join(ROOT, 'src/agent/main.ts'),
          ...argv,
        ],
        { stdio: ['ignore', out, out], env: { ...process.env, TENDRIL_LOG_LEVEL: 'info' } },
      );
      const client = new AgentClient(settings['socket-path']!, { timeoutMs: 2000 });
      const st = await until(
        'the agent answers',
        () => client.status().catch(() => undefined),
        60_000,
      );
      assert.equal(st.nodeIP, node.ip, 'node address from its Node object');
      assert.equal(st.podCIDR, node.podCIDR, 'pod CIDR from its Node object');
      assert.equal(st.clusterId, 2);
      const want = `${podIP}/32`;
      const identity = await until(
        `cluster1's pod ${podIP} in the hand agent's pinned ipcache`,
        () => pinnedIPCache(bpfRoot).get(want),
        90_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\nagent log:\n${readFileSync(log, 'utf8').slice(-3000)}`);
      });
      assert.equal((identity >> 16) & 0xff, 1, `identity ${identity} carries cluster ID 1`);
      // the remote's node is routed to as well
      assert.ok((await client.status()).counts.remoteNodes >= 1, 'remote nodes known');

      // the clustermesh config no longer names cluster1: its entries go
      rmSync(join(meshDir, 'cluster1'));
      await until(
        "cluster1's entries leave the pinned ipcache",
        () => !pinnedIPCache(bpfRoot).has(want),
        30_000,
      );
    } finally {
      if (agent?.pid && agent.exitCode === null) {
        agent.kill('SIGTERM');
        await new Promise((r) => agent!.once('exit', r));
      }
      if (cgroup) {
        try {
          rmdirSync(cgroup);
        } catch {
          // the lab's teardown removes the node's cgroup tree
        }
      }
      await teardownLab(lab);
    }
  },
  { timeout: 600_000 },
);

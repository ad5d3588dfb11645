/**
 * The node agent daemon, configured like Cilium's. Run inside the node's
 * network namespace:
 *
 *   node --import tsx src/agent/main.ts --config-dir DIR --kubeconfig FILE \
 *        [--clustermesh-config DIR] [--node-name NAME]
 *   node --import tsx src/agent/main.ts --config /path/agent.json      (no API server: tests)
 *
 * --config-dir: one file per setting (config.ts, AGENT_CONFIG_KEYS);
 * --kubeconfig: where the API server is (its Node object gives the node's
 * address and pod CIDR); --clustermesh-config: one etcd config per remote
 * cluster (Cilium's clustermesh-config shape): whenever it names a remote,
 * the agent follows the mesh.
 *
 * Serves CNI and status on its Unix socket, watches the API server (when it
 * has one), and drives the Linux datapath. SIGTERM stops it and leaves the
 * kernel state (pinned maps, links, routes) in place for the next start.
 */
import { DEFAULT_EVENTS_RING_BYTES } from '../datapath/linux/events.js';
import { parseArgs } from 'node:util';
import { createLogger } from '../util/log.js';
import { describeError } from '../util/errors.js';
import { Agent } from './agent.js';
import { serveAgentApi } from './api/server.js';
import {
  agentConfigFromDir,
  agentConfigFromFile,
  completeFromNode,
  type AgentFileConfig,
} from './config.js';
import { KubeClient } from '../k8s/client.js';
import { kubeconfigClientOptions } from '../k8s/client-config.js';
import type { KubeClientOptions } from '../k8s/client.js';
import { TendrilError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { LinuxDatapath } from '../datapath/linux/datapath.js';
import { FakeDatapath } from '../datapath/fake.js';
import { VXLAN_OVERHEAD } from '../datapath/linux/routes.js';
import { loadSocketLBFactory } from './socket-lb.js';
import { startK8sSources } from './k8s/sources.js';
import { MeshSource } from './mesh-source.js';
import { readConfigDir } from '../util/config-dir.js';
import { startAgentMetrics } from './metrics.js';
import { startNodeObserver } from '../observe/agent-hubble.js';

const { values } = parseArgs({
  options: {
    'config-dir': { type: 'string' },
    kubeconfig: { type: 'string' },
    'clustermesh-config': { type: 'string' },
    'node-name': { type: 'string' },
    config: { type: 'string' },
    'fake-datapath': { type: 'boolean', default: false },
  },
});

const log = createLogger({ daemon: 'agent' });

async function main(): Promise<void> {
  let cfg: AgentFileConfig;
  if (values.config) cfg = agentConfigFromFile(values.config);
  else if (values['config-dir']) {
    const kc = values.kubeconfig ? kubeconfigClientOptions({ path: values.kubeconfig }) : undefined;
    const partial = agentConfigFromDir(values['config-dir'], {
      ...(values['node-name'] ? { nodeName: values['node-name'] } : {}),
      ...(kc ? { apiServerURL: kc.server } : {}),
    });
    if (kc) partial.apiAuth = kc;
    cfg =
      partial.nodeIP && partial.podCIDR
        ? { ...partial, nodeIP: partial.nodeIP, podCIDR: partial.podCIDR }
        : kc
          ? completeFromNode(partial, await readOwnNode(kc, partial.node, log))
          : completeFromNode(partial, {});
  } else
    throw new TendrilError('AGENT_USAGE', 'agent: say where its settings are', {
      hint: 'usage: agent --config-dir DIR --kubeconfig FILE [--clustermesh-config DIR] [--node-name NAME] | --config FILE',
    });
  const logger = log.child({ node: cfg.node });
  const datapath = values['fake-datapath']
    ? new FakeDatapath()
    : new LinuxDatapath({
        router: {
          mode: cfg.routingMode,
          nodeIP: cfg.nodeIP,
          podCIDR: cfg.podCIDR,
          mtu: cfg.mtu ?? cfg.podMtu + (cfg.routingMode === 'tunnel' ? VXLAN_OVERHEAD : 0),
        },
        bpffsDir: cfg.bpffsDir,
        cgroupPath: cfg.cgroupPath,
        ...(cfg.ipcacheMapMax ? { mapSizes: { ipcache: cfg.ipcacheMapMax } } : {}),
        logger,
        ...(cfg.hubble?.enabled !== false
          ? { events: { ringBytes: cfg.hubble?.eventsRingBytes ?? DEFAULT_EVENTS_RING_BYTES } }
          : {}),
        ...(await loadSocketLBFactory(logger).then((f) => (f ? { socketLB: f } : {}))),
      });
  const extras =
    datapath instanceof LinuxDatapath
      ? {
          listNodeRoutes: () => datapath.router.list(),
        }
      : {};
  const k8s = cfg.apiServerURL ? await startK8sSources.prepare(cfg, logger) : undefined;
  const agent = new Agent(cfg, {
    datapath: Object.assign(datapath, extras),
    datapathName: values['fake-datapath'] ? 'fake' : 'linux',
    logger,
    ...(k8s?.deps ?? {}),
  });
  const server = await serveAgentApi(agent, cfg.socketPath, logger);
  // Metrics (config-dir keys prometheus-serve-addr, default :9962, and hubble-metrics-server,
  // default :9965; "" turns one off). Not with --config (tests run many agents).
  const metricsDir = values['config-dir'] ? readConfigDir(values['config-dir']) : undefined;
  const metrics = metricsDir
    ? await startAgentMetrics(
        agent,
        {
          prometheusServeAddr: metricsDir.get('prometheus-serve-addr') ?? ':9962',
          hubbleMetricsServer: metricsDir.get('hubble-metrics-server') ?? ':9965',
        },
        agent.flows,
      ).catch((err: unknown) => {
        agent.setProblem('metrics', {
          cause: `cannot serve metrics: ${describeError(err)}`,
          hint: 'set prometheus-serve-addr / hubble-metrics-server to a free port, or "" to turn them off',
        });
        return undefined;
      })
    : undefined;
  const hubble = await startNodeObserver(cfg.hubble, {
    source: agent.flows,
    nodeName: cfg.node,
    logger,
    // a bad certificate file shows in `tendril status` as well as in the log
    onTLSProblem: (p) => agent.setProblem('hubble-tls', p),
  });
  // With a mesh source, adopted remote state waits for it (MeshSource calls agent.meshSynced()).
  await agent.start({
    waitFor: k8s ? k8s.syncNames : [],
    waitForMesh: Boolean(values['clustermesh-config'] && k8s),
  });
  if (cfg.staticNodes) agent.setNodes('local', cfg.staticNodes);
  const started = k8s ? await k8s.start(agent) : undefined;
  const meshConfig = values['clustermesh-config'];
  const mesh =
    meshConfig && started
      ? new MeshSource({
          configDir: meshConfig,
          clusterName: cfg.clusterName,
          agent,
          setRemoteServices: (l) => started.setRemoteServices(l),
          setRemoteExports: (l) => started.setRemoteExports(l),
          onPropagated: (s) => metrics?.agent.observePropagation(s),
          logger,
        })
      : undefined;
  mesh?.start();
  metrics?.agent.setRemoteClusters(mesh ? () => mesh.remoteClusters() : undefined);
  logger.info('agent running', {
    socket: cfg.socketPath,
    podCIDR: cfg.podCIDR,
    routingMode: cfg.routingMode,
    problems: agent.status().problems.length,
  });

  let stopping = false;
  const stop = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping (kernel state stays pinned)', { signal: sig });
    server.close();
    server.closeAllConnections();
    await hubble?.close();
    await mesh?.stop();
    await metrics?.close();
    await started?.stop();
    await agent.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

/**
 * Reads the agent's own Node object, retrying with backoff while the API
 * server is unreachable or the kubelet has not registered the node yet.
 */
async function readOwnNode(
  auth: KubeClientOptions,
  node: string,
  logger: Logger,
): Promise<Parameters<typeof completeFromNode>[1]> {
  const server = auth.server;
  const kube = new KubeClient({ ...auth, timeoutMs: 10_000 });
  try {
    for (let delay = 250; ; delay = Math.min(delay * 2, 5000)) {
      try {
        return (await kube.get('v1', 'Node', node)) as Parameters<typeof completeFromNode>[1];
      } catch (err) {
        logger.warn('cannot read this node from the API server yet; retrying', {
          node,
          server,
          error: describeError(err),
        });
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  } finally {
    kube.close();
  }
}

main().catch((err) => {
  log.error('agent failed to start', { error: describeError(err) });
  process.exit(1);
});

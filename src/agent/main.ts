/**
 * The node agent daemon. Run inside the node's network namespace:
 *
 *   node --import tsx src/agent/main.ts --cluster <lab cluster> --node <node>
 *   node --import tsx src/agent/main.ts --config /path/agent.json      (no lab)
 *
 * Serves CNI and status on its Unix socket, watches the API server (when it
 * has one), and drives the Linux datapath. SIGTERM stops it and leaves the
 * kernel state (pinned maps, links, routes) in place for the next start.
 */
import { parseArgs } from 'node:util';
import { kubeconfigClientOptions } from '../k8s/client-config.js';
import { createLogger } from '../util/log.js';
import { describeError } from '../util/errors.js';
import { Agent } from './agent.js';
import { serveAgentApi } from './api/server.js';
import { agentConfigFromFile, agentConfigFromLab, type AgentFileConfig } from './config.js';
import { LinuxDatapath } from '../datapath/linux/datapath.js';
import { FakeDatapath } from '../datapath/fake.js';
import { VXLAN_OVERHEAD } from '../datapath/linux/routes.js';
import { loadSocketLBFactory } from './socket-lb.js';
import { startK8sSources } from './k8s/sources.js';
import { MeshSource } from './mesh-source.js';

const { values } = parseArgs({
  options: {
    cluster: { type: 'string' },
    node: { type: 'string' },
    config: { type: 'string' },
    kubeconfig: { type: 'string' },
    'fake-datapath': { type: 'boolean', default: false },
  },
});

const log = createLogger({ daemon: 'agent' });

async function main(): Promise<void> {
  let cfg: AgentFileConfig;
  if (values.config) cfg = agentConfigFromFile(values.config);
  else if (values.cluster && values.node) cfg = agentConfigFromLab(values.cluster, values.node);
  else throw new Error('usage: agent --cluster <lab cluster> --node <node> | --config <file>');
  if (values.kubeconfig) {
    // the API server, its CA and this agent's credential, as kubectl reads them
    cfg.kubeconfig = values.kubeconfig;
    cfg.apiServerURL = kubeconfigClientOptions({ path: values.kubeconfig }).server;
  }
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
        logger,
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
  await agent.start({ waitFor: k8s ? k8s.syncNames : [] });
  if (cfg.staticNodes) agent.setNodes('local', cfg.staticNodes);
  const started = k8s ? await k8s.start(agent) : undefined;
  const mesh =
    cfg.labCluster && started
      ? new MeshSource({
          labCluster: cfg.labCluster,
          clusterName: cfg.clusterName,
          agent,
          setRemoteServices: (l) => started.setRemoteServices(l),
          setRemoteExports: (l) => started.setRemoteExports(l),
          logger,
        })
      : undefined;
  mesh?.start();
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
    await mesh?.stop();
    await started?.stop();
    await agent.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((err) => {
  log.error('agent failed to start', { error: describeError(err) });
  process.exit(1);
});

/**
 * The operator daemon:
 *   node --import tsx src/operator/main.ts --cluster <lab cluster>
 *   node --import tsx src/operator/main.ts --api-server URL --cluster-name N --cluster-id I [--pod-cidr C]
 */
import { parseArgs } from 'node:util';
import { kubeconfigClientOptions } from '../k8s/client-config.js';
import { createLogger } from '../util/log.js';
import { describeError } from '../util/errors.js';
import { parseDuration } from '../util/duration.js';
import { operatorStatusPath } from './paths.js';
import { apiServerNodeURL, loadCluster } from '../lab/state.js';
import { readInstallState } from '../agent/install-state.js';
import { Operator, type OperatorConfig } from './operator.js';

const log = createLogger({ daemon: 'operator' });

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      cluster: { type: 'string' },
      'api-server': { type: 'string' },
      'cluster-name': { type: 'string' },
      'cluster-id': { type: 'string' },
      'pod-cidr': { type: 'string' },
      'gc-interval': { type: 'string' },
      kubeconfig: { type: 'string' },
    },
  });
  let cfg: OperatorConfig;
  if (values.cluster) {
    const c = loadCluster(values.cluster);
    const inst = readInstallState(values.cluster);
    if (!inst) throw new Error(`Tendril is not installed in lab cluster ${values.cluster}`);
    cfg = {
      apiServerURL: apiServerNodeURL(c),
      clusterName: inst.clusterName,
      clusterId: inst.clusterId,
      clusterPodCIDR: c.podCIDR,
      gcIntervalMs: parseDuration(
        values['gc-interval'] ?? inst.settings['identity-gc-interval'] ?? '30s',
      ),
      statusFile: operatorStatusPath(values.cluster),
      labCluster: values.cluster,
      importRemoteOnly: inst.settings['remote-service-import'] !== 'false',
    };
  } else {
    if (!values['api-server'] || !values['cluster-name'] || !values['cluster-id']) {
      throw new Error(
        'usage: operator --cluster <lab cluster> | --api-server URL --cluster-name NAME --cluster-id ID',
      );
    }
    cfg = {
      apiServerURL: values['api-server'],
      clusterName: values['cluster-name'],
      clusterId: Number(values['cluster-id']),
      ...(values['pod-cidr'] ? { clusterPodCIDR: values['pod-cidr'] } : {}),
      gcIntervalMs: parseDuration(values['gc-interval'] ?? '30s'),
    };
  }
  if (values.kubeconfig) {
    // the API server, its CA and the operator's credential, as kubectl reads them
    cfg.kubeconfig = values.kubeconfig;
    cfg.apiServerURL = kubeconfigClientOptions({ path: values.kubeconfig }).server;
  }
  const op = new Operator(cfg, log);
  await op.start();
  log.info('operator running', {
    cluster: cfg.clusterName,
    clusterId: cfg.clusterId,
    api: cfg.apiServerURL,
  });
  const stop = async () => {
    await op.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}

main().catch((err) => {
  log.error('operator failed', { error: describeError(err) });
  process.exit(1);
});

/**
 * The operator daemon, configured like Cilium's:
 *
 *   node --import tsx src/operator/main.ts --config-dir DIR --kubeconfig FILE [--clustermesh-config DIR]
 *
 * --config-dir keys (one file each): cluster-name, cluster-id (required);
 * cluster-pool-ipv4-cidr (the pod CIDR for nodes without one),
 * identity-gc-interval (30s), remote-service-import (true),
 * operator-status-file (where it writes its status; none when absent),
 * prometheus-serve-addr (metrics, default :9963; empty turns them off).
 * --clustermesh-config: one etcd config per remote cluster; with it the
 * operator imports remote global services and MCS exports.
 */
import { parseArgs } from 'node:util';
import { createLogger } from '../util/log.js';
import { describeError, TendrilError } from '../util/errors.js';
import { readConfigDir } from '../util/config-dir.js';
import { kubeconfigClientOptions } from '../k8s/client-config.js';
import { parseDuration } from '../util/duration.js';
import { Operator, type OperatorConfig } from './operator.js';
import { serveMetrics } from '../util/metrics-server.js';
import { createOperatorMetrics, OPERATOR_METRICS_ADDR } from './metrics.js';
import { setMaxConnectedClusters } from '../identity/numeric.js';

const log = createLogger({ daemon: 'operator' });

/**
 * Builds the operator's config from its command line.
 * @throws TendrilError OPERATOR_USAGE, CONFIG_*, KUBECONFIG_INVALID
 */
export function operatorConfigFromArgs(argv: string[]): OperatorConfig & { metricsAddr: string } {
  const { values } = parseArgs({
    args: argv,
    options: {
      'config-dir': { type: 'string' },
      kubeconfig: { type: 'string' },
      'clustermesh-config': { type: 'string' },
    },
  });
  if (!values['config-dir'] || !values.kubeconfig) {
    throw new TendrilError(
      'OPERATOR_USAGE',
      'operator: --config-dir and --kubeconfig are required',
      {
        hint: 'usage: operator --config-dir DIR --kubeconfig FILE [--clustermesh-config DIR]',
      },
    );
  }
  const c = readConfigDir(values['config-dir']);
  const kc = kubeconfigClientOptions({ path: values.kubeconfig });
  const podCIDR = c.get('cluster-pool-ipv4-cidr');
  const statusFile = c.get('operator-status-file');
  return {
    apiServerURL: kc.server,
    apiAuth: kc,
    clusterName: c.string('cluster-name'),
    // max-connected-clusters (255 or 511) decides the identity layout and the largest cluster ID
    clusterId: c.int('cluster-id', {
      min: 1,
      max: setMaxConnectedClusters(Number(c.oneOf('max-connected-clusters', ['255', '511'], '255')))
        .maxClusterId,
    }),
    ...(podCIDR ? { clusterPodCIDR: podCIDR } : {}),
    gcIntervalMs: parseDuration(c.string('identity-gc-interval', '30s')),
    ...(statusFile ? { statusFile } : {}),
    ...(values['clustermesh-config'] ? { clusterMeshConfigDir: values['clustermesh-config'] } : {}),
    importRemoteOnly: c.bool('remote-service-import', true),
    metricsAddr: c.get('prometheus-serve-addr') ?? OPERATOR_METRICS_ADDR,
  };
}

async function main(): Promise<void> {
  const cfg = operatorConfigFromArgs(process.argv.slice(2));
  const op = new Operator(cfg, log);
  await op.start();
  // prometheus-serve-addr: "" turns metrics off
  const metrics = cfg.metricsAddr
    ? await serveMetrics(createOperatorMetrics(op), cfg.metricsAddr).catch((err: unknown) => {
        log.error('cannot serve metrics', { error: describeError(err) });
        return undefined;
      })
    : undefined;
  log.info('operator running', {
    cluster: cfg.clusterName,
    clusterId: cfg.clusterId,
    api: cfg.apiServerURL,
  });
  const stop = async () => {
    await metrics?.close();
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

/**
 * The agent's policy sources: watchers of CiliumNetworkPolicy,
 * CiliumClusterwideNetworkPolicy and NetworkPolicy feeding AgentPolicy. A policy
 * applied in a cluster governs that cluster's endpoints only: each agent watches
 * its own API server; policies are never copied between clusters.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { KubeClient } from '../../k8s/client.js';
import type { KubeObject } from '../../k8s/objects.js';
import type { PolicyKind } from '../../policy/translate.js';
import type { Logger } from '../../util/log.js';
import type { AgentPolicy } from '../policy.js';
import { KindWatcher } from '../../k8s/kind-watcher.js';

const PATHS: Array<[PolicyKind, string]> = [
  ['CiliumNetworkPolicy', '/apis/cilium.io/v2/ciliumnetworkpolicies'],
  ['CiliumClusterwideNetworkPolicy', '/apis/cilium.io/v2/ciliumclusterwidenetworkpolicies'],
  ['NetworkPolicy', '/apis/networking.k8s.io/v1/networkpolicies'],
];

/** Running policy watchers. */
export interface PolicyWatchers {
  /** Resolves once every kind finished its initial list. */
  synced: Promise<void>;
  stop(): Promise<void>;
}

/** Starts the three policy watchers. */
export function startPolicyWatchers(o: {
  client: KubeClient;
  policy: AgentPolicy;
  logger: Logger;
  onProblem?: (name: string) => (cause: string | undefined) => void;
}): PolicyWatchers {
  const watchers = PATHS.map(([kind, path]) => {
    const name = path.split('/').pop()!;
    const w = new KindWatcher<KubernetesObject>({
      name,
      client: o.client,
      path,
      logger: o.logger,
      ...(o.onProblem ? { onProblem: o.onProblem(name) } : {}),
    });
    const up = (obj: KubernetesObject) => o.policy.upsertPolicy({ ...(obj as KubeObject), kind });
    w.on('add', up)
      .on('update', up)
      .on('delete', (obj) =>
        o.policy.deletePolicy({
          kind,
          ...(kind === 'CiliumClusterwideNetworkPolicy'
            ? {}
            : { namespace: obj.metadata?.namespace ?? 'default' }),
          name: obj.metadata?.name ?? '',
        }),
      );
    void w.start();
    return w;
  });
  return {
    synced: Promise.all(watchers.map((w) => w.synced)).then(() => undefined),
    stop: async () => {
      await Promise.all(watchers.map((w) => w.stop()));
    },
  };
}

/**
 * The operator's entry to the watchers: KindWatcher (now on Tendril's own
 * informer, see kind-watcher.ts) plus kubeConfigFor, which makes the
 * client-node KubeConfig the operator builds its typed API clients from.
 *
 * This module loads @kubernetes/client-node; the agent must not import it
 * (it imports kind-watcher.js), so that the agent never loads client-node.
 */
import { KubeConfig } from '@kubernetes/client-node';

export { KindWatcher, kindOfPath, type KindWatcherOptions } from './kind-watcher.js';

/** A KubeConfig for a plain-HTTP API server URL (the lab's), or the default one (a real cluster) when undefined. */
export function kubeConfigFor(url: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (!url) {
    kc.loadFromDefault();
    return kc;
  }
  kc.loadFromOptions({
    clusters: [{ name: 'tendril', server: url, skipTLSVerify: true }],
    users: [{ name: 'tendril-agent' }],
    contexts: [{ name: 'tendril', cluster: 'tendril', user: 'tendril-agent' }],
    currentContext: 'tendril',
  });
  return kc;
}

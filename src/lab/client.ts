/**
 * How the CLI and the install wing reach a lab cluster's API server from the
 * root namespace: as a real cluster is reached, over https with the lab CA
 * and the admin identity's token (src/lab/pki.ts), read through the one
 * kubeconfig loader (src/k8s/client-config.ts).
 *
 *   new KubeClient(labAdminClientOptions(cluster, { timeoutMs: 10_000 }))
 */
import { parse } from 'yaml';
import { clientOptionsFromKubeconfig, type ResolvedClientOptions } from '../k8s/client-config.js';
import { daemonKubeconfigPath, kubeconfigFor, labCredential } from './pki.js';
import { apiServerURL, labServerURL, type LabCluster } from './state.js';

/**
 * KubeClient options for the lab's admin identity at {@link labServerURL}.
 * A cluster made before the lab spoke https has no local https port: then
 * the plain-HTTP port, without credentials.
 * @throws TendrilError `LAB_PKI_MISSING` when the cluster's PKI is gone.
 */
export function labAdminClientOptions(
  cluster: LabCluster,
  options: { timeoutMs?: number } = {},
): ResolvedClientOptions {
  const server = labServerURL(cluster);
  if (!server.startsWith('https:'))
    return { server: apiServerURL(cluster), namespace: 'default', ...options };
  const { caPEM, token } = labCredential(cluster, 'admin');
  const text = kubeconfigFor(cluster.name, 'admin', server, caPEM, token);
  return {
    ...clientOptionsFromKubeconfig(parse(text) as object, {
      path: daemonKubeconfigPath(cluster.name, 'admin'),
    }),
    ...options,
  };
}

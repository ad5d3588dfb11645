/**
 * Resolves a CLI context to the lab cluster that serves it (install,
 * uninstall, status and debug act on lab clusters on this machine).
 */
import { TendrilError } from '../util/errors.js';
import { resolveContext } from '../k8s/kubeconfig.js';
import { listClusters, servesURL, type LabCluster } from '../lab/state.js';

export interface InstallTarget {
  context: string;
  server: string;
  cluster: LabCluster;
}

/**
 * @throws TendrilError config.UnknownContext / config.NoContext (from the config),
 *   install.NotALabCluster when the context's server is no lab cluster here.
 */
export function resolveInstallTarget(context?: string): InstallTarget {
  const ctx = resolveContext(context);
  const clusters = listClusters();
  const cluster =
    clusters.find((c) => servesURL(c, ctx.server)) ??
    (ctx.contextName.startsWith('lab-')
      ? clusters.find((c) => c.name === ctx.contextName.slice(4))
      : undefined);
  if (!cluster) {
    throw new TendrilError(
      'INSTALL_NOT_A_LAB_CLUSTER',
      `context "${ctx.contextName}" (${ctx.server}) is not a lab cluster on this machine`,
      {
        hint: `see \`tendril lab list\`; create one with \`tendril lab create NAME\` and pass --context lab-NAME`,
      },
    );
  }
  return { context: ctx.contextName, server: ctx.server, cluster };
}

/**
 * Which lab cluster a CLI command talks to: the context (given, or current)
 * resolved to its API server and to the lab cluster on this machine that
 * serves it (run, exec and logs read pods' files and enter their namespaces
 * directly).
 */
import { TendrilError } from '../util/errors.js';
import { resolveContext } from './context.js';
import { LabApi } from './kubelet/api.js';
import { listClusters, servesURL, type LabCluster } from './state.js';
import { KubeClient } from '../k8s/client.js';
import { labAdminClientOptions } from './client.js';

/** A lab cluster reached through a context. */
export interface LabTarget {
  context: string;
  cluster: LabCluster;
  api: LabApi;
  /** The context's default namespace. */
  namespace: string;
}

/** Resolves the context to a lab cluster. Throws LAB_NO_CONTEXT or LAB_NOT_A_LAB_CLUSTER. */
export function resolveLabTarget(context?: string): LabTarget {
  const ctx = resolveContext(context);
  const clusters = listClusters();
  const byName = ctx.name.startsWith('lab-')
    ? clusters.find((c) => c.name === ctx.name.slice(4))
    : undefined;
  const cluster =
    byName && servesURL(byName, ctx.server)
      ? byName
      : clusters.find((c) => servesURL(c, ctx.server));
  if (!cluster) {
    throw new TendrilError(
      'LAB_NOT_A_LAB_CLUSTER',
      `context "${ctx.name}" (${ctx.server}) is not a lab cluster on this machine`,
      {
        hint: 'run, exec and logs work on lab clusters (`tendril lab list`); pass --context lab-NAME',
      },
    );
  }
  // https (the context's way in): through KubeClient with the lab CA and the
  // admin credential; a plain-HTTP context (a cluster made before https) as is
  const api = ctx.server.startsWith('https:')
    ? new LabApi(ctx.server, new KubeClient(labAdminClientOptions(cluster)))
    : new LabApi(ctx.server);
  return { context: ctx.name, cluster, api, namespace: ctx.namespace };
}

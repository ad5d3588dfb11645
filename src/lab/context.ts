/**
 * Records and forgets a lab cluster's context (`lab-<name>`) in Tendril's
 * kubeconfig-style config file, through src/k8s/kubeconfig.ts (which owns the
 * file's format), and resolves a context for the lab's CLI commands.
 */
import {
  removeContext,
  resolveContext as resolveKubeContext,
  setContext,
} from '../k8s/kubeconfig.js';

/** The context name of a lab cluster. */
export function labContextName(cluster: string): string {
  return `lab-${cluster}`;
}

/**
 * Records context lab-<cluster> pointing at `server` and makes it current
 * (as kind does). The cluster, context and user entries all carry the same
 * name; `auth` (the lab CA and the admin token) goes into the cluster and
 * user entries, as a real cluster's kubeconfig holds them.
 */
export function recordLabContext(
  cluster: string,
  server: string,
  auth?: { caPEM: string; token: string },
): string {
  return setContext({ name: labContextName(cluster), server, makeCurrent: true, ...auth });
}

/** Removes context lab-<cluster> (and its cluster and user entries); clears current-context if it was that one. */
export function forgetLabContext(cluster: string): void {
  removeContext(labContextName(cluster));
}

/**
 * The server URL and name of a context (the given one, $TENDRIL_CONTEXT, or
 * the current one). Throws config.NoContext / config.UnknownContext.
 */
export function resolveContext(context?: string): {
  name: string;
  server: string;
  namespace: string;
} {
  const c = resolveKubeContext(context);
  return { name: c.contextName, server: c.server, namespace: c.namespace };
}

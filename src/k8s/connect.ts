/**
 * Opens a KubeClient for a context of Tendril's config (the given one, or
 * $TENDRIL_CONTEXT, or the current context).
 */
import { configPath } from '../util/paths.js';
import { KubeClient } from './client.js';
import { clientOptionsFromKubeconfig } from './client-config.js';
import { readKubeConfig, resolveContext, type ResolvedContext } from './kubeconfig.js';

/** A client bound to a resolved context. Call client.close() when done. */
export interface Connection {
  client: KubeClient;
  context: ResolvedContext;
}

/**
 * Resolves the context and creates a client for its server.
 * @throws TendrilError `CONFIG_UNKNOWN_CONTEXT` / `CONFIG_NO_CONTEXT`.
 */
export function connect(contextName?: string, options: { timeoutMs?: number } = {}): Connection {
  const context = resolveContext(contextName);
  // the context's user (token, client certificate) and cluster CA, as kubectl reads them
  const path = configPath();
  const auth = clientOptionsFromKubeconfig(readKubeConfig(path), {
    path,
    context: context.contextName,
  });
  return {
    client: new KubeClient({ ...auth, server: context.server, timeoutMs: options.timeoutMs }),
    context,
  };
}

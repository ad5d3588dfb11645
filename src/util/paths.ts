/**
 * Where Tendril keeps its files. TENDRIL_HOME overrides the state root
 * (default /var/lib/tendril as root, ~/.tendril otherwise). Tests set
 * TENDRIL_HOME to a temporary directory.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The root of Tendril's state: config, lab clusters, daemons' pid files and logs. */
export function tendrilHome(): string {
  if (process.env.TENDRIL_HOME) return process.env.TENDRIL_HOME;
  return process.getuid?.() === 0 ? '/var/lib/tendril' : join(homedir(), '.tendril');
}

/** Tendril's kubeconfig-style config file (contexts). */
export function configPath(): string {
  return process.env.TENDRIL_CONFIG ?? join(tendrilHome(), 'config');
}

/** The state directory of one lab cluster. */
export function clusterDir(cluster: string): string {
  return join(tendrilHome(), 'clusters', cluster);
}

/** The bpffs root under which Tendril pins its objects. */
export const BPFFS_ROOT = '/sys/fs/bpf';

/** The cgroup v2 mount point on this machine kind (hybrid hierarchy). */
export function cgroup2Root(): string {
  return process.env.TENDRIL_CGROUP2 ?? '/sys/fs/cgroup/unified';
}

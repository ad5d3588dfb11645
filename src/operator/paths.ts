/** Files the lab operator writes, for `tendril status`. */
import { join } from 'node:path';
import { clusterDir } from '../util/paths.js';

/** Where the lab operator writes its status. */
export function operatorStatusPath(labCluster: string): string {
  return join(clusterDir(labCluster), 'operator-status.json');
}

/**
 * Reads the socket load balancer's pinned service maps for `tendril debug
 * services`. The LB (src/datapath/linux/lb/) owns the layout; this returns
 * undefined until it is built in.
 */
import type { ServiceEntry } from '../datapath/types.js';

/** The services in a node's pinned LB maps, or undefined when there are none. */
export async function readPinnedServices(_bpffsDir: string): Promise<ServiceEntry[] | undefined> {
  return undefined;
}

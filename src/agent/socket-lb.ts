/**
 * Plugs the socket load balancer (src/datapath/linux/lb/, built separately)
 * into the Linux datapath. Until it exists, the agent runs without it and
 * reports so in status.
 */
import type { Logger } from '../util/log.js';
import type { SocketLBFactory } from '../datapath/linux/datapath.js';

/** Returns the factory of the socket LB, or undefined when it is not built in. */
export async function loadSocketLBFactory(_logger: Logger): Promise<SocketLBFactory | undefined> {
  return undefined;
}

/**
 * Plugs the socket load balancer (src/datapath/linux/lb/) into the Linux
 * datapath.
 */
import type { Logger } from '../util/log.js';
import type { SocketLBFactory } from '../datapath/linux/datapath.js';
import { createSocketLB } from '../datapath/linux/lb/index.js';

/** Returns the factory of the socket LB, or undefined when it is not built in. */
export async function loadSocketLBFactory(_logger: Logger): Promise<SocketLBFactory | undefined> {
  return createSocketLB;
}

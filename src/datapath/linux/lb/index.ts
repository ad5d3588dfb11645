/**
 * The socket load balancer (kube-proxy replacement at the socket, as Cilium's
 * bpf_sock.c). See docs/socket-lb.md.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ServiceEntry } from '../../types.js';
import type { SocketLBFactory } from '../datapath.js';
import { LB_PIN, lbPinDir } from './maps.js';
import { BpfSocketLB } from './socket-lb.js';

export {
  BpfSocketLB,
  LBError,
  destroyPinnedLB,
  readServices,
  type SocketLBOptions,
} from './socket-lb.js';
export { maglevTable } from './maglev.js';
export * from './maps.js';
export { HOOKS, forwardProgram, reverseProgram, loadHookProgram, type Hook } from './programs.js';

/**
 * The factory the agent plugs into LinuxDatapath: opens the pinned maps under
 * `<bpffsDir>/lb/`, adopts their services and attaches the four programs to
 * `cgroupPath`. Throws (MapMismatchError, VerifierError, BpfError, LBError).
 */
export const createSocketLB: SocketLBFactory = async (o) =>
  BpfSocketLB.open({
    bpffsDir: o.bpffsDir,
    cgroupPath: o.cgroupPath,
    logger: o.logger,
    ...(o.events ? { events: o.events } : {}),
  });

/**
 * Reads the services from the pinned maps without attaching anything (for
 * `tendril debug`); undefined when the LB has no pins under `bpffsDir`.
 * Throws BpfError / MapMismatchError.
 */
export function readPinnedServices(bpffsDir: string): ServiceEntry[] | undefined {
  if (!existsSync(join(lbPinDir(bpffsDir), LB_PIN.services))) return undefined;
  const lb = BpfSocketLB.open({ bpffsDir, cgroupPath: '', mapsOnly: true });
  try {
    return lb.listServices();
  } finally {
    lb.close();
  }
}

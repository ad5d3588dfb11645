/**
 * Running synchronous code inside another network namespace. setns(2) switches
 * only the calling thread; koffi's synchronous calls run on the main thread,
 * so `withNetns` switches the main thread, runs fn, and always switches back.
 */
import { TendrilError } from '../../util/errors.js';
import { BpfError } from './errors.js';
import { CLONE_NEWNET, O_RDONLY, closeFd, openFd, setnsRaw } from './syscall.js';

/** Where `ip netns add NAME` puts a namespace. */
export const NETNS_RUN_DIR = '/run/netns';

/** The path of a namespace given by name ("tendril-a") or path ("/run/netns/x", "/proc/123/ns/net"). */
export function netnsPath(nameOrPath: string): string {
  return nameOrPath.includes('/') ? nameOrPath : `${NETNS_RUN_DIR}/${nameOrPath}`;
}

/**
 * Runs fn with the calling thread inside the network namespace `nameOrPath`,
 * then restores the original namespace (in finally). fn must be synchronous:
 * a returned promise is refused, since its continuation would run after the
 * switch back. Throws BpfError("setns") naming the namespace when it cannot
 * be entered, and TendrilError NETNS_RESTORE if switching back fails.
 */
export function withNetns<T>(nameOrPath: string, fn: () => T): T {
  const path = netnsPath(nameOrPath);
  const target = openFd(path, O_RDONLY);
  let orig = -1;
  try {
    orig = openFd('/proc/thread-self/ns/net', O_RDONLY);
    const r = setnsRaw(target, CLONE_NEWNET);
    if (r < 0) {
      throw new BpfError('setns', -r, {
        context: `enter network namespace ${nameOrPath}`,
        hint: 'setns needs CAP_SYS_ADMIN (run as root) and a namespace file (ip netns add NAME)',
      });
    }
    try {
      const out = fn();
      if (
        out !== null &&
        typeof out === 'object' &&
        typeof (out as { then?: unknown }).then === 'function'
      ) {
        throw new TendrilError('NETNS_ASYNC', `withNetns(${nameOrPath}): fn returned a promise`, {
          hint: 'withNetns runs synchronous code only; await outside it',
        });
      }
      return out;
    } finally {
      const back = setnsRaw(orig, CLONE_NEWNET);
      if (back < 0) {
        // The thread is stranded in the other namespace: nothing after this can be trusted.
        throw new TendrilError(
          'NETNS_RESTORE',
          `could not return from network namespace ${nameOrPath} (errno ${-back})`,
        );
      }
    }
  } finally {
    if (orig >= 0) closeFd(orig);
    closeFd(target);
  }
}

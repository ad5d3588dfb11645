/**
 * Network namespaces and links of the lab: the shared underlay (a bridge in
 * its own namespace) and node namespaces wired to it by veth pairs. Names and
 * addresses come from layout.ts.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { TendrilError } from '../util/errors.js';
import { run, tryRun } from './exec.js';
import { UNDERLAY_BRIDGE, UNDERLAY_CIDR, labPrefix, underlayNetns } from './layout.js';

/** Directory of named network namespaces. */
export const NETNS_DIR = '/run/netns';

/** Path of a named network namespace. */
export function netnsPath(name: string): string {
  return `${NETNS_DIR}/${name}`;
}

/** True when the named network namespace exists. */
export function netnsExists(name: string): boolean {
  return existsSync(netnsPath(name));
}

/** Every named network namespace. */
export function listNetns(): string[] {
  try {
    return readdirSync(NETNS_DIR).sort();
  } catch {
    return [];
  }
}

/**
 * Network namespaces of this lab instance: names starting with the lab prefix
 * and "-", except those of a longer prefix that has its own underlay (a test's
 * `tendril-t123x` lab is not part of the default `tendril` lab).
 */
export function listLabNetns(): string[] {
  const p = `${labPrefix()}-`;
  const all = listNetns().filter((n) => n.startsWith(p));
  const own = underlayNetns();
  const nested = all
    .filter((n) => n.endsWith('-underlay') && n !== own)
    .map((n) => n.slice(0, -'underlay'.length));
  return all.filter((n) => !nested.some((q) => n.startsWith(q)));
}

/** The namespace's inode number (what /proc/<pid>/ns/net links to), or undefined. */
export function netnsInode(name: string): number | undefined {
  try {
    return statSync(netnsPath(name)).ino;
  } catch {
    return undefined;
  }
}

/** Creates a named network namespace with lo up; an existing one is reused. */
export async function createNetns(name: string): Promise<void> {
  if (!netnsExists(name))
    await run('ip', ['netns', 'add', name], { what: `create network namespace ${name}` });
  await run('ip', ['-n', name, 'link', 'set', 'lo', 'up'], { what: `bring lo up in ${name}` });
}

/** Deletes a named network namespace; missing is fine. */
export async function deleteNetns(name: string): Promise<void> {
  if (!netnsExists(name)) return;
  if (!(await tryRun('ip', ['netns', 'del', name])) && netnsExists(name)) {
    throw new TendrilError('LAB_NETNS_DELETE', `cannot delete network namespace ${name}`, {
      hint: `try \`ip netns del ${name}\``,
    });
  }
}

/** Runs a command inside a namespace with nsenter (keeps /sys, bpffs and cgroup2 visible, unlike `ip netns exec`). */
export function nsRun(
  netns: string,
  argv: string[],
  what?: string,
): Promise<{ stdout: string; stderr: string }> {
  return run(
    'nsenter',
    [`--net=${netnsPath(netns)}`, '--', ...argv],
    what === undefined ? {} : { what },
  );
}

/** Sets a sysctl under /proc/sys inside a namespace (e.g. net.ipv4.ip_forward). */
export async function setSysctl(netns: string, key: string, value: string): Promise<void> {
  const path = `/proc/sys/${key.replace(/\./g, '/')}`;
  await nsRun(netns, ['sh', '-c', `echo ${value} > ${path}`], `set ${key}=${value} in ${netns}`);
}

/** Makes the shared underlay namespace and its bridge (idempotent). */
export async function ensureUnderlay(): Promise<void> {
  const ns = underlayNetns();
  await createNetns(ns);
  if (!(await tryRun('ip', ['-n', ns, 'link', 'show', UNDERLAY_BRIDGE]))) {
    await run('ip', ['-n', ns, 'link', 'add', UNDERLAY_BRIDGE, 'type', 'bridge'], {
      what: 'create the underlay bridge',
    });
  }
  await run('ip', ['-n', ns, 'link', 'set', UNDERLAY_BRIDGE, 'up'], {
    what: 'bring the underlay bridge up',
  });
}

/** Name of a node's veth end on the underlay bridge (unique inside the underlay namespace). */
export function underlayPortName(clusterIndex: number, nodeIndex: number): string {
  return `c${clusterIndex}n${nodeIndex}`;
}

/**
 * Makes a node's namespace and wires it to the underlay: eth0 (inside) with
 * `ip`/16, its peer on the bridge, lo up, IPv4 forwarding on. Idempotent.
 */
export async function createNode(options: {
  netns: string;
  ip: string;
  clusterIndex: number;
  nodeIndex: number;
}): Promise<void> {
  const { netns, ip } = options;
  const under = underlayNetns();
  const port = underlayPortName(options.clusterIndex, options.nodeIndex);
  if (!netnsExists(netns))
    await run('ip', ['netns', 'add', netns], { what: `create network namespace ${netns}` });
  if (!(await tryRun('ip', ['-n', netns, 'link', 'show', 'eth0']))) {
    // A stale bridge port of the same name (from an interrupted create) would block the new pair.
    await tryRun('ip', ['-n', under, 'link', 'del', port]);
    await run('ip', ['-n', under, '-batch', '-'], {
      input: `link add ${port} type veth peer name eth0 netns ${netns}\nlink set ${port} master ${UNDERLAY_BRIDGE} up\n`,
      what: `wire ${netns} to the underlay`,
    });
  } else {
    await run('ip', ['-n', under, 'link', 'set', port, 'master', UNDERLAY_BRIDGE, 'up'], {
      what: `attach ${port} to the underlay bridge`,
    });
  }
  const prefixLen = UNDERLAY_CIDR.split('/')[1];
  await run('ip', ['-n', netns, '-batch', '-'], {
    input: `link set lo up\naddr replace ${ip}/${prefixLen} dev eth0\nlink set eth0 up\n`,
    what: `address eth0 of ${netns}`,
  });
  await setSysctl(netns, 'net.ipv4.ip_forward', '1');
}

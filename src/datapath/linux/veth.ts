/**
 * A pod's veth pair, as Cilium wires it: the host side `lxc<hash>` stays in
 * the node's namespace with a /32 route to the pod; the pod side (CNI_IFNAME,
 * usually eth0) gets the pod's address as a /32 and a default route via a
 * link-local gateway (169.254.1.1) whose neighbour entry is pinned to the
 * host side's MAC, so the pod never needs ARP for its gateway and the node
 * needs no address on the veth.
 */
import { createHash } from 'node:crypto';
import { ip, ipBatch, ipJson, IpCommandError } from './ip.js';
import { TendrilError } from '../../util/errors.js';

/** The link-local gateway every pod routes through. */
export const POD_GATEWAY = '169.254.1.1';

/** Host-side interface name for a container's interface: "lxc" + 11 hex digits (fits IFNAMSIZ). */
export function hostIfNameFor(containerId: string, ifName = 'eth0'): string {
  return 'lxc' + createHash('sha256').update(`${containerId}/${ifName}`).digest('hex').slice(0, 11);
}

export interface PodVethSpec {
  hostIfName: string;
  /** Interface name inside the pod (CNI_IFNAME). */
  podIfName: string;
  /** Path of the pod's network namespace (CNI_NETNS). */
  podNetns: string;
  /** The pod's IPv4 address (no prefix). */
  ip: string;
  mtu: number;
}

export interface PodVethResult {
  hostMac: string;
  podMac: string;
}

interface LinkJson {
  ifname: string;
  address?: string;
  mtu?: number;
  operstate?: string;
}

async function linkMac(name: string, netns?: string): Promise<string> {
  const links = await ipJson<LinkJson[]>(['link', 'show', 'dev', name], netns ? { netns } : {});
  const mac = links[0]?.address;
  if (!mac) throw new TendrilError('DATAPATH_VETH', `read MAC of ${name}: no address`);
  return mac;
}

/**
 * Creates (or re-creates) the pod's veth pair, addresses and routes.
 * Idempotent: a leftover host side from an earlier attempt is replaced.
 * @throws IpCommandError (with iproute2's message) when the kernel refuses.
 */
export async function setupPodVeth(spec: PodVethSpec): Promise<PodVethResult> {
  await teardownPodVeth(spec.hostIfName);
  const mtu = String(spec.mtu);
  await ip([
    'link',
    'add',
    spec.hostIfName,
    'mtu',
    mtu,
    'type',
    'veth',
    'peer',
    'name',
    spec.podIfName,
    'mtu',
    mtu,
    'netns',
    spec.podNetns,
  ]);
  try {
    await ipBatch([
      ['link', 'set', spec.hostIfName, 'up'],
      ['route', 'replace', `${spec.ip}/32`, 'dev', spec.hostIfName, 'scope', 'link'],
    ]);
    const hostMac = await linkMac(spec.hostIfName);
    await ipBatch(
      [
        ['link', 'set', 'lo', 'up'],
        ['addr', 'replace', `${spec.ip}/32`, 'dev', spec.podIfName],
        ['link', 'set', spec.podIfName, 'up'],
        ['route', 'replace', POD_GATEWAY, 'dev', spec.podIfName, 'scope', 'link'],
        [
          'neigh',
          'replace',
          POD_GATEWAY,
          'lladdr',
          hostMac,
          'dev',
          spec.podIfName,
          'nud',
          'permanent',
        ],
        ['route', 'replace', 'default', 'via', POD_GATEWAY, 'dev', spec.podIfName, 'mtu', mtu],
      ],
      { netns: spec.podNetns },
    );
    const podMac = await linkMac(spec.podIfName, spec.podNetns);
    return { hostMac, podMac };
  } catch (err) {
    await teardownPodVeth(spec.hostIfName).catch(() => undefined);
    throw err;
  }
}

/** Deletes the host side (the kernel removes the pod side and the /32 route with it). No error if absent. */
export async function teardownPodVeth(hostIfName: string): Promise<void> {
  try {
    await ip(['link', 'del', hostIfName]);
  } catch (err) {
    if (!(err instanceof IpCommandError && err.missing)) throw err;
  }
}

/**
 * Verifies a pod's veth as CNI CHECK wants: host side up with the /32 route,
 * pod side holding the address and the default route.
 * @throws TendrilError datapath.VethCheck naming what is wrong.
 */
export async function checkPodVeth(spec: Omit<PodVethSpec, 'mtu'>): Promise<void> {
  const fail = (what: string) => {
    throw new TendrilError('DATAPATH_VETH_CHECK', `pod interface check failed: ${what}`);
  };
  let host: LinkJson[];
  try {
    host = await ipJson<LinkJson[]>(['link', 'show', 'dev', spec.hostIfName]);
  } catch {
    return fail(`host interface ${spec.hostIfName} is missing`);
  }
  if (!host[0]) return fail(`host interface ${spec.hostIfName} is missing`);
  const routes = await ipJson<Array<{ dst: string; dev?: string }>>([
    'route',
    'show',
    `${spec.ip}/32`,
  ]);
  if (!routes.some((r) => r.dev === spec.hostIfName))
    fail(`no route ${spec.ip}/32 dev ${spec.hostIfName} on the node`);
  let addrs: Array<{ ifname: string; addr_info?: Array<{ local: string; prefixlen: number }> }>;
  try {
    addrs = await ipJson(['addr', 'show', 'dev', spec.podIfName], { netns: spec.podNetns });
  } catch {
    return fail(`${spec.podIfName} is missing in ${spec.podNetns}`);
  }
  if (!addrs[0]?.addr_info?.some((a) => a.local === spec.ip))
    fail(`${spec.podIfName} in ${spec.podNetns} does not hold ${spec.ip}`);
  const def = await ipJson<Array<{ dst: string; gateway?: string }>>(['route', 'show', 'default'], {
    netns: spec.podNetns,
  });
  if (!def.some((r) => r.gateway === POD_GATEWAY))
    fail(`no default route via ${POD_GATEWAY} in ${spec.podNetns}`);
}

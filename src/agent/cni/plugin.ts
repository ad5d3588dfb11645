/**
 * The tendril-cni plugin's logic (CNI 1.0 ADD, DEL, CHECK, VERSION), with its
 * kernel and agent operations injectable so tests run it without root.
 *
 * ADD: address from the agent's IPAM -> veth pair + routes -> endpoint
 * registered with the agent -> CNI result. A failure after the address was
 * handed out undoes what was done (veth removed, endpoint and address released).
 * DEL: idempotent; removes the veth and tells the agent. If the agent is down,
 * the release is queued as a file in `<socket dir>/pending-release/` that the
 * agent processes when it starts, so DEL still succeeds (as the spec asks).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { AgentApiError, AgentClient, AgentUnreachableError } from '../api/client.js';
import type {
  EndpointInfo,
  EndpointRegistration,
  IpamRequest,
  IpamResponse,
} from '../api/types.js';
import {
  checkPodVeth,
  hostIfNameFor,
  setupPodVeth,
  teardownPodVeth,
  type PodVethResult,
  type PodVethSpec,
} from '../../datapath/linux/veth.js';
import { parseCniEnv, parseNetConf } from './args.js';
import {
  CNI_VERSION,
  CniCode,
  CniError,
  SUPPORTED_VERSIONS,
  type CniEnv,
  type CniResult,
  type TendrilNetConf,
} from './types.js';

/** What the plugin needs from the agent. */
export interface PluginAgent {
  allocate(req: IpamRequest): Promise<IpamResponse>;
  registerEndpoint(reg: EndpointRegistration): Promise<EndpointInfo>;
  deleteEndpoint(containerId: string, ifName: string): Promise<void>;
  getEndpoint(containerId: string): Promise<EndpointInfo>;
}

/** What the plugin needs from the kernel. */
export interface PluginNet {
  setup(spec: PodVethSpec): Promise<PodVethResult>;
  teardown(hostIfName: string): Promise<void>;
  check(spec: Omit<PodVethSpec, 'mtu'>): Promise<void>;
}

export interface PluginDeps {
  agent?: (conf: TendrilNetConf) => PluginAgent;
  net?: PluginNet;
}

const linuxNet: PluginNet = { setup: setupPodVeth, teardown: teardownPodVeth, check: checkPodVeth };

/** Directory where DEL queues releases while the agent is down. */
export function pendingReleaseDir(agentSocket: string): string {
  return join(dirname(agentSocket), 'pending-release');
}

/** Builds the CNI 1.0 result for a pod's interface. */
export function buildResult(o: {
  env: CniEnv;
  alloc: IpamResponse;
  veth: PodVethResult;
  cniVersion?: string;
}): CniResult {
  return {
    cniVersion: o.cniVersion ?? CNI_VERSION,
    interfaces: [
      { name: o.alloc.hostIfName, mac: o.veth.hostMac, mtu: o.alloc.mtu },
      { name: o.env.ifName, mac: o.veth.podMac, mtu: o.alloc.mtu, sandbox: o.env.netns },
    ],
    ips: [
      { address: `${o.alloc.ip}/${o.alloc.prefixLength}`, gateway: o.alloc.gateway, interface: 1 },
    ],
    routes: [{ dst: '0.0.0.0/0', gw: o.alloc.gateway }],
    dns: {},
  };
}

function wrapAgentError(err: unknown, what: string): CniError {
  if (err instanceof CniError) return err;
  if (err instanceof AgentUnreachableError)
    return new CniError(
      CniCode.AgentUnreachable,
      `${what}: the Tendril agent is unreachable`,
      err.message,
    );
  if (err instanceof AgentApiError)
    return new CniError(CniCode.AgentRefused, `${what}: ${err.message}`, err.hint ?? '');
  return new CniError(CniCode.DatapathFailure, `${what}: ${(err as Error).message ?? String(err)}`);
}

/**
 * Runs one CNI invocation. Returns the stdout text and exit code (0 on success;
 * on failure stdout holds the CNI error object and the code is 1).
 */
export async function runPlugin(
  env: NodeJS.ProcessEnv,
  stdin: string,
  deps: PluginDeps = {},
): Promise<{ stdout: string; exitCode: number }> {
  try {
    const cniEnv = parseCniEnv(env);
    if (cniEnv.command === 'VERSION') {
      return {
        stdout:
          JSON.stringify({ cniVersion: CNI_VERSION, supportedVersions: SUPPORTED_VERSIONS }) + '\n',
        exitCode: 0,
      };
    }
    const conf = parseNetConf(stdin);
    const agent = (
      deps.agent ?? ((c: TendrilNetConf) => new AgentClient(c.agentSocket, { timeoutMs: 20_000 }))
    )(conf);
    const net = deps.net ?? linuxNet;
    switch (cniEnv.command) {
      case 'ADD': {
        const result = await add(cniEnv, conf, agent, net);
        return { stdout: JSON.stringify(result) + '\n', exitCode: 0 };
      }
      case 'DEL':
        await del(cniEnv, conf, agent, net);
        return { stdout: '', exitCode: 0 };
      case 'CHECK':
        await check(cniEnv, conf, agent, net);
        return { stdout: '', exitCode: 0 };
    }
  } catch (err) {
    const e =
      err instanceof CniError
        ? err
        : new CniError(CniCode.IOFailure, (err as Error)?.message ?? String(err));
    return { stdout: JSON.stringify(e.toJSON()) + '\n', exitCode: 1 };
  }
  return { stdout: '', exitCode: 0 };
}

async function add(
  env: CniEnv,
  conf: TendrilNetConf,
  agent: PluginAgent,
  net: PluginNet,
): Promise<CniResult> {
  const podNamespace = env.args.K8S_POD_NAMESPACE ?? '';
  const podName = env.args.K8S_POD_NAME ?? '';
  let alloc: IpamResponse;
  try {
    alloc = await agent.allocate({
      containerId: env.containerId,
      ifName: env.ifName,
      podNamespace,
      podName,
    });
  } catch (err) {
    throw wrapAgentError(err, 'allocate a pod address');
  }
  const mtu = alloc.mtu || conf.mtu || 1500;
  const hostIfName = alloc.hostIfName || hostIfNameFor(env.containerId, env.ifName);
  let veth: PodVethResult;
  try {
    veth = await net.setup({
      hostIfName,
      podIfName: env.ifName,
      podNetns: env.netns,
      ip: alloc.ip,
      mtu,
    });
  } catch (err) {
    await agent.deleteEndpoint(env.containerId, env.ifName).catch(() => undefined);
    throw new CniError(
      CniCode.DatapathFailure,
      `set up the pod interface ${env.ifName} in ${env.netns}: ${(err as Error).message}`,
    );
  }
  try {
    await agent.registerEndpoint({
      containerId: env.containerId,
      ifName: env.ifName,
      podNamespace,
      podName,
      ...(env.args.K8S_POD_UID ? { podUid: env.args.K8S_POD_UID } : {}),
      ip: alloc.ip,
      hostIfName,
      hostMac: veth.hostMac,
      podMac: veth.podMac,
      netns: env.netns,
    });
  } catch (err) {
    await net.teardown(hostIfName).catch(() => undefined);
    await agent.deleteEndpoint(env.containerId, env.ifName).catch(() => undefined);
    throw wrapAgentError(err, 'register the endpoint');
  }
  return buildResult({
    env,
    alloc: { ...alloc, hostIfName, mtu },
    veth,
    cniVersion: conf.cniVersion,
  });
}

async function del(
  env: CniEnv,
  conf: TendrilNetConf,
  agent: PluginAgent,
  net: PluginNet,
): Promise<void> {
  const hostIfName = hostIfNameFor(env.containerId, env.ifName);
  try {
    await net.teardown(hostIfName);
  } catch (err) {
    throw new CniError(CniCode.DatapathFailure, `remove ${hostIfName}: ${(err as Error).message}`);
  }
  try {
    await agent.deleteEndpoint(env.containerId, env.ifName);
  } catch (err) {
    if (err instanceof AgentApiError && err.status === 404) return;
    if (!(err instanceof AgentUnreachableError)) throw wrapAgentError(err, 'release the endpoint');
    // The agent is down: queue the release; the agent applies it when it starts.
    const dir = pendingReleaseDir(conf.agentSocket);
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, encodeURIComponent(`${env.containerId}_${env.ifName}`)),
      JSON.stringify({ containerId: env.containerId, ifName: env.ifName }),
    );
  }
}

async function check(
  env: CniEnv,
  conf: TendrilNetConf,
  agent: PluginAgent,
  net: PluginNet,
): Promise<void> {
  const prev = conf.prevResult;
  if (!prev)
    throw new CniError(
      CniCode.InvalidNetworkConfig,
      'CHECK needs prevResult in the network config',
    );
  let ep: EndpointInfo;
  try {
    ep = await agent.getEndpoint(env.containerId);
  } catch (err) {
    throw wrapAgentError(err, 'look up the endpoint');
  }
  const ip = prev.ips?.[0]?.address.split('/')[0];
  if (ip && ip !== ep.ip)
    throw new CniError(
      CniCode.DatapathFailure,
      `prevResult says ${ip} but the agent has ${ep.ip} for this container`,
    );
  try {
    await net.check({
      hostIfName: ep.hostIfName,
      podIfName: env.ifName,
      podNetns: env.netns,
      ip: ep.ip,
    });
  } catch (err) {
    throw new CniError(CniCode.DatapathFailure, (err as Error).message);
  }
}

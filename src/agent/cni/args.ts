/**
 * Parsing of what a runtime hands a CNI plugin: the CNI_* environment and the
 * network config on stdin. Pure functions; bad input is a CniError with the
 * CNI code the spec assigns (4 invalid env, 6 decode failure, 7 invalid config,
 * 1 incompatible version).
 */
import {
  CniCode,
  CniError,
  SUPPORTED_VERSIONS,
  type CniCommand,
  type CniEnv,
  type TendrilNetConf,
} from './types.js';

const COMMANDS: CniCommand[] = ['ADD', 'DEL', 'CHECK', 'VERSION'];

/** Parses CNI_ARGS ("K8S_POD_NAMESPACE=default;K8S_POD_NAME=x;IgnoreUnknown=1"). @throws CniError InvalidEnv */
export function parseCniArgs(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!text) return out;
  for (const part of text.split(';')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    if (eq <= 0)
      throw new CniError(CniCode.InvalidEnv, `invalid CNI_ARGS item "${part}": expected KEY=VALUE`);
    out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

/**
 * Reads the CNI_* variables. VERSION needs only CNI_COMMAND; ADD and CHECK
 * need CNI_CONTAINERID, CNI_NETNS and CNI_IFNAME; DEL needs CNI_CONTAINERID and
 * CNI_IFNAME (CNI_NETNS may be empty when the namespace is gone).
 * @throws CniError InvalidEnv naming the missing variable.
 */
export function parseCniEnv(env: NodeJS.ProcessEnv): CniEnv {
  const command = (env.CNI_COMMAND ?? '').toUpperCase() as CniCommand;
  if (!COMMANDS.includes(command)) {
    throw new CniError(
      CniCode.InvalidEnv,
      `CNI_COMMAND "${env.CNI_COMMAND ?? ''}" is not one of ${COMMANDS.join(', ')}`,
    );
  }
  const need = (key: string): string => {
    const v = env[key];
    if (!v) throw new CniError(CniCode.InvalidEnv, `${key} is required for ${command}`);
    return v;
  };
  if (command === 'VERSION') {
    return {
      command,
      containerId: env.CNI_CONTAINERID ?? '',
      netns: env.CNI_NETNS ?? '',
      ifName: env.CNI_IFNAME ?? 'eth0',
      path: env.CNI_PATH ?? '',
      args: {},
    };
  }
  const containerId = need('CNI_CONTAINERID');
  const ifName = need('CNI_IFNAME');
  const netns = command === 'DEL' ? (env.CNI_NETNS ?? '') : need('CNI_NETNS');
  if (ifName.length > 15 || !/^[A-Za-z0-9_.-]+$/.test(ifName)) {
    throw new CniError(
      CniCode.InvalidEnv,
      `CNI_IFNAME "${ifName}" is not a valid interface name (at most 15 characters of letters, digits, _ . -)`,
    );
  }
  return {
    command,
    containerId,
    netns,
    ifName,
    path: env.CNI_PATH ?? '',
    args: parseCniArgs(env.CNI_ARGS),
  };
}

/** Parses the network config from stdin. @throws CniError DecodeFailure / InvalidNetworkConfig / IncompatibleVersion */
export function parseNetConf(stdin: string): TendrilNetConf {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(
      CniCode.DecodeFailure,
      'the network config on stdin is not JSON',
      (err as Error).message,
    );
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new CniError(CniCode.InvalidNetworkConfig, 'the network config must be a JSON object');
  }
  const c = raw as Record<string, unknown>;
  const str = (k: string): string => {
    if (typeof c[k] !== 'string' || !(c[k] as string))
      throw new CniError(
        CniCode.InvalidNetworkConfig,
        `network config: "${k}" must be a non-empty string`,
      );
    return c[k] as string;
  };
  const cniVersion = str('cniVersion');
  if (!SUPPORTED_VERSIONS.includes(cniVersion)) {
    throw new CniError(
      CniCode.IncompatibleVersion,
      `unsupported cniVersion "${cniVersion}"`,
      `supported: ${SUPPORTED_VERSIONS.join(', ')}`,
    );
  }
  const conf: TendrilNetConf = {
    cniVersion,
    name: str('name'),
    type: str('type'),
    agentSocket: str('agentSocket'),
  };
  if (c.mtu !== undefined) {
    if (typeof c.mtu !== 'number' || !Number.isInteger(c.mtu) || c.mtu < 576 || c.mtu > 9000) {
      throw new CniError(
        CniCode.InvalidNetworkConfig,
        'network config: "mtu" must be an integer from 576 to 9000',
      );
    }
    conf.mtu = c.mtu;
  }
  if (typeof c.logFile === 'string') conf.logFile = c.logFile;
  if (c.prevResult && typeof c.prevResult === 'object')
    conf.prevResult = c.prevResult as TendrilNetConf['prevResult'];
  if (c.runtimeConfig && typeof c.runtimeConfig === 'object')
    conf.runtimeConfig = c.runtimeConfig as Record<string, unknown>;
  return conf;
}

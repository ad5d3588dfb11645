/**
 * CNI 1.0 wire types (the subset Tendril uses) and the plugin's error with a
 * CNI error code. See https://www.cni.dev/docs/spec/ (sections "Parameters",
 * "Result", "Error").
 */
export const CNI_VERSION = '1.0.0';
/** Versions the plugin accepts in a network config. */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0'];

/** Well-known CNI error codes. */
export const CniCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  ContainerUnknown: 3,
  InvalidEnv: 4,
  IOFailure: 5,
  DecodeFailure: 6,
  InvalidNetworkConfig: 7,
  TryAgainLater: 11,
  /** Plugin-specific (>= 100): the node's Tendril agent is unreachable. */
  AgentUnreachable: 100,
  /** Plugin-specific: the kernel refused an interface, address or route. */
  DatapathFailure: 101,
  /** Plugin-specific: the agent refused (IPAM exhausted, ...). */
  AgentRefused: 102,
} as const;

/** An error the plugin reports as a CNI error object on stdout. */
export class CniError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly details = '',
  ) {
    super(message);
    this.name = 'CniError';
  }

  /** The CNI error object. */
  toJSON(): { cniVersion: string; code: number; msg: string; details?: string } {
    return {
      cniVersion: CNI_VERSION,
      code: this.code,
      msg: this.message,
      ...(this.details ? { details: this.details } : {}),
    };
  }
}

/** The network config the plugin gets on stdin (a conflist's plugin entry with name and cniVersion). */
export interface TendrilNetConf {
  cniVersion: string;
  name: string;
  type: string;
  /** The node agent's Unix socket. */
  agentSocket: string;
  /** MTU for pod interfaces (the agent's answer wins when it gives one). */
  mtu?: number;
  /** Optional file the plugin appends one line per call to. */
  logFile?: string;
  prevResult?: CniResult;
  runtimeConfig?: Record<string, unknown>;
}

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION';

/** The CNI_* environment, parsed. */
export interface CniEnv {
  command: CniCommand;
  containerId: string;
  netns: string;
  ifName: string;
  path: string;
  /** CNI_ARGS as key/value pairs (K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_UID, ...). */
  args: Record<string, string>;
}

export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
}

export interface CniIP {
  address: string;
  gateway?: string;
  interface?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
  mtu?: number;
}

/** The CNI 1.0 success result. */
export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIP[];
  routes?: CniRoute[];
  dns?: { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] };
}

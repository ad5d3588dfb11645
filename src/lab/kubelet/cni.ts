/**
 * The kubelet's side of the CNI 1.0 contract (https://www.cni.dev/docs/spec/):
 * find the network configuration (the first *.conflist, *.conf or *.json in
 * the node's config directory, lexicographically), and run each plugin of
 * the list with the CNI_* environment, the plugin's config on stdin (name and
 * cniVersion injected, prevResult chained) and the result on stdout.
 * ADD runs the plugins in order, DEL in reverse, CHECK in order with the
 * cached ADD result.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TendrilError } from '../../util/errors.js';

/** A plugin entry of a network configuration list. */
export interface CniPluginConf {
  type: string;
  [k: string]: unknown;
}

/** A network configuration list (a single .conf is turned into a list of one). */
export interface CniNetworkList {
  cniVersion: string;
  name: string;
  plugins: CniPluginConf[];
  disableCheck?: boolean;
  /** The file it came from. */
  file: string;
}

/** The CNI result (the fields the kubelet reads). */
export interface CniResult {
  cniVersion: string;
  interfaces?: { name: string; mac?: string; sandbox?: string }[];
  ips?: { address: string; gateway?: string; interface?: number }[];
  routes?: { dst: string; gw?: string }[];
  dns?: unknown;
  [k: string]: unknown;
}

/** What identifies the pod to a plugin. */
export interface CniPodRef {
  containerId: string;
  netnsPath: string;
  ifName: string;
  namespace: string;
  name: string;
  uid: string;
}

/** A plugin failure: the plugin's error JSON (code, msg, details) or a runtime problem. */
export class CniError extends TendrilError {
  constructor(
    readonly cniCode: number,
    readonly msg: string,
    readonly details: string,
    readonly plugin: string,
    command: string,
  ) {
    super(
      'LAB_CNI_FAILED',
      `CNI ${command} with plugin "${plugin}" failed (code ${cniCode}): ${msg}${details ? ` (${details})` : ''}`,
    );
  }
}

/** The message Kubernetes shows while no network plugin is configured. */
export const NETWORK_NOT_READY_MESSAGE =
  'container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized';

/**
 * Loads the node's network configuration: the first *.conflist, *.conf or
 * *.json file in `confDir` (lexicographic order), or undefined when there is
 * none. Throws LAB_CNI_CONFIG for a file that is not a valid configuration.
 */
export function loadNetworkConfig(confDir: string): CniNetworkList | undefined {
  if (!existsSync(confDir)) return undefined;
  const files = readdirSync(confDir)
    .filter((f) => /\.(conflist|conf|json)$/.test(f))
    .sort();
  const f = files[0];
  if (!f) return undefined;
  const file = join(confDir, f);
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new TendrilError(
      'LAB_CNI_CONFIG',
      `CNI config ${file} is not JSON: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const bad = (why: string) => new TendrilError('LAB_CNI_CONFIG', `CNI config ${file}: ${why}`);
  if (typeof doc.name !== 'string' || !doc.name) throw bad('"name" is missing');
  const cniVersion = typeof doc.cniVersion === 'string' ? doc.cniVersion : '1.0.0';
  if (f.endsWith('.conflist') || Array.isArray(doc.plugins)) {
    if (!Array.isArray(doc.plugins) || doc.plugins.length === 0)
      throw bad('"plugins" must be a non-empty list');
    for (const p of doc.plugins as CniPluginConf[])
      if (typeof p?.type !== 'string') throw bad('every plugin needs a "type"');
    return {
      cniVersion,
      name: doc.name,
      plugins: doc.plugins as CniPluginConf[],
      disableCheck: doc.disableCheck === true,
      file,
    };
  }
  if (typeof doc.type !== 'string') throw bad('"type" is missing');
  const { cniVersion: _v, name: _n, ...plugin } = doc;
  return { cniVersion, name: doc.name, plugins: [plugin as CniPluginConf], file };
}

/** The CNI_* environment for one invocation (CNI_ARGS as a kubelet sets it). */
export function cniEnv(
  command: 'ADD' | 'DEL' | 'CHECK',
  pod: CniPodRef,
  binDir: string,
): Record<string, string> {
  return {
    CNI_COMMAND: command,
    CNI_CONTAINERID: pod.containerId,
    CNI_NETNS: pod.netnsPath,
    CNI_IFNAME: pod.ifName,
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${pod.namespace};K8S_POD_NAME=${pod.name};K8S_POD_INFRA_CONTAINER_ID=${pod.containerId};K8S_POD_UID=${pod.uid}`,
    CNI_PATH: binDir,
  };
}

/** The stdin of one plugin: its config with the list's name and cniVersion, and prevResult when given. */
export function pluginStdin(
  list: CniNetworkList,
  plugin: CniPluginConf,
  prevResult?: CniResult,
): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, cniVersion: list.cniVersion, name: list.name };
  if (prevResult !== undefined) conf.prevResult = prevResult;
  return conf;
}

/** Runs one plugin binary; resolves with its parsed stdout (undefined when empty). Throws CniError. */
export function execPlugin(
  binDir: string,
  plugin: CniPluginConf,
  env: Record<string, string>,
  stdin: Record<string, unknown>,
  timeoutMs = 60_000,
): Promise<unknown> {
  const command = env.CNI_COMMAND ?? '?';
  const path = join(binDir, plugin.type);
  if (!/^[A-Za-z0-9._-]+$/.test(plugin.type) || !existsSync(path)) {
    return Promise.reject(
      new CniError(
        999,
        `failed to find plugin "${plugin.type}" in path [${binDir}]`,
        '',
        plugin.type,
        command,
      ),
    );
  }
  return new Promise((resolve, reject) => {
    const child = spawn(path, [], {
      // like libcni: the runtime's environment plus the CNI_* variables
      env: { ...process.env, PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: timeoutMs,
    });
    let out = '';
    let errText = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (errText += b.toString()));
    child.on('error', (err) =>
      reject(new CniError(999, `cannot run ${path}: ${err.message}`, '', plugin.type, command)),
    );
    child.on('close', (code, sig) => {
      let parsed: Record<string, unknown> | undefined;
      try {
        parsed = out.trim() ? (JSON.parse(out) as Record<string, unknown>) : undefined;
      } catch {
        parsed = undefined;
      }
      if (code === 0) {
        if (out.trim() && parsed === undefined) {
          reject(
            new CniError(
              999,
              `plugin printed a result that is not JSON: ${out.slice(0, 200)}`,
              errText.trim(),
              plugin.type,
              command,
            ),
          );
        } else resolve(parsed);
        return;
      }
      if (parsed && typeof parsed.code === 'number') {
        reject(
          new CniError(
            parsed.code,
            String(parsed.msg ?? ''),
            String(parsed.details ?? ''),
            plugin.type,
            command,
          ),
        );
      } else {
        const why = sig ? `killed by ${sig}` : `exit status ${code}`;
        reject(
          new CniError(
            999,
            `plugin failed (${why})`,
            (errText || out).trim().slice(0, 500),
            plugin.type,
            command,
          ),
        );
      }
    });
    child.stdin.on('error', () => {});
    child.stdin.end(JSON.stringify(stdin));
  });
}

/** CNI ADD: every plugin in order, each getting the previous one's result; resolves with the last result. */
export async function cniAdd(
  list: CniNetworkList,
  pod: CniPodRef,
  binDir: string,
): Promise<CniResult> {
  let prev: CniResult | undefined;
  for (const p of list.plugins) {
    const r = (await execPlugin(
      binDir,
      p,
      cniEnv('ADD', pod, binDir),
      pluginStdin(list, p, prev),
    )) as CniResult | undefined;
    if (r === undefined)
      throw new CniError(999, 'plugin printed no result for ADD', '', p.type, 'ADD');
    prev = r;
  }
  return prev!;
}

/** CNI DEL: every plugin in reverse order, with the cached ADD result as prevResult. */
export async function cniDel(
  list: CniNetworkList,
  pod: CniPodRef,
  binDir: string,
  cached?: CniResult,
): Promise<void> {
  for (const p of [...list.plugins].reverse()) {
    await execPlugin(binDir, p, cniEnv('DEL', pod, binDir), pluginStdin(list, p, cached));
  }
}

/** CNI CHECK: every plugin in order with the cached ADD result (skipped when the list sets disableCheck). */
export async function cniCheck(
  list: CniNetworkList,
  pod: CniPodRef,
  binDir: string,
  cached: CniResult,
): Promise<void> {
  if (list.disableCheck) return;
  for (const p of list.plugins) {
    await execPlugin(binDir, p, cniEnv('CHECK', pod, binDir), pluginStdin(list, p, cached));
  }
}

/** The pod's IPv4 address from a CNI result (first ips[] entry, without prefix length). */
export function resultPodIPs(result: CniResult): string[] {
  return (result.ips ?? []).map((ip) => ip.address.split('/')[0]!).filter(Boolean);
}

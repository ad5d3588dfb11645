/**
 * What `tendril install` recorded about a lab cluster: the mesh-facing cluster
 * name and ID, routing mode and settings. Written once per install to
 * $TENDRIL_HOME/clusters/<lab cluster>/install.json; the agent, operator, status
 * and the clustermesh control plane read it. STABLE file format (version 1).
 */
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { TendrilError } from '../util/errors.js';
import { clusterDir, tendrilHome } from '../util/paths.js';
import type { RoutingMode } from '../datapath/types.js';
import { writeFileAtomicSync } from '../util/atomic-write.js';

export type IdentityAllocationMode = 'crd' | 'kvstore';

/** The recorded install of one lab cluster. */
export interface InstallState {
  version: 1;
  /** The lab cluster this install belongs to (directory name under clusters/). */
  labCluster: string;
  /** The cluster's name in the mesh (`--cluster-name`). */
  clusterName: string;
  /** 1..255; cluster-local identities carry it in bits 16-23. */
  clusterId: number;
  routingMode: RoutingMode;
  identityAllocationMode: IdentityAllocationMode;
  /** Every `--set key=value`, normalised (see SETTINGS). */
  settings: Record<string, string>;
  /** ISO time of the install. */
  installedAt: string;
}

/** Path of a lab cluster's install.json. */
export function installStatePath(labCluster: string): string {
  return join(clusterDir(labCluster), 'install.json');
}

/** Reads a lab cluster's install record; undefined when not installed. @throws TendrilError on a corrupt file. */
export function readInstallState(labCluster: string): InstallState | undefined {
  const p = installStatePath(labCluster);
  let text: string;
  try {
    text = readFileSync(p, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const st = JSON.parse(text) as InstallState;
    if (st.version !== 1 || typeof st.clusterName !== 'string' || typeof st.clusterId !== 'number')
      throw new Error('missing fields');
    return st;
  } catch (err) {
    throw new TendrilError('INSTALL_CORRUPT_STATE', `read ${p}: ${(err as Error).message}`, {
      hint: `run \`tendril uninstall\` for this cluster, or remove ${p} and install again`,
      cause: err,
    });
  }
}

/** Writes the install record atomically and durably. */
export function writeInstallState(st: InstallState): void {
  const p = installStatePath(st.labCluster);
  writeFileAtomicSync(p, JSON.stringify(st, null, 2) + '\n');
}

/** Removes the install record (no error when absent). */
export function removeInstallState(labCluster: string): void {
  rmSync(installStatePath(labCluster), { force: true });
}

/** Every install recorded under $TENDRIL_HOME/clusters (corrupt records skipped). */
export function listInstallStates(): InstallState[] {
  const root = join(tendrilHome(), 'clusters');
  if (!existsSync(root)) return [];
  const out: InstallState[] = [];
  for (const name of readdirSync(root)) {
    try {
      const st = readInstallState(name);
      if (st) out.push(st);
    } catch {
      // a corrupt record is reported by the commands that touch that cluster
    }
  }
  return out;
}

const NAME_RE = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/** Validates a mesh cluster name. @throws TendrilError install.InvalidClusterName */
export function validateClusterName(name: string): string {
  if (name.length === 0 || name.length > 32 || !NAME_RE.test(name)) {
    const why =
      name.length === 0
        ? 'it is empty'
        : name.length > 32
          ? `it has ${name.length} characters (at most 32)`
          : 'it must consist of lower-case letters, digits and "-", and start and end with a letter or digit';
    throw new TendrilError(
      'INSTALL_INVALID_CLUSTER_NAME',
      `invalid cluster name "${name}": ${why}`,
      {
        hint: 'choose a name like "cluster1" (at most 32 characters of a-z, 0-9 and "-")',
      },
    );
  }
  return name;
}

/**
 * Parses and validates a cluster ID (1..255, or 1..511 with `max-connected-clusters=511`).
 * @throws TendrilError install.InvalidClusterId
 */
export function validateClusterId(id: string | number, maxConnectedClusters = 255): number {
  const max = maxConnectedClusters;
  const n = typeof id === 'number' ? id : /^\d+$/.test(id.trim()) ? Number(id.trim()) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > max) {
    const needs511 = max === 255 && Number.isInteger(n) && n > 255 && n <= 511;
    throw new TendrilError(
      'INSTALL_INVALID_CLUSTER_ID',
      `invalid cluster ID "${id}": it must be an integer from 1 to ${max}${needs511 ? ' (max-connected-clusters is 255)' : ''}`,
      {
        hint: needs511
          ? 'cluster IDs above 255 need `--set max-connected-clusters=511` (in every cluster of the mesh), or pick an ID from 1 to 255'
          : `pass --cluster-id N with 1 <= N <= ${max}, unique among the clusters you mesh (or leave it out to have one picked)`,
      },
    );
  }
  return n;
}

/** The lowest cluster ID in 1..255 not in `used`. @throws TendrilError install.NoFreeClusterId */
export function pickClusterId(used: Iterable<number>): number {
  const taken = new Set(used);
  for (let i = 1; i <= 255; i++) if (!taken.has(i)) return i;
  throw new TendrilError(
    'INSTALL_NO_FREE_CLUSTER_ID',
    'every cluster ID from 1 to 255 is used by another lab cluster',
    {
      hint: 'uninstall a cluster you no longer need',
    },
  );
}

/** A `--set` key Tendril understands, with its allowed values and default. */
export interface SettingSpec {
  key: string;
  description: string;
  /** Returns the normalised value or throws a message. */
  parse(value: string): string;
  default?: string;
}

const oneOf =
  (...values: string[]) =>
  (v: string): string => {
    const x = v.toLowerCase();
    if (!values.includes(x)) throw new Error(`must be one of ${values.join(', ')}`);
    return x;
  };
const bool = oneOf('true', 'false');
const int = (min: number, max: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new Error(`must be an integer from ${min} to ${max}`);
  return String(n);
};
const duration = (v: string) => {
  if (!/^\d+(ms|s|m|h)$/.test(v)) throw new Error('must be a duration like 30s, 5m or 1h');
  return v;
};

/** Every `--set` key. Unknown keys are refused, so a typo is never ignored. */
export const SETTINGS: readonly SettingSpec[] = [
  {
    key: 'routing-mode',
    description: 'native (kernel routes over the underlay) or tunnel (VXLAN)',
    parse: oneOf('native', 'tunnel'),
    default: 'native',
  },
  {
    key: 'identity-allocation-mode',
    description: 'crd (CiliumIdentity objects) or kvstore',
    parse: oneOf('crd', 'kvstore'),
    default: 'crd',
  },
  {
    key: 'lb-algorithm',
    description: 'service backend selection: random or maglev',
    parse: oneOf('random', 'maglev'),
    default: 'random',
  },
  {
    key: 'mtu',
    description: 'underlay MTU (pods get it, minus 50 in tunnel mode)',
    parse: int(576, 9000),
    default: '1500',
  },
  { key: 'tunnel-port', description: 'VXLAN UDP port', parse: int(1, 65535), default: '8472' },
  {
    key: 'identity-gc-interval',
    description: 'how often the operator removes unused identities',
    parse: duration,
    default: '30s',
  },
  {
    key: 'clustermesh-cache-ttl',
    description: "how long a disconnected remote cluster's state is kept (default: forever)",
    parse: duration,
  },
  {
    key: 'policy-enforcement',
    description: 'network policy: default (enforced once a policy selects), always or never',
    parse: oneOf('default', 'always', 'never'),
    default: 'default',
  },
  {
    key: 'policy-default-local-cluster',
    description:
      'policy selectors without a cluster label match the local cluster only (Cilium 1.19)',
    parse: bool,
    default: 'true',
  },
  {
    key: 'hubble-enabled',
    description:
      'Hubble: flows on every agent, the Observer API and the relay (--set hubble.enabled=false: off)',
    parse: bool,
    default: 'true',
  },
  {
    key: 'bpf-ipcache-map-max',
    description:
      'max entries of the BPF ipcache map: every local and remote endpoint, node and CIDR (the agents warn at 90%, refuse above)',
    parse: int(1024, 4_194_304),
    default: '65536',
  },
  {
    key: 'max-connected-clusters',
    description:
      'largest cluster ID in the mesh: 255 or 511 (511 widens the identity cluster bits to 9, leaving 15 bits for cluster-local identities); the same in every cluster',
    parse: oneOf('255', '511'),
    default: '255',
  },
  {
    key: 'remote-service-import',
    description: 'import global services that exist only in remote clusters',
    parse: bool,
    default: 'true',
  },
];

/**
 * Parses `--set key=value` items into normalised settings (defaults filled in).
 * @throws TendrilError install.InvalidSetting naming the key and the allowed values.
 */
export function parseSettings(items: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of SETTINGS) if (s.default !== undefined) out[s.key] = s.default;
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) {
      throw new TendrilError(
        'INSTALL_INVALID_SETTING',
        `invalid --set "${item}": expected key=value`,
        {
          hint: `known keys: ${SETTINGS.map((s) => s.key).join(', ')}`,
        },
      );
    }
    const key = item.slice(0, eq).trim().replace(/\./g, '-');
    const value = item.slice(eq + 1).trim();
    const spec = SETTINGS.find(
      (s) => s.key === key || s.key.replace(/-/g, '') === key.replace(/-/g, '').toLowerCase(),
    );
    if (!spec) {
      throw new TendrilError('INSTALL_INVALID_SETTING', `unknown setting "${item.slice(0, eq)}"`, {
        hint: `known keys: ${SETTINGS.map((s) => s.key).join(', ')}`,
      });
    }
    try {
      out[spec.key] = spec.parse(value);
    } catch (err) {
      throw new TendrilError(
        'INSTALL_INVALID_SETTING',
        `invalid value "${value}" for ${spec.key}: ${(err as Error).message}`,
        {
          hint: `${spec.key}: ${spec.description}`,
        },
      );
    }
  }
  return out;
}

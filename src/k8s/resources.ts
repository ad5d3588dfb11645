/**
 * The kinds Tendril's API server serves, written once: group, version, kind,
 * plural, short names, scope, subresources. The API server builds discovery
 * from this table; the CLI resolves `deploy`, `deployments.apps`, `svc`, ...
 * with it; the client turns apiVersion + kind into a URL path.
 */
import { TendrilError } from '../util/errors.js';

/** One served resource. */
export interface ResourceInfo {
  group: string;
  version: string;
  kind: string;
  /** Lower-case plural used in URLs ("endpointslices"). */
  plural: string;
  singular: string;
  shortNames: string[];
  namespaced: boolean;
  /** Subresources served ("status"; "scale" for Deployments). */
  subresources: string[];
  categories: string[];
}

const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

/** Every resource the lab API server serves. */
export const RESOURCES: readonly ResourceInfo[] = [
  r('', 'v1', 'Namespace', 'namespaces', ['ns'], false, ['status']),
  r('', 'v1', 'Node', 'nodes', ['no'], false, ['status']),
  r('', 'v1', 'Pod', 'pods', ['po'], true, ['status', 'log', 'exec', 'attach'], ['all']),
  r('', 'v1', 'Service', 'services', ['svc'], true, ['status'], ['all']),
  r('', 'v1', 'Secret', 'secrets', [], true, []),
  r('', 'v1', 'ConfigMap', 'configmaps', ['cm'], true, []),
  r('', 'v1', 'Event', 'events', ['ev'], true, []),
  r('events.k8s.io', 'v1', 'Event', 'events', ['ev'], true, []),
  r('discovery.k8s.io', 'v1', 'EndpointSlice', 'endpointslices', [], true, []),
  r('apps', 'v1', 'Deployment', 'deployments', ['deploy'], true, ['status', 'scale'], ['all']),
  // served for the lab's reflections of Tendril's agents (src/lab/daemon-pods.ts): no controller runs them
  r('apps', 'v1', 'DaemonSet', 'daemonsets', ['ds'], true, ['status'], ['all']),
  r(
    'cilium.io',
    'v2',
    'CiliumNetworkPolicy',
    'ciliumnetworkpolicies',
    ['cnp', 'ciliumnp'],
    true,
    ['status'],
    ['cilium', 'ciliumpolicy'],
  ),
  r(
    'cilium.io',
    'v2',
    'CiliumClusterwideNetworkPolicy',
    'ciliumclusterwidenetworkpolicies',
    ['ccnp'],
    false,
    ['status'],
    ['cilium', 'ciliumpolicy'],
  ),
  r('networking.k8s.io', 'v1', 'NetworkPolicy', 'networkpolicies', ['netpol'], true, []),
  r('cilium.io', 'v2', 'CiliumIdentity', 'ciliumidentities', ['ciliumid'], false, [], ['cilium']),
  r(
    'cilium.io',
    'v2',
    'CiliumEndpoint',
    'ciliumendpoints',
    ['cep', 'ciliumep'],
    true,
    [],
    ['cilium'],
  ),
  r('multicluster.x-k8s.io', 'v1alpha1', 'ServiceExport', 'serviceexports', ['svcex'], true, [
    'status',
  ]),
  r('multicluster.x-k8s.io', 'v1alpha1', 'ServiceImport', 'serviceimports', ['svcim'], true, [
    'status',
  ]),
];

function r(
  group: string,
  version: string,
  kind: string,
  plural: string,
  shortNames: string[],
  namespaced: boolean,
  subresources: string[],
  categories: string[] = [],
): ResourceInfo {
  return {
    group,
    version,
    kind,
    plural,
    singular: kind.toLowerCase(),
    shortNames,
    namespaced,
    subresources,
    categories,
  };
}

/** The verbs every resource supports. */
export function resourceVerbs(): string[] {
  return [...VERBS];
}

/** "apps/v1" or "v1". */
export function apiVersionOf(info: Pick<ResourceInfo, 'group' | 'version'>): string {
  return info.group ? `${info.group}/${info.version}` : info.version;
}

/** Splits an apiVersion into group and version ("v1" -> group ""). */
export function parseApiVersion(apiVersion: string): { group: string; version: string } {
  const i = apiVersion.indexOf('/');
  return i < 0
    ? { group: '', version: apiVersion }
    : { group: apiVersion.slice(0, i), version: apiVersion.slice(i + 1) };
}

/** Finds the resource for an apiVersion + kind; undefined if not served. */
export function resourceForKind(apiVersion: string, kind: string): ResourceInfo | undefined {
  const { group, version } = parseApiVersion(apiVersion);
  return RESOURCES.find((x) => x.group === group && x.version === version && x.kind === kind);
}

/** Finds the resource served at group/version/plural. */
export function resourceForPath(
  group: string,
  version: string,
  plural: string,
): ResourceInfo | undefined {
  return RESOURCES.find((x) => x.group === group && x.version === version && x.plural === plural);
}

/** All served groups with their versions (core group "" first). */
export function servedGroups(): Array<{ group: string; versions: string[] }> {
  const out: Array<{ group: string; versions: string[] }> = [];
  for (const x of RESOURCES) {
    let g = out.find((o) => o.group === x.group);
    if (!g) out.push((g = { group: x.group, versions: [] }));
    if (!g.versions.includes(x.version)) g.versions.push(x.version);
  }
  return out;
}

/**
 * Resolves what a person types after `get`/`delete`: plural, singular, kind,
 * short name, optionally qualified with a group ("deployments.apps",
 * "deploy.apps", "endpointslices.discovery.k8s.io") or group/version
 * ("deployments.v1.apps"). Case-insensitive.
 * @throws TendrilError code `K8S_UNKNOWN_RESOURCE` listing what is served.
 */
export function resolveResourceName(name: string): ResourceInfo {
  const n = name.toLowerCase();
  const matches = (x: ResourceInfo, word: string) =>
    word === x.plural ||
    word === x.singular ||
    word === x.kind.toLowerCase() ||
    x.shortNames.includes(word);
  for (const x of RESOURCES) if (matches(x, n)) return x;
  const dot = n.indexOf('.');
  if (dot > 0) {
    const word = n.slice(0, dot);
    const rest = n.slice(dot + 1);
    for (const x of RESOURCES) {
      if (!matches(x, word)) continue;
      if (
        rest === x.group ||
        rest === `${x.version}.${x.group}` ||
        (x.group === '' && rest === x.version)
      )
        return x;
    }
  }
  throw new TendrilError(
    'K8S_UNKNOWN_RESOURCE',
    `the server doesn't have a resource type "${name}"`,
    {
      hint: `known resource types: ${RESOURCES.map((x) => x.plural + (x.shortNames[0] ? ` (${x.shortNames[0]})` : '')).join(', ')}`,
    },
  );
}

/** The URL path of a collection or object: /api/v1/namespaces/ns/pods[/name[/sub]]. */
export function resourcePath(
  info: ResourceInfo,
  options: { namespace?: string; name?: string; subresource?: string } = {},
): string {
  const base = info.group ? `/apis/${info.group}/${info.version}` : `/api/${info.version}`;
  let p = base;
  if (info.namespaced && options.namespace)
    p += `/namespaces/${encodeURIComponent(options.namespace)}`;
  p += `/${info.plural}`;
  if (options.name !== undefined) p += `/${encodeURIComponent(options.name)}`;
  if (options.subresource) p += `/${options.subresource}`;
  return p;
}

/** "deployment.apps" style name used in kubectl output (`deployment.apps/echo created`). */
export function kindDotGroup(info: ResourceInfo): string {
  return info.group ? `${info.singular}.${info.group}` : info.singular;
}

/** "deployments.apps" style name used in error messages. */
export function pluralDotGroup(info: ResourceInfo): string {
  return info.group ? `${info.plural}.${info.group}` : info.plural;
}

/**
 * The resource of a served kind by kind name alone ("Pod", "Deployment").
 * @throws TendrilError `K8S_UNKNOWN_RESOURCE` for a kind that is not served.
 */
export function infoByKind(kind: string): ResourceInfo {
  const r = RESOURCES.find((x) => x.kind === kind);
  if (!r) throw new TendrilError('K8S_UNKNOWN_RESOURCE', `kind ${kind} is not served`);
  return r;
}

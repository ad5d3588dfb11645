/**
 * Discovery documents (/api, /api/v1, /apis, /apis/<group>[/<version>]) built
 * from the resource table, in the shapes kubectl and client-node read.
 */
import { RESOURCES, resourceVerbs, servedGroups, type ResourceInfo } from '../../k8s/resources.js';

function apiResource(r: ResourceInfo): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [
    {
      name: r.plural,
      singularName: r.singular,
      namespaced: r.namespaced,
      kind: r.kind,
      verbs: resourceVerbs(),
      ...(r.shortNames.length ? { shortNames: r.shortNames } : {}),
      ...(r.categories.length ? { categories: r.categories } : {}),
      storageVersionHash: '',
    },
  ];
  for (const sub of r.subresources) {
    out.push({ name: `${r.plural}/${sub}`, singularName: '', namespaced: r.namespaced, kind: r.kind, verbs: ['get', 'patch', 'update'] });
  }
  return out;
}

/** GET /api */
export function apiVersions(serverAddress: string): Record<string, unknown> {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

/** GET /api/<v> or /apis/<g>/<v>; undefined when not served. */
export function resourceList(group: string, version: string): Record<string, unknown> | undefined {
  const rs = RESOURCES.filter((r) => r.group === group && r.version === version);
  if (rs.length === 0) return undefined;
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: group ? `${group}/${version}` : version,
    resources: rs.flatMap(apiResource),
  };
}

function groupDoc(group: string, versions: string[]): Record<string, unknown> {
  const gv = versions.map((v) => ({ groupVersion: `${group}/${v}`, version: v }));
  return { kind: 'APIGroup', apiVersion: 'v1', name: group, versions: gv, preferredVersion: gv[0] };
}

/** GET /apis */
export function apiGroupList(): Record<string, unknown> {
  const groups = servedGroups()
    .filter((g) => g.group !== '')
    .map((g) => {
      const d = groupDoc(g.group, g.versions);
      delete d.kind;
      delete d.apiVersion;
      return d;
    });
  return { kind: 'APIGroupList', apiVersion: 'v1', groups };
}

/** GET /apis/<group>; undefined when not served. */
export function apiGroup(group: string): Record<string, unknown> | undefined {
  const g = servedGroups().find((x) => x.group === group && group !== '');
  return g ? groupDoc(g.group, g.versions) : undefined;
}

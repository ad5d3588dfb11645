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
    const scale = sub === 'scale';
    const stream = STREAM_SUBRESOURCES[sub];
    out.push({
      name: `${r.plural}/${sub}`,
      singularName: '',
      namespaced: r.namespaced,
      kind: stream ? stream.kind : scale ? 'Scale' : r.kind,
      ...(scale ? { group: 'autoscaling', version: 'v1' } : {}),
      verbs: stream ? stream.verbs : ['get', 'patch', 'update'],
    });
  }
  return out;
}

/** The pods' streaming subresources, as Kubernetes' discovery lists them. */
const STREAM_SUBRESOURCES: Record<string, { kind: string; verbs: string[] }> = {
  log: { kind: 'Pod', verbs: ['get'] },
  exec: { kind: 'PodExecOptions', verbs: ['create', 'get'] },
  attach: { kind: 'PodAttachOptions', verbs: ['create', 'get'] },
  portforward: { kind: 'PodPortForwardOptions', verbs: ['create', 'get'] },
};

/** GET /api */
export function apiVersions(serverAddress: string): Record<string, unknown> {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
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

/**
 * GET /openapi/v3: the index of per-group-version documents. The documents
 * are minimal: they only declare the resource paths and their operations with
 * `x-kubernetes-group-version-kind` and the `fieldValidation` query parameter,
 * which is what kubectl reads to decide that the server validates (so it skips
 * client-side schema validation). No schemas are served.
 */
export function openapiV3Index(): Record<string, unknown> {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const g of servedGroups()) {
    for (const v of g.versions) {
      const key = g.group ? `apis/${g.group}/${v}` : `api/${v}`;
      paths[key] = { serverRelativeURL: `/openapi/v3/${key}?hash=tendril1` };
    }
  }
  return { paths };
}

/** GET /openapi/v3/api/v1 or /openapi/v3/apis/<g>/<v>; undefined when not served. */
export function openapiV3Doc(group: string, version: string): Record<string, unknown> | undefined {
  const rs = RESOURCES.filter((r) => r.group === group && r.version === version);
  if (rs.length === 0) return undefined;
  const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
  const param = (name: string) => ({
    name,
    in: 'query',
    schema: { type: 'string', uniqueItems: true },
  });
  const paths: Record<string, unknown> = {};
  for (const r of rs) {
    const gvk = { group, version, kind: r.kind };
    const op = (action: string, params: string[]) => ({
      operationId: `${action}${r.kind}`,
      'x-kubernetes-action': action,
      'x-kubernetes-group-version-kind': gvk,
      parameters: params.map(param),
      responses: { '200': { description: 'OK' } },
    });
    const coll = r.namespaced
      ? `${base}/namespaces/{namespace}/${r.plural}`
      : `${base}/${r.plural}`;
    paths[coll] = {
      get: op('list', ['labelSelector', 'fieldSelector', 'resourceVersion', 'watch']),
      post: op('post', ['dryRun', 'fieldManager', 'fieldValidation']),
    };
    paths[`${coll}/{name}`] = {
      get: op('get', []),
      put: op('put', ['dryRun', 'fieldManager', 'fieldValidation']),
      patch: op('patch', ['dryRun', 'fieldManager', 'fieldValidation', 'force']),
      delete: op('delete', ['dryRun', 'gracePeriodSeconds', 'propagationPolicy']),
    };
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes (Tendril lab subset)', version: 'v1.32.0' },
    paths,
    components: { schemas: {} },
  };
}

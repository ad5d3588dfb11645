/**
 * Renders every object Tendril needs on a real cluster, in apply order
 * (CRDs, RBAC, config, workloads), and prints them as multi-document YAML or
 * as a JSON List. Used by `tendril install --dry-run` and by
 * `npm run render-manifests`, which writes deploy/kubernetes/.
 */
import { stringify } from 'yaml';
import type { KubeObject } from '../../k8s/objects.js';
import { customResourceDefinitions } from './crds.js';
import { NAMES } from './names.js';
import type { ManifestOptions } from './options.js';
import { daemonRBAC } from './rbac.js';
import {
  agentDaemonSet,
  clusterMeshObjects,
  cniConfigMap,
  configMap,
  dnsObjects,
  kubeconfigMap,
  operatorDeployment,
} from './workloads.js';

/** Output formats of a render. */
export type ManifestFormat = 'yaml' | 'json';

/**
 * Every object of an install: CRDs, per-daemon ServiceAccount/ClusterRole/
 * ClusterRoleBinding, the config maps, the agent DaemonSet, the operator and
 * DNS Deployments (and the DNS Service); with `o.clustermesh`, also the
 * clustermesh-apiserver's objects. Pure.
 */
export function renderManifests(o: ManifestOptions): KubeObject[] {
  const out: KubeObject[] = [
    ...customResourceDefinitions(),
    ...daemonRBAC(o, NAMES.agent),
    ...daemonRBAC(o, NAMES.operator),
    ...daemonRBAC(o, NAMES.dns),
    configMap(o),
    kubeconfigMap(o),
    cniConfigMap(o),
    agentDaemonSet(o),
    operatorDeployment(o),
    ...dnsObjects(o),
  ];
  if (o.clustermesh) out.push(...renderClusterMesh(o));
  return out;
}

/** The clustermesh-apiserver's objects only (RBAC, etcd client config, Deployment, Service). */
export function renderClusterMesh(o: ManifestOptions): KubeObject[] {
  return [...daemonRBAC(o, NAMES.meshApiserver), ...clusterMeshObjects(o)];
}

/** Multi-document YAML ("---" between objects), or a JSON `v1 List`; ends with a newline. */
export function formatManifests(objects: readonly KubeObject[], format: ManifestFormat): string {
  if (format === 'json')
    return JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }, null, 2) + '\n';
  return objects.map((x) => stringify(x, { lineWidth: 0, singleQuote: true })).join('---\n');
}

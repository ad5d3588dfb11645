/**
 * ServiceAccounts, ClusterRoles and ClusterRoleBindings: least privilege per
 * daemon, from what each daemon's code reads and writes (docs/kubernetes.md
 * lists it). Only the operator writes CiliumIdentities; only the agent writes
 * CiliumEndpoints; nobody writes Secrets or Deployments.
 */
import type { KubeObject } from '../../k8s/objects.js';
import { NAMES } from './names.js';
import type { ManifestOptions } from './options.js';

/** One rule of a ClusterRole. */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

const READ = ['get', 'list', 'watch'];
const CORE = '';
const DISCOVERY = 'discovery.k8s.io';
const CILIUM = 'cilium.io';
const MCS = 'multicluster.x-k8s.io';

/** What each daemon may do, per ServiceAccount name. */
export const DAEMON_RULES: Readonly<Record<string, readonly PolicyRule[]>> = {
  // agent: pods/nodes/services/slices for the datapath, identities to resolve, its own endpoints
  [NAMES.agent]: [
    { apiGroups: [CORE], resources: ['pods', 'nodes', 'namespaces', 'services'], verbs: READ },
    { apiGroups: [DISCOVERY], resources: ['endpointslices'], verbs: READ },
    {
      apiGroups: [CILIUM],
      resources: ['ciliumidentities', 'ciliumnetworkpolicies', 'ciliumclusterwidenetworkpolicies'],
      verbs: READ,
    },
    {
      apiGroups: [CILIUM],
      resources: ['ciliumendpoints'],
      verbs: [...READ, 'create', 'update', 'patch', 'delete'],
    },
    // Kubernetes NetworkPolicy, for the policy work that serves it beside the Cilium kinds
    { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: READ },
    { apiGroups: [MCS], resources: ['serviceexports'], verbs: READ },
  ],
  // operator: identities, node pod CIDRs, MCS imports and the derived services, global slices
  [NAMES.operator]: [
    { apiGroups: [CORE], resources: ['pods'], verbs: READ },
    { apiGroups: [CORE], resources: ['nodes'], verbs: [...READ, 'patch'] },
    { apiGroups: [CORE], resources: ['namespaces'], verbs: ['get', 'list', 'watch', 'create'] },
    {
      apiGroups: [CORE],
      resources: ['services'],
      verbs: [...READ, 'create', 'update', 'delete'],
    },
    { apiGroups: [DISCOVERY], resources: ['endpointslices'], verbs: [...READ, 'create', 'update'] },
    { apiGroups: [CILIUM], resources: ['ciliumidentities'], verbs: [...READ, 'create', 'delete'] },
    { apiGroups: [MCS], resources: ['serviceexports'], verbs: READ },
    {
      apiGroups: [MCS],
      resources: ['serviceimports'],
      verbs: [...READ, 'create', 'update', 'delete'],
    },
  ],
  // DNS: answers from services, slices and imports; writes nothing
  [NAMES.dns]: [
    { apiGroups: [CORE], resources: ['services'], verbs: READ },
    { apiGroups: [DISCOVERY], resources: ['endpointslices'], verbs: READ },
    { apiGroups: [MCS], resources: ['serviceimports'], verbs: READ },
  ],
  // clustermesh-apiserver: exports this cluster's state into its etcd; writes nothing in Kubernetes
  [NAMES.meshApiserver]: [
    { apiGroups: [CORE], resources: ['nodes', 'services'], verbs: READ },
    { apiGroups: [DISCOVERY], resources: ['endpointslices'], verbs: READ },
    { apiGroups: [CILIUM], resources: ['ciliumidentities', 'ciliumendpoints'], verbs: READ },
    { apiGroups: [MCS], resources: ['serviceexports'], verbs: READ },
  ],
};

function labels(name: string): Record<string, string> {
  return { 'app.kubernetes.io/name': name, 'app.kubernetes.io/part-of': 'tendril' };
}

/** ServiceAccount, ClusterRole and ClusterRoleBinding of one daemon. */
export function daemonRBAC(o: Pick<ManifestOptions, 'namespace'>, name: string): KubeObject[] {
  const rules = DAEMON_RULES[name];
  if (!rules) throw new Error(`no RBAC rules for ${name}`);
  return [
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name, namespace: o.namespace, labels: labels(name) },
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name, labels: labels(name) },
      rules: rules.map((r) => ({ ...r })),
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name, labels: labels(name) },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace: o.namespace }],
    },
  ] as KubeObject[];
}

/** One API request as RBAC sees it. */
export interface ResourceRequest {
  verb: string;
  /** API group ("" for the core group). */
  group: string;
  /** Plural resource, with "/subresource" when there is one ("nodes/status"). */
  resource: string;
}

/**
 * Whether a list of ClusterRole rules allows a request, as Kubernetes' RBAC
 * authorizer decides (rules only add; "*" matches anything). Lets the lab's
 * API server answer 403 from the same rules the cluster's ClusterRoles carry.
 */
export function rulesAllow(rules: readonly PolicyRule[], req: ResourceRequest): boolean {
  const has = (list: readonly string[], x: string) => list.includes('*') || list.includes(x);
  return rules.some(
    (r) => has(r.apiGroups, req.group) && has(r.resources, req.resource) && has(r.verbs, req.verb),
  );
}

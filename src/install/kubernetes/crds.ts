/**
 * The CustomResourceDefinitions of the kinds Tendril reads and writes, with
 * Cilium's and the Multi-Cluster Services API's group/version/kind names and
 * OpenAPI v3 schemas for the fields Tendril uses:
 *
 *   cilium.io/v2                      CiliumIdentity, CiliumEndpoint, CiliumNetworkPolicy,
 *                                     CiliumClusterwideNetworkPolicy
 *   multicluster.x-k8s.io/v1alpha1    ServiceExport, ServiceImport
 *
 * Policy rules keep unknown fields (`x-kubernetes-preserve-unknown-fields`):
 * a real API server prunes fields a structural schema does not name, and a
 * pruned `toFQDNs` would turn a narrow egress rule into a wide one; kept, the
 * agent sees the field and refuses the rule it cannot enforce.
 */
import type { KubeObject } from '../../k8s/objects.js';

/** A JSON-schema node of an openAPIV3Schema (loosely typed: the schema is data). */
export type Schema = Record<string, unknown>;

const str = (description?: string): Schema => ({
  type: 'string',
  ...(description ? { description } : {}),
});
const int = (description?: string): Schema => ({
  type: 'integer',
  format: 'int64',
  ...(description ? { description } : {}),
});
const arr = (items: Schema, description?: string): Schema => ({
  type: 'array',
  items,
  ...(description ? { description } : {}),
});
const obj = (properties: Record<string, Schema>, extra: Schema = {}): Schema => ({
  type: 'object',
  properties,
  ...extra,
});
const stringMap = (description?: string): Schema => ({
  type: 'object',
  additionalProperties: { type: 'string' },
  ...(description ? { description } : {}),
});

/** metav1.LabelSelector. */
const labelSelector: Schema = obj(
  {
    matchLabels: stringMap('labels the endpoint must carry ("k8s:" prefix optional)'),
    matchExpressions: arr(
      obj(
        {
          key: str(),
          operator: { type: 'string', enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] },
          values: arr(str()),
        },
        { required: ['key', 'operator'] },
      ),
    ),
  },
  { 'x-kubernetes-map-type': 'atomic' },
);

const portProtocol: Schema = { type: 'string', enum: ['TCP', 'UDP', 'SCTP', 'ICMP', 'ANY'] };
const toPorts: Schema = arr(
  obj(
    {
      ports: arr(
        obj(
          {
            port: { type: 'string', description: 'a port number (or name)' },
            endPort: { type: 'integer', format: 'int32', minimum: 0, maximum: 65535 },
            protocol: portProtocol,
          },
          { required: ['port'] },
        ),
      ),
    },
    { 'x-kubernetes-preserve-unknown-fields': true },
  ),
);
const cidrSet: Schema = arr(
  obj(
    { cidr: str(), except: arr(str()), cidrGroupRef: str() },
    { 'x-kubernetes-preserve-unknown-fields': true },
  ),
);
const entities: Schema = arr({
  type: 'string',
  enum: [
    'all',
    'world',
    'cluster',
    'host',
    'remote-node',
    'kube-apiserver',
    'health',
    'init',
    'ingress',
    'unmanaged',
    'none',
  ],
});

function ruleSchema(dir: 'from' | 'to'): Schema {
  return obj(
    {
      [`${dir}Endpoints`]: arr(labelSelector),
      [`${dir}Requires`]: arr(labelSelector),
      [`${dir}Entities`]: entities,
      [`${dir}CIDR`]: arr(str()),
      [`${dir}CIDRSet`]: cidrSet,
      toPorts,
    },
    { 'x-kubernetes-preserve-unknown-fields': true },
  );
}

/** One CiliumNetworkPolicy rule (api.Rule): the subject selector and ingress/egress allow and deny rules. */
const policyRule: Schema = obj(
  {
    description: str(),
    endpointSelector: labelSelector,
    nodeSelector: labelSelector,
    ingress: arr(ruleSchema('from')),
    ingressDeny: arr(ruleSchema('from')),
    egress: arr(ruleSchema('to')),
    egressDeny: arr(ruleSchema('to')),
    labels: arr(obj({ key: str(), value: str(), source: str() }, { required: ['key'] })),
  },
  { 'x-kubernetes-preserve-unknown-fields': true },
);

const policyStatus: Schema = obj({
  conditions: arr(
    obj(
      {
        type: str(),
        status: { type: 'string', enum: ['True', 'False', 'Unknown'] },
        lastTransitionTime: { type: 'string', format: 'date-time' },
        message: str(),
        reason: str(),
      },
      { required: ['type', 'status'] },
    ),
  ),
  derivativePolicies: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
  nodes: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
});

const policySchema = (description: string): Schema =>
  obj(
    {
      apiVersion: str(),
      kind: str(),
      metadata: { type: 'object' },
      spec: policyRule,
      specs: arr(policyRule),
      status: policyStatus,
    },
    { description, required: ['metadata'] },
  );

const condition: Schema = obj(
  {
    type: str(),
    status: { type: 'string', enum: ['True', 'False', 'Unknown'] },
    lastTransitionTime: { type: 'string', format: 'date-time' },
    reason: str(),
    message: str(),
  },
  { required: ['type', 'status'] },
);

/** The kinds, each with what its CRD says about it. */
interface CRDSpec {
  group: string;
  version: string;
  kind: string;
  plural: string;
  shortNames: string[];
  categories?: string[];
  scope: 'Namespaced' | 'Cluster';
  status: boolean;
  schema: Schema;
  columns?: Array<{ name: string; type: string; jsonPath: string; description?: string }>;
}

const CRD_SPECS: readonly CRDSpec[] = [
  {
    group: 'cilium.io',
    version: 'v2',
    kind: 'CiliumIdentity',
    plural: 'ciliumidentities',
    shortNames: ['ciliumid'],
    categories: ['cilium'],
    scope: 'Cluster',
    status: false,
    schema: obj(
      {
        apiVersion: str(),
        kind: str(),
        metadata: { type: 'object' },
        'security-labels': stringMap(
          'the identity\'s labels, "source:key" -> value; the object\'s name is the numeric identity',
        ),
      },
      {
        description: 'a security identity allocated by the operator (CRD identity allocation mode)',
        required: ['metadata', 'security-labels'],
      },
    ),
    columns: [
      {
        name: 'Namespace',
        type: 'string',
        jsonPath: '.metadata.labels.io\\.kubernetes\\.pod\\.namespace',
      },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  },
  {
    group: 'cilium.io',
    version: 'v2',
    kind: 'CiliumEndpoint',
    plural: 'ciliumendpoints',
    shortNames: ['cep', 'ciliumep'],
    categories: ['cilium'],
    scope: 'Namespaced',
    // Cilium's agents write the whole object (no status subresource); so do Tendril's.
    status: false,
    schema: obj(
      {
        apiVersion: str(),
        kind: str(),
        metadata: { type: 'object' },
        status: obj(
          {
            id: int("the endpoint's ID on its node"),
            identity: obj({ id: int(), labels: arr(str()) }),
            networking: obj({
              addressing: arr(obj({ ipv4: str(), ipv6: str() })),
              node: str("the node's IP"),
            }),
            state: str(),
            'external-identifiers': obj({
              'container-id': str(),
              'k8s-namespace': str(),
              'k8s-pod-name': str(),
              'pod-name': str(),
            }),
          },
          { 'x-kubernetes-preserve-unknown-fields': true },
        ),
      },
      { description: "a pod endpoint as its node's agent sees it", required: ['metadata'] },
    ),
    columns: [
      { name: 'Security Identity', type: 'integer', jsonPath: '.status.identity.id' },
      { name: 'Endpoint State', type: 'string', jsonPath: '.status.state' },
      { name: 'IPv4', type: 'string', jsonPath: '.status.networking.addressing[0].ipv4' },
    ],
  },
  {
    group: 'cilium.io',
    version: 'v2',
    kind: 'CiliumNetworkPolicy',
    plural: 'ciliumnetworkpolicies',
    shortNames: ['cnp', 'ciliumnp'],
    categories: ['cilium', 'ciliumpolicy'],
    scope: 'Namespaced',
    status: true,
    schema: policySchema('L3/L4 policy over the identities of one namespace'),
    columns: [{ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }],
  },
  {
    group: 'cilium.io',
    version: 'v2',
    kind: 'CiliumClusterwideNetworkPolicy',
    plural: 'ciliumclusterwidenetworkpolicies',
    shortNames: ['ccnp'],
    categories: ['cilium', 'ciliumpolicy'],
    scope: 'Cluster',
    status: true,
    schema: policySchema('L3/L4 policy over the identities of the whole cluster'),
    columns: [{ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }],
  },
  {
    group: 'multicluster.x-k8s.io',
    version: 'v1alpha1',
    kind: 'ServiceExport',
    plural: 'serviceexports',
    shortNames: ['svcex'],
    scope: 'Namespaced',
    status: true,
    schema: obj(
      {
        apiVersion: str(),
        kind: str(),
        metadata: { type: 'object' },
        status: obj({
          conditions: {
            ...arr(condition),
            'x-kubernetes-list-type': 'map',
            'x-kubernetes-list-map-keys': ['type'],
          },
        }),
      },
      {
        description:
          'declares that the Service of the same name and namespace is exported to the clusterset',
      },
    ),
    columns: [{ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }],
  },
  {
    group: 'multicluster.x-k8s.io',
    version: 'v1alpha1',
    kind: 'ServiceImport',
    plural: 'serviceimports',
    shortNames: ['svcim'],
    scope: 'Namespaced',
    status: true,
    schema: obj(
      {
        apiVersion: str(),
        kind: str(),
        metadata: { type: 'object' },
        spec: obj(
          {
            ports: {
              ...arr(
                obj(
                  {
                    name: str(),
                    protocol: { type: 'string', enum: ['TCP', 'UDP', 'SCTP'] },
                    appProtocol: str(),
                    port: { type: 'integer', format: 'int32', minimum: 1, maximum: 65535 },
                  },
                  { required: ['port'] },
                ),
              ),
              'x-kubernetes-list-type': 'atomic',
            },
            ips: { ...arr(str()), maxItems: 1 },
            type: { type: 'string', enum: ['ClusterSetIP', 'Headless'] },
            sessionAffinity: { type: 'string', enum: ['ClientIP', 'None'] },
            sessionAffinityConfig: obj({
              clientIP: obj({
                timeoutSeconds: {
                  type: 'integer',
                  format: 'int32',
                  minimum: 1,
                  maximum: 86400,
                },
              }),
            }),
          },
          { required: ['ports', 'type'] },
        ),
        status: obj({
          clusters: {
            ...arr(obj({ cluster: str() }, { required: ['cluster'] })),
            'x-kubernetes-list-type': 'map',
            'x-kubernetes-list-map-keys': ['cluster'],
          },
        }),
      },
      { description: 'a service imported from the clusterset (written by the operator)' },
    ),
    columns: [
      { name: 'Type', type: 'string', jsonPath: '.spec.type' },
      { name: 'IP', type: 'string', jsonPath: '.spec.ips' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  },
];

/** The CRDs' group/version/kind, in render order. */
export const CRD_KINDS: ReadonlyArray<{ apiVersion: string; kind: string; plural: string }> =
  CRD_SPECS.map((s) => ({ apiVersion: `${s.group}/${s.version}`, kind: s.kind, plural: s.plural }));

/** The openAPIV3Schema of a CRD kind (for validating custom resources). */
export function crdSchema(apiVersion: string, kind: string): Schema | undefined {
  return CRD_SPECS.find((s) => `${s.group}/${s.version}` === apiVersion && s.kind === kind)?.schema;
}

/** Every CustomResourceDefinition Tendril needs (apiextensions.k8s.io/v1). */
export function customResourceDefinitions(): KubeObject[] {
  return CRD_SPECS.map(
    (s) =>
      ({
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: {
          name: `${s.plural}.${s.group}`,
          labels: { 'app.kubernetes.io/part-of': 'tendril' },
        },
        spec: {
          group: s.group,
          names: {
            kind: s.kind,
            listKind: `${s.kind}List`,
            plural: s.plural,
            singular: s.kind.toLowerCase(),
            shortNames: [...s.shortNames],
            ...(s.categories ? { categories: [...s.categories] } : {}),
          },
          scope: s.scope,
          versions: [
            {
              name: s.version,
              served: true,
              storage: true,
              schema: { openAPIV3Schema: s.schema },
              ...(s.status ? { subresources: { status: {} } } : {}),
              ...(s.columns ? { additionalPrinterColumns: s.columns } : {}),
            },
          ],
        },
      }) as unknown as KubeObject,
  );
}

/**
 * Every rendered object against the Kubernetes OpenAPI schemas (kubernetes-models'
 * validators, generated from Kubernetes' own OpenAPI spec), and sample custom
 * resources built by Tendril's own code against the CRDs' openAPIV3Schema (ajv).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Ajv, type ValidateFunction } from 'ajv';
import { ConfigMap, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { DaemonSet, Deployment } from 'kubernetes-models/apps/v1';
import { ClusterRole, ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1';
import * as k8s from '@kubernetes/client-node';
import type { KubeObject } from '../../k8s/objects.js';
import { identityObject } from '../../identity/crd-backend.js';
import { ciliumEndpointObject } from '../../agent/k8s/sources.js';
import { serviceImportManifest } from '../../services/mcs.js';
import { CRD_KINDS, crdSchema, type Schema } from './crds.js';
import { MESH_SECRETS } from './names.js';
import { resolveManifestOptions } from './options.js';
import { renderManifests } from './render.js';
import { meshSecret } from './workloads.js';

/** kubernetes-models' class per apiVersion/kind. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the model classes take their kind's typed shape
const MODELS: Record<string, new (o: any) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/DaemonSet': DaemonSet,
  'apps/v1/Deployment': Deployment,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'apiextensions.k8s.io/v1/CustomResourceDefinition': CustomResourceDefinition,
};

/** client-node's model class name per apiVersion/kind (for its attribute maps). */
const CLIENT_MODELS: Record<string, string> = {
  'v1/ConfigMap': 'V1ConfigMap',
  'v1/Secret': 'V1Secret',
  'v1/Service': 'V1Service',
  'v1/ServiceAccount': 'V1ServiceAccount',
  'apps/v1/DaemonSet': 'V1DaemonSet',
  'apps/v1/Deployment': 'V1Deployment',
  'rbac.authorization.k8s.io/v1/ClusterRole': 'V1ClusterRole',
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': 'V1ClusterRoleBinding',
  'apiextensions.k8s.io/v1/CustomResourceDefinition': 'V1CustomResourceDefinition',
};

type AttributeMap = Array<{ baseName: string; type: string }>;

/**
 * Fields the Kubernetes API does not know (what `kubectl apply`'s strict field
 * validation refuses), found by walking the object along @kubernetes/client-node's
 * generated models (their attribute maps come from the same OpenAPI spec).
 */
function unknownFields(value: unknown, type: string, path: string): string[] {
  if (value === null || value === undefined) return [];
  const arr = /^Array<(.+)>$/.exec(type);
  if (arr)
    return Array.isArray(value)
      ? value.flatMap((v, i) => unknownFields(v, arr[1]!, `${path}[${i}]`))
      : [];
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map)
    return Object.entries(value as object).flatMap(([k, v]) =>
      unknownFields(v, map[1]!, `${path}.${k}`),
    );
  const model = (k8s as unknown as Record<string, { getAttributeTypeMap?: () => AttributeMap }>)[
    type
  ];
  if (!model?.getAttributeTypeMap) return []; // string, number, boolean, any, IntOrString, Date
  const attrs = model.getAttributeTypeMap();
  const out: string[] = [];
  for (const [key, v] of Object.entries(value as object)) {
    const a = attrs.find((x) => x.baseName === key);
    if (!a) out.push(`${path}.${key}`);
    else out.push(...unknownFields(v, a.type, `${path}.${key}`));
  }
  return out;
}

function validateObject(o: KubeObject): void {
  const modelName = CLIENT_MODELS[`${o.apiVersion}/${o.kind}`];
  assert.ok(modelName, `no client-node model for ${o.apiVersion} ${o.kind}`);
  const unknown = unknownFields(o, modelName, o.kind);
  if (unknown.length > 0) throw new Error(`unknown field(s): ${unknown.join(', ')}`);
  const Model = MODELS[`${o.apiVersion}/${o.kind}`];
  assert.ok(Model, `no kubernetes-models validator for ${o.apiVersion} ${o.kind}`);
  new Model(o).validate();
}

const renders = {
  default: resolveManifestOptions({ clusterName: 'default' }),
  tunnelLoadBalancer: resolveManifestOptions({
    clusterName: 'cluster2',
    clusterId: 2,
    set: ['routing-mode=tunnel', 'mtu=9000', 'clustermesh-cache-ttl=5m'],
    dnsServiceIP: '10.96.0.53',
    clustermesh: { serviceType: 'LoadBalancer' },
  }),
  nodePort: resolveManifestOptions({ clusterName: 'c3', clustermesh: { serviceType: 'NodePort' } }),
  clusterIP: resolveManifestOptions({
    clusterName: 'c4',
    clustermesh: { serviceType: 'ClusterIP' },
  }),
};

/** ajv over a CRD's openAPIV3Schema: Kubernetes' x-kubernetes-* keywords and int32/int64 formats known. */
const compiled = new Map<Schema, ValidateFunction>();
function crValidator(schema: Schema): ValidateFunction {
  const hit = compiled.get(schema);
  if (hit) return hit;
  const ajv = new Ajv({ strict: true, allErrors: true });
  for (const k of [
    'x-kubernetes-preserve-unknown-fields',
    'x-kubernetes-map-type',
    'x-kubernetes-list-type',
    'x-kubernetes-list-map-keys',
  ])
    ajv.addKeyword(k);
  ajv.addFormat('int32', {
    type: 'number',
    validate: (n: number) => n >= -(2 ** 31) && n < 2 ** 31,
  });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isSafeInteger(n) });
  ajv.addFormat('date-time', (s: string) => !Number.isNaN(Date.parse(s)) && /T/.test(s));
  const v = ajv.compile(schema);
  compiled.set(schema, v);
  return v;
}

function crErrors(o: Record<string, unknown>): string[] {
  const schema = crdSchema(String(o.apiVersion), String(o.kind));
  assert.ok(schema, `no CRD for ${String(o.apiVersion)} ${String(o.kind)}`);
  const v = crValidator(schema);
  return v(o) ? [] : (v.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
}

describe('manifests: Kubernetes OpenAPI schemas', () => {
  for (const [name, o] of Object.entries(renders)) {
    it(`every object of the ${name} render validates (kubernetes-models)`, () => {
      const objs = renderManifests(o);
      assert.ok(objs.length > 15);
      for (const x of objs) {
        assert.doesNotThrow(
          () => validateObject(x),
          (e: Error) => assert.fail(`${x.kind} ${x.metadata.name}: ${e.message}`),
        );
      }
    });
  }

  it('the validator rejects a broken object (the test can fail)', () => {
    const ds = renderManifests(renders.default).find((x) => x.kind === 'DaemonSet')!;
    const broken = structuredClone(ds);
    broken.spec.template.spec.containers[0].volumeMounts[0].mountPath = 7;
    assert.throws(() => validateObject(broken), /mountPath must be string/);
    const crd = renderManifests(renders.default).find(
      (x) => x.kind === 'CustomResourceDefinition',
    )!;
    const badCrd = structuredClone(crd);
    badCrd.spec.scope = ['Cluster'];
    assert.throws(() => validateObject(badCrd), /scope/);
    const typo = structuredClone(ds);
    typo.spec.template.spec.containers[0].volumeMount = [];
    assert.throws(
      () => validateObject(typo),
      /unknown field\(s\): DaemonSet\.spec\.template\.spec\.containers\[0\]\.volumeMount/,
    );
  });

  it('mesh Secrets validate with every key filled', () => {
    for (const s of MESH_SECRETS) {
      const files = Object.fromEntries(s.keys.map((k) => [k, `-----BEGIN ${k}-----\n`]));
      if (s.perCluster) files['cluster1'] = 'endpoints:\n- https://10.0.0.1:2379\n';
      validateObject(meshSecret({ namespace: 'kube-system' }, s.name, files));
    }
    assert.throws(
      () => meshSecret({ namespace: 'kube-system' }, 'clustermesh-apiserver-server-cert', {}),
      /needs ca\.crt, tls\.crt, tls\.key/,
    );
  });
});

describe('manifests: custom resources against the CRDs', () => {
  it('Tendril-built CiliumIdentity, CiliumEndpoint and ServiceImport objects validate', () => {
    const id = identityObject(
      65793,
      'k8s:app=echo;k8s:io.kubernetes.pod.namespace=default;k8s:io.cilium.k8s.policy.cluster=c1',
    );
    assert.deepEqual(crErrors(id as unknown as Record<string, unknown>), []);
    const cep = ciliumEndpointObject(
      {
        id: 12,
        identity: 65793,
        labels: { app: 'echo' },
        state: 'ready',
        createdAt: new Date().toISOString(),
        containerId: 'abc',
        ifName: 'eth0',
        podNamespace: 'default',
        podName: 'echo-1',
        ip: '10.244.1.5',
        hostIfName: 'lxc123',
      },
      { node: 'n1', nodeIP: '172.30.1.11' },
      'uid-1',
    );
    assert.deepEqual(crErrors(cep as unknown as Record<string, unknown>), []);
    const imp = serviceImportManifest(
      {
        namespace: 'default',
        name: 'echo',
        type: 'ClusterSetIP',
        ports: [{ name: 'http', protocol: 'TCP', port: 80 }],
        sessionAffinity: 'None',
        clusters: ['c1', 'c2'],
        oldestCluster: 'c1',
      },
      { ips: ['10.96.0.20'] },
    );
    assert.deepEqual(crErrors(imp), []);
  });

  it('policies, exports validate; wrong shapes are refused', () => {
    const cnp = {
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'allow', namespace: 'default' },
      spec: {
        endpointSelector: { matchLabels: { app: 'echo' } },
        ingress: [
          {
            fromEndpoints: [{ matchLabels: { 'io.cilium.k8s.policy.cluster': 'c2' } }],
            toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }],
          },
        ],
        egress: [{ toEntities: ['world'], toFQDNs: [{ matchName: 'example.com' }] }],
      },
    };
    assert.deepEqual(crErrors(cnp), []);
    assert.deepEqual(
      crErrors({ ...cnp, kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'c' } }),
      [],
    );
    assert.deepEqual(
      crErrors({
        apiVersion: 'multicluster.x-k8s.io/v1alpha1',
        kind: 'ServiceExport',
        metadata: { name: 'echo', namespace: 'default' },
      }),
      [],
    );
    // the schemas refuse what they should
    assert.notDeepEqual(
      crErrors({ apiVersion: 'cilium.io/v2', kind: 'CiliumIdentity', metadata: { name: '1' } }),
      [],
    );
    assert.notDeepEqual(
      crErrors({
        ...cnp,
        spec: { ...cnp.spec, egress: [{ toEntities: ['everywhere'] }] },
      }),
      [],
    );
    const imp = {
      apiVersion: 'multicluster.x-k8s.io/v1alpha1',
      kind: 'ServiceImport',
      metadata: { name: 'x', namespace: 'default' },
      spec: { type: 'ClusterSetIP', ports: [{ port: 70000, protocol: 'TCP' }] },
    };
    assert.match(crErrors(imp).join('\n'), /port must be <= 65535/);
  });

  it('CRDs cover exactly the Cilium and MCS kinds the lab API server serves, plus CCNP', async () => {
    const { RESOURCES } = await import('../../k8s/resources.js');
    const served = RESOURCES.filter((r) => /cilium\.io|multicluster/.test(r.group)).map(
      (r) => `${r.group}/${r.version}/${r.kind}`,
    );
    const crds = CRD_KINDS.map((k) => `${k.apiVersion}/${k.kind}`);
    for (const s of served) assert.ok(crds.includes(s), `no CRD for ${s}`);
    assert.ok(crds.includes('cilium.io/v2/CiliumClusterwideNetworkPolicy'));
    for (const r of RESOURCES.filter((x) => crds.includes(`${x.group}/${x.version}/${x.kind}`))) {
      const crd = renderManifests(renders.default).find(
        (x) => x.metadata.name === `${r.plural}.${r.group}`,
      );
      assert.ok(crd, `CRD ${r.plural}.${r.group}`);
      assert.equal(crd.spec.scope, r.namespaced ? 'Namespaced' : 'Cluster', r.kind);
      assert.deepEqual(crd.spec.names.shortNames, r.shortNames, r.kind);
    }
  });
});

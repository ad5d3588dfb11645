/**
 * Defaulting as the Kubernetes API server does it on create/update, for the
 * fields the lab and kubectl's tables read (service type, protocols,
 * targetPort, restartPolicy, replicas, ...). Mutates and returns the object.
 */
import type { KubeObject } from './objects.js';
import { isPlainObject } from './mergepatch.js';

/** Applies the defaults of the object's kind. */
export function applyDefaults(o: KubeObject): KubeObject {
  switch (o.kind) {
    case 'Pod':
      o.spec = defaultPodSpec(o.spec ?? {});
      break;
    case 'Deployment':
      defaultDeployment(o);
      break;
    case 'DaemonSet':
      defaultDaemonSet(o);
      break;
    case 'Service':
      defaultService(o);
      break;
    case 'EndpointSlice':
      if (!Array.isArray(o.endpoints)) o.endpoints = [];
      if (Array.isArray(o.ports))
        for (const p of o.ports as Array<Record<string, unknown>>)
          if (isPlainObject(p)) p.protocol ??= 'TCP';
      break;
    case 'Namespace':
      o.spec ??= {};
      // a spec that is not an object is left for validation to refuse (422)
      if (isPlainObject(o.spec)) o.spec.finalizers ??= ['kubernetes'];
      labelNamespaceName(o);
      break;
  }
  return o;
}

/** The label Kubernetes (1.21+) gives every namespace: its own name. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/**
 * Sets `kubernetes.io/metadata.name: <name>` on a namespace, as the
 * Kubernetes API server does on every create and update (SetDefaults_Namespace
 * and the namespace strategy's Canonicalize): a write that changes or removes
 * the label gets it back, so NetworkPolicy namespaceSelectors can rely on it.
 * Nameless namespaces (generateName, not yet named) are left alone.
 */
export function labelNamespaceName(o: KubeObject): void {
  const name = o.metadata?.name;
  if (!name) return;
  o.metadata.labels = { ...(o.metadata.labels ?? {}), [NAMESPACE_NAME_LABEL]: name };
}

/** Defaults a PodSpec (also used inside Deployment templates). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a PodSpec is schemaless JSON here
export function defaultPodSpec(spec: any): any {
  if (!isPlainObject(spec)) return spec;
  spec.restartPolicy ??= 'Always';
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.schedulerName ??= 'default-scheduler';
  spec.securityContext ??= {};
  for (const list of [spec.containers, spec.initContainers]) {
    if (!Array.isArray(list)) continue;
    for (const c of list) {
      if (!isPlainObject(c)) continue;
      c.imagePullPolicy ??=
        typeof c.image === 'string' && (c.image.endsWith(':latest') || !c.image.includes(':'))
          ? 'Always'
          : 'IfNotPresent';
      c.terminationMessagePath ??= '/dev/termination-log';
      c.terminationMessagePolicy ??= 'File';
      c.resources ??= {};
      if (Array.isArray(c.ports))
        for (const p of c.ports) if (isPlainObject(p)) p.protocol ??= 'TCP';
    }
  }
  return spec;
}

function defaultDeployment(o: KubeObject): void {
  const spec = o.spec;
  if (!isPlainObject(spec)) return;
  spec.replicas ??= 1;
  spec.revisionHistoryLimit ??= 10;
  spec.progressDeadlineSeconds ??= 600;
  spec.strategy ??= {
    type: 'RollingUpdate',
    rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' },
  };
  if (isPlainObject(spec.template)) {
    spec.template.metadata ??= {};
    spec.template.spec = defaultPodSpec(spec.template.spec);
  }
}

function defaultDaemonSet(o: KubeObject): void {
  const spec = o.spec;
  if (!isPlainObject(spec)) return;
  spec.revisionHistoryLimit ??= 10;
  spec.updateStrategy ??= {
    type: 'RollingUpdate',
    rollingUpdate: { maxUnavailable: 1, maxSurge: 0 },
  };
  if (isPlainObject(spec.template)) {
    spec.template.metadata ??= {};
    spec.template.spec = defaultPodSpec(spec.template.spec);
  }
}

function defaultService(o: KubeObject): void {
  const spec = o.spec;
  if (!isPlainObject(spec)) return;
  spec.type ??= 'ClusterIP';
  spec.sessionAffinity ??= 'None';
  if (spec.type !== 'ExternalName') {
    spec.ipFamilies ??= ['IPv4'];
    spec.ipFamilyPolicy ??= 'SingleStack';
    spec.internalTrafficPolicy ??= 'Cluster';
  }
  if (Array.isArray(spec.ports)) {
    for (const p of spec.ports) {
      if (!isPlainObject(p)) continue;
      p.protocol ??= 'TCP';
      // Only a valid port is copied, so a bad port is reported once (on spec.ports[i].port).
      if (
        p.targetPort === undefined &&
        Number.isInteger(p.port) &&
        (p.port as number) >= 1 &&
        (p.port as number) <= 65535
      )
        p.targetPort = p.port;
    }
  }
}

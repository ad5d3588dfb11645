/**
 * How the install wing asks the lab to show Tendril's daemons as kube-system
 * objects: each daemon spec it starts carries `reflect` (src/lab/daemons.ts,
 * DaemonReflect) — the workload the manifests render for a real cluster
 * (src/install/kubernetes/workloads.ts) and the container the daemon is. The
 * lab supervisor's reflector (src/lab/daemon-reflector.ts) writes that
 * workload, made true to the lab (host network, the daemon's command, no
 * volumes), and a pod per daemon, so `kubectl -n kube-system get pods` and
 * `kubectl -n kube-system logs deploy/tendril-operator` work on a lab as on a
 * real cluster.
 */
import type { KubeObject } from '../k8s/objects.js';
import type { DaemonReflect } from '../lab/daemons.js';
import type { LabCluster } from '../lab/state.js';
import { resolveManifestOptions, type ManifestOptions } from './kubernetes/options.js';
import {
  agentDaemonSet,
  clusterMeshObjects,
  dnsObjects,
  operatorDeployment,
} from './kubernetes/workloads.js';

/** Which of Tendril's daemons. */
export type ReflectedRole =
  'agent' | 'operator' | 'dns' | 'mesh-apiserver' | 'mesh-etcd' | 'hubble-relay';

/** The render options for a lab cluster's install (its mesh name, ID and settings). */
export function labManifestOptions(
  c: Pick<LabCluster, 'name' | 'podCIDR' | 'serviceCIDR'>,
  install: { clusterName?: string; clusterId?: number; settings?: Record<string, string> } = {},
): ManifestOptions {
  const input = {
    clusterId: install.clusterId ?? 1,
    settings: install.settings ?? {},
    podCIDR: c.podCIDR,
    serviceCIDR: c.serviceCIDR,
    clustermesh: { serviceType: 'NodePort' },
  };
  try {
    return resolveManifestOptions({ clusterName: install.clusterName ?? c.name, ...input });
  } catch {
    // a name or CIDR the renderer refuses: the objects' shape does not depend on them
    return resolveManifestOptions({ clusterName: 'default', clustermesh: {} });
  }
}

/** The `reflect` of a daemon spec: its rendered workload and container. */
export function reflectOf(role: ReflectedRole, o: ManifestOptions): DaemonReflect {
  const pick = (w: KubeObject, container: string): DaemonReflect => ({
    kind: w.kind as DaemonReflect['kind'],
    container,
    workload: w as unknown as DaemonReflect['workload'],
  });
  switch (role) {
    case 'agent':
      return pick(agentDaemonSet(o), 'agent');
    case 'operator':
      return pick(operatorDeployment(o), 'operator');
    case 'dns':
      return pick(dnsObjects(o)[0]!, 'dns');
    case 'mesh-apiserver':
      return pick(clusterMeshObjects(o)[1]!, 'apiserver');
    case 'mesh-etcd':
      return pick(clusterMeshObjects(o)[1]!, 'etcd');
    case 'hubble-relay':
      return pick(hubbleRelayDeployment(o), 'hubble-relay');
  }
}

/**
 * The hubble-relay Deployment as Cilium names it (the Kubernetes manifests do
 * not render the relay yet): name, labels and container `hubble-relay`.
 */
export function hubbleRelayDeployment(o: ManifestOptions): KubeObject {
  const name = 'hubble-relay';
  const labels = {
    'app.kubernetes.io/name': name,
    'app.kubernetes.io/part-of': 'tendril',
    'k8s-app': name,
  };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: o.namespace, labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: { 'k8s-app': name } },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: name,
          priorityClassName: 'system-cluster-critical',
          containers: [{ name, image: o.image, imagePullPolicy: o.imagePullPolicy }],
        },
      },
    },
  } as KubeObject;
}

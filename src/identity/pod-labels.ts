/**
 * The label set a pod's identity is allocated for. One function, used by the
 * operator (which allocates) and the agent (which looks up), so both always
 * compute the same set: the pod's labels, its namespace, its namespace's labels
 * (io.cilium.k8s.namespace.labels.<key>), its service account and the cluster
 * name (Cilium's io.cilium.k8s.policy.cluster).
 */
import { labelsString, podIdentityLabels, type Labels } from './labels.js';

export interface PodIdentitySource {
  namespace: string;
  labels: Record<string, string>;
  serviceAccount?: string;
  /** The labels of the pod's Namespace object (absent: the namespace is not known, no labels). */
  namespaceLabels?: Record<string, string>;
}

/** The security labels of a pod in a cluster. @throws LabelError */
export function endpointIdentityLabels(pod: PodIdentitySource, clusterName: string): Labels {
  return podIdentityLabels(pod.labels, {
    namespace: pod.namespace,
    ...(pod.namespaceLabels ? { namespaceLabels: pod.namespaceLabels } : {}),
    ...(pod.serviceAccount ? { serviceAccount: pod.serviceAccount } : {}),
    cluster: clusterName,
  });
}

/** Canonical string of a pod's security labels. */
export function endpointIdentityKey(pod: PodIdentitySource, clusterName: string): string {
  return labelsString(endpointIdentityLabels(pod, clusterName));
}

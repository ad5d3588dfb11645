/**
 * The shapes of Kubernetes objects as Tendril handles them: loosely typed
 * (objects are JSON), with typed views of the fields the lab's controllers,
 * CLI and agent read.
 */

/** metav1.OwnerReference. */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** metav1.ObjectMeta (the fields Tendril uses). */
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  [k: string]: unknown;
}

/** Any Kubernetes object. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- objects are schemaless JSON; callers read the fields of their kind
  spec?: any;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- objects are schemaless JSON; callers read the fields of their kind
  status?: any;
  [k: string]: unknown;
}

/** A list as the API returns it. */
export interface KubeList<T extends KubeObject = KubeObject> {
  apiVersion: string;
  kind: string;
  metadata: { resourceVersion: string; continue?: string };
  items: T[];
}

/** A watch event line. */
export interface WatchEventObject<T extends KubeObject = KubeObject> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

/** A container port. */
export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: string;
  hostPort?: number;
}

/** The container fields the lab reads. */
export interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; value?: string }>;
  ports?: ContainerPort[];
  workingDir?: string;
}

/** A status condition (pods, nodes, services, ...). */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

/** A pod condition. */
export type PodCondition = Condition;

/** An object's status.conditions (empty when it has none). */
export function conditionsOf(o: { status?: { conditions?: unknown } }): Condition[] {
  return (o.status?.conditions ?? []) as Condition[];
}

/** "ns/name" (or "name" for cluster-scoped objects). */
export function objectKey(o: { metadata: ObjectMeta }): string {
  return o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : `${o.metadata.name}`;
}

/** True if the pod's Ready condition is True. */
export function isPodReady(pod: KubeObject): boolean {
  return conditionsOf(pod).some((c) => c.type === 'Ready' && c.status === 'True');
}

/** True if the node's Ready condition is True. */
export function isNodeReady(node: KubeObject): boolean {
  return conditionsOf(node).some((c) => c.type === 'Ready' && c.status === 'True');
}

/** The controller owner reference, if any. */
export function controllerOf(o: KubeObject): OwnerReference | undefined {
  return o.metadata.ownerReferences?.find((r) => r.controller);
}

/** Age in kubectl's short form: 5s, 3m, 2h, 4d (and 3m20s below 10 minutes, as kubectl). */
export function formatAge(from: string | undefined, now = Date.now()): string {
  if (!from) return '<unknown>';
  const secs = Math.max(0, Math.floor((now - Date.parse(from)) / 1000));
  if (secs < 120) return `${secs}s`;
  const mins = Math.floor(secs / 60);
  if (mins < 10) return secs % 60 ? `${mins}m${secs % 60}s` : `${mins}m`;
  if (mins < 180) return `${mins}m`;
  const hours = Math.floor(mins / 60);
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  return days < 365 * 2 ? `${days}d` : `${Math.floor(days / 365)}y`;
}

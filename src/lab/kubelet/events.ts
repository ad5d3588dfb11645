/**
 * The lab kubelet's Kubernetes Events (Pulled, Created, Started, Killing,
 * BackOff): core v1 Events posted to the API server, attributed to the
 * kubelet on its node as Kubernetes' kubelet does. Posting never throws: an
 * Event that cannot be written is logged at debug level and dropped.
 */
import type { KubeObject } from '../../k8s/objects.js';
import type { Logger } from '../../util/log.js';
import { newEvent, refOf } from '../apiserver/events.js';
import type { LabApi } from './api.js';

/** Where an Event is POSTed: the kubelet's LabApi, or any client with the same `create`. */
export type EventSink = Pick<LabApi, 'create'>;

/** Posts one Event about `pod` (with `fieldPath` naming a container: spec.containers{NAME}). */
export function postPodEvent(
  api: EventSink,
  log: Logger,
  node: string,
  pod: KubeObject,
  type: 'Normal' | 'Warning',
  reason: string,
  message: string,
  container?: string,
): void {
  const ref = {
    ...refOf({ ...pod, kind: 'Pod', apiVersion: 'v1' }),
    ...(container ? { fieldPath: `spec.containers{${container}}` } : {}),
  };
  const ev = newEvent(ref, type, reason, message, { component: 'kubelet', host: node });
  const ns = encodeURIComponent(pod.metadata.namespace ?? 'default');
  api
    .create(`/api/v1/namespaces/${ns}/events`, ev)
    .catch((err: unknown) => log.debug('posting an event failed', { reason, err }));
}

/**
 * How a Service says it belongs to the mesh (Cilium's annotations, plus the
 * seed's EndpointSlice label), read in one place.
 *
 *   service.cilium.io/global: "true"      (legacy io.cilium/global-service)   the service spans the mesh
 *   service.cilium.io/shared: "false"     (legacy io.cilium/shared-service)   local backends are not exported
 *   service.cilium.io/affinity: local|remote|none                             preferred backends
 *   EndpointSlice labels cilium.io/global-service: "true" + kubernetes.io/service-name: X
 *                                                                             marks X global (the seed's form)
 *   a ServiceExport (MCS) for the Service                                     also makes it global and shared
 */
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';

export const GLOBAL_ANNOTATION = 'service.cilium.io/global';
export const LEGACY_GLOBAL_ANNOTATION = 'io.cilium/global-service';
export const SHARED_ANNOTATION = 'service.cilium.io/shared';
export const LEGACY_SHARED_ANNOTATION = 'io.cilium/shared-service';
export const AFFINITY_ANNOTATION = 'service.cilium.io/affinity';
/** The seed's marker label on an EndpointSlice. */
export const GLOBAL_SLICE_LABEL = 'cilium.io/global-service';
/** The standard label tying an EndpointSlice to its Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
/** Label of Services Tendril created to import a remote-only global service. */
export const IMPORTED_LABEL = 'tendril.io/imported-service';
/** MCS: label of a derived Service (and of EndpointSlices) naming the imported service. */
export const MCS_SERVICE_NAME_LABEL = 'multicluster.kubernetes.io/service-name';

export type Affinity = 'local' | 'remote' | 'none';

/** A problem with one object, reported on it (an event/condition), never thrown. */
export interface ServiceIssue {
  namespace: string;
  name: string;
  kind: 'Service' | 'EndpointSlice' | 'ServiceExport' | 'ClusterService';
  /** Stable code, e.g. SERVICE_INVALID_AFFINITY. */
  code: string;
  message: string;
}

/** The mesh settings of one Service. */
export interface MeshServiceOptions {
  global: boolean;
  shared: boolean;
  affinity: Affinity;
  /** Problems with the annotations (the values above are then the defaults). */
  issues: ServiceIssue[];
}

/** "ns/name" */
export function serviceKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** The namespace of an object (default "default"). */
export function nsOf(obj: { metadata?: { namespace?: string } }): string {
  return obj.metadata?.namespace || 'default';
}

/** True if the slice is the seed's global marker (its endpoints are written by the mesh, never read as local backends). */
export function isGlobalMarkerSlice(slice: V1EndpointSlice): boolean {
  return slice.metadata?.labels?.[GLOBAL_SLICE_LABEL] === 'true';
}

/** The Service name an EndpointSlice belongs to (kubernetes.io/service-name), if any. */
export function sliceServiceName(slice: V1EndpointSlice): string | undefined {
  return slice.metadata?.labels?.[SERVICE_NAME_LABEL] || undefined;
}

/**
 * True for a remote-only import Tendril made (labelled tendril.io/imported-service,
 * no selector). A labelled Service with a selector is a user's: their own
 * manifest was applied over an earlier import (kubectl-style apply keeps the
 * label), and it is a local Service from then on.
 */
export function isRemoteOnlyImport(svc: V1Service): boolean {
  if (svc.metadata?.labels?.[IMPORTED_LABEL] === undefined) return false;
  return Object.keys(svc.spec?.selector ?? {}).length === 0;
}

/** True for Services Tendril made itself (remote-only imports, MCS derived services): never exported. */
export function isMeshCreatedService(svc: V1Service): boolean {
  return isRemoteOnlyImport(svc) || svc.metadata?.labels?.[MCS_SERVICE_NAME_LABEL] !== undefined;
}

/**
 * Reads a Service's mesh settings. `slices` may be all slices of the
 * namespace (or cluster): only global markers naming this service count.
 * `exported` is true when an MCS ServiceExport exists for it.
 */
export function meshServiceOptions(
  svc: V1Service,
  slices: readonly V1EndpointSlice[] = [],
  exported = false,
): MeshServiceOptions {
  const ann = svc.metadata?.annotations ?? {};
  const ns = nsOf(svc);
  const name = svc.metadata?.name ?? '';
  const issues: ServiceIssue[] = [];
  const issue = (code: string, message: string) =>
    issues.push({ namespace: ns, name, kind: 'Service', code, message });

  const flag = (keys: string[], dflt: boolean, what: string): boolean => {
    for (const k of keys) {
      const v = ann[k];
      if (v === undefined) continue;
      const lv = v.trim().toLowerCase();
      if (lv === 'true') return true;
      if (lv === 'false') return false;
      issue(
        `SERVICE_INVALID_${what.toUpperCase()}`,
        `annotation ${k}: "${v}" is not "true" or "false"; using ${dflt}`,
      );
      return dflt;
    }
    return dflt;
  };

  let global = flag([GLOBAL_ANNOTATION, LEGACY_GLOBAL_ANNOTATION], false, 'global');
  if (
    !global &&
    slices.some((s) => isGlobalMarkerSlice(s) && sliceServiceName(s) === name && nsOf(s) === ns)
  )
    global = true;
  if (exported) global = true;
  const shared =
    exported && ann[SHARED_ANNOTATION] === undefined && ann[LEGACY_SHARED_ANNOTATION] === undefined
      ? true
      : flag([SHARED_ANNOTATION, LEGACY_SHARED_ANNOTATION], true, 'shared');

  let affinity: Affinity = 'none';
  const a = ann[AFFINITY_ANNOTATION];
  if (a !== undefined) {
    const la = a.trim().toLowerCase();
    if (la === 'local' || la === 'remote' || la === 'none') affinity = la;
    else
      issue(
        'SERVICE_INVALID_AFFINITY',
        `annotation ${AFFINITY_ANNOTATION}: "${a}" is not one of local, remote, none; using none`,
      );
  }
  return { global, shared, affinity, issues };
}

/** The Service condition Tendril sets when a mesh annotation of it is invalid. */
export const MESH_ANNOTATIONS_CONDITION = 'tendril.io/MeshAnnotationsValid';

/** A status condition as Tendril writes it on a Service (metav1.Condition without the time). */
export interface ServiceCondition {
  type: string;
  status: 'True' | 'False';
  reason: string;
  message: string;
}

/**
 * The condition to report on a Service whose mesh annotations are invalid
 * (e.g. `service.cilium.io/affinity: nearest`): status False, reason
 * InvalidAnnotation, the problems in the message. Undefined when they are
 * all valid (then no condition is kept). Never throws.
 */
export function meshAnnotationsCondition(
  svc: V1Service,
  slices: readonly V1EndpointSlice[] = [],
): ServiceCondition | undefined {
  const { issues } = meshServiceOptions(svc, slices);
  if (issues.length === 0) return undefined;
  return {
    type: MESH_ANNOTATIONS_CONDITION,
    status: 'False',
    reason: 'InvalidAnnotation',
    message: issues.map((i) => `${i.message} (${i.code})`).join('; '),
  };
}

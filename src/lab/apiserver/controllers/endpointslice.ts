/**
 * EndpointSlices from Service selectors, as Kubernetes' endpointslice
 * controller writes them: labels `kubernetes.io/service-name=<svc>` and
 * `endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io`,
 * name `<svc>-<random5>`, a controller ownerReference to the Service, one
 * endpoint per pod with an IP (conditions ready/serving/terminating from the
 * pod's Ready condition and deletionTimestamp; nodeName; targetRef), ports
 * with targetPort resolved per pod (named ports through the pod's container
 * ports). Pods whose named ports resolve differently land in separate slices.
 * Slices without the managed-by label (user-created, such as the seed's
 * `echo-service-c1-mesh`) are never touched.
 */
import { clone, deepEqual } from '../../../k8s/mergepatch.js';
import { isPodReady, type ContainerPort, type KubeObject } from '../../../k8s/objects.js';
import { infoByKind, type ResourceInfo } from '../../../k8s/resources.js';
import { fromMap, matchesSelector } from '../../../k8s/selectors.js';
import type { Logger } from '../../../util/log.js';
import type { Registry } from '../registry.js';
import { QueueController, type WatchHandler } from './controller.js';
import { isNotFound } from '../../../util/errors.js';

const SVC = infoByKind('Service');
const POD = infoByKind('Pod');
const SLICE = infoByKind('EndpointSlice');

/** Label naming the Service of a slice. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
/** Label naming the controller managing a slice. */
export const MANAGED_BY_LABEL = 'endpointslice.kubernetes.io/managed-by';
/** Value of MANAGED_BY_LABEL for slices this controller owns. */
export const MANAGED_BY = 'endpointslice-controller.k8s.io';

interface SlicePort {
  name: string;
  port?: number;
  protocol: string;
}

/**
 * Resolves a Service port's targetPort for a pod: a number as is, a name
 * through the pod's container ports (same protocol). Undefined if unresolved.
 */
export function resolveTargetPort(
  svcPort: { targetPort?: number | string; port: number; protocol?: string },
  pod: KubeObject,
): number | undefined {
  const tp = svcPort.targetPort ?? svcPort.port;
  if (typeof tp === 'number') return tp;
  if (/^\d+$/.test(tp)) return Number(tp);
  const proto = svcPort.protocol ?? 'TCP';
  for (const c of (pod.spec?.containers ?? []) as Array<{ ports?: ContainerPort[] }>) {
    for (const p of c.ports ?? [])
      if (p.name === tp && (p.protocol ?? 'TCP') === proto) return p.containerPort;
  }
  return undefined;
}

/** Runs the EndpointSlice controller until stop(). */
export class EndpointSliceController extends QueueController {
  constructor(registry: Registry, log: Logger) {
    super(registry, log, 'endpointslice');
  }

  protected watches(): Array<[ResourceInfo, WatchHandler]> {
    return [
      [SVC, this.enqueueObject],
      [
        POD,
        (ev) => {
          const ns = ev.object.metadata.namespace;
          for (const svc of this.registry.scan(SVC, { namespace: ns })) {
            const sel = fromMap(svc.spec?.selector);
            if (!sel) continue;
            if (
              matchesSelector(sel, ev.object.metadata.labels) ||
              (ev.old && matchesSelector(sel, ev.old.metadata.labels))
            ) {
              this.enqueue(ns, svc.metadata.name);
            }
          }
        },
      ],
      [
        SLICE,
        (ev) => {
          const l = ev.object.metadata.labels ?? {};
          if (l[MANAGED_BY_LABEL] === MANAGED_BY && l[SERVICE_NAME_LABEL])
            this.enqueue(ev.object.metadata.namespace, l[SERVICE_NAME_LABEL]);
        },
      ],
    ];
  }

  private managedSlices(ns: string, svcName: string): KubeObject[] {
    return this.registry
      .scan(SLICE, { namespace: ns })
      .filter(
        (s) =>
          s.metadata.labels?.[SERVICE_NAME_LABEL] === svcName &&
          s.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY,
      );
  }

  protected async reconcile(key: string): Promise<void> {
    const [ns, name] = key.split('/') as [string, string];
    const svc = this.registry.peek(SVC, ns, name);
    const existing = this.managedSlices(ns, name);
    const sel = svc ? fromMap(svc.spec?.selector) : undefined;
    if (!svc || svc.metadata.deletionTimestamp || !sel) {
      // No selector: the controller manages nothing for this Service.
      for (const s of existing) await this.deleteSlice(ns, s.metadata.name!);
      return;
    }
    const svcPorts = (svc.spec?.ports ?? []) as Array<{
      name?: string;
      port: number;
      targetPort?: number | string;
      protocol?: string;
    }>;
    // Group endpoints by their resolved port list.
    const groups = new Map<string, { ports: SlicePort[]; endpoints: unknown[] }>();
    const pods = this.registry
      .scan(POD, { namespace: ns })
      .filter(
        (p) =>
          matchesSelector(sel, p.metadata.labels) &&
          p.status?.podIP &&
          p.status?.phase !== 'Succeeded' &&
          p.status?.phase !== 'Failed',
      )
      .sort((a, b) => a.metadata.name!.localeCompare(b.metadata.name!));
    for (const pod of pods) {
      const ports: SlicePort[] = svcPorts.map((sp) => {
        const port = resolveTargetPort(sp, pod);
        return {
          name: sp.name ?? '',
          ...(port !== undefined ? { port } : {}),
          protocol: sp.protocol ?? 'TCP',
        };
      });
      const gk = JSON.stringify(ports);
      let g = groups.get(gk);
      if (!g) groups.set(gk, (g = { ports, endpoints: [] }));
      const ready = isPodReady(pod);
      const terminating = Boolean(pod.metadata.deletionTimestamp);
      g.endpoints.push({
        addresses: [pod.status.podIP as string],
        conditions: { ready: ready && !terminating, serving: ready, terminating },
        ...(pod.spec?.nodeName ? { nodeName: pod.spec.nodeName } : {}),
        targetRef: { kind: 'Pod', namespace: ns, name: pod.metadata.name, uid: pod.metadata.uid },
      });
    }
    if (groups.size === 0) {
      // Kubernetes keeps a placeholder slice with no endpoints.
      const ports = svcPorts
        .map((sp) => {
          const tp = sp.targetPort ?? sp.port;
          const port = typeof tp === 'number' ? tp : /^\d+$/.test(tp) ? Number(tp) : undefined;
          return port === undefined
            ? undefined
            : { name: sp.name ?? '', port, protocol: sp.protocol ?? 'TCP' };
        })
        .filter((p): p is { name: string; port: number; protocol: string } => p !== undefined);
      groups.set(JSON.stringify(ports), { ports, endpoints: [] });
    }
    const unused = [...existing];
    for (const [gk, g] of groups) {
      const idx = unused.findIndex((s) => JSON.stringify(s.ports ?? []) === gk);
      const reuse = idx >= 0 ? unused.splice(idx, 1)[0] : unused.shift();
      const body = {
        addressType: 'IPv4',
        endpoints: g.endpoints,
        ports: g.ports,
      };
      const labels = {
        ...(svc.metadata.labels ?? {}),
        [SERVICE_NAME_LABEL]: name,
        [MANAGED_BY_LABEL]: MANAGED_BY,
      };
      const owner = [
        {
          apiVersion: 'v1',
          kind: 'Service',
          name,
          uid: svc.metadata.uid!,
          controller: true,
          blockOwnerDeletion: true,
        },
      ];
      if (reuse) {
        const want = { ...clone(reuse), ...body };
        want.metadata.labels = labels;
        want.metadata.ownerReferences = owner;
        if (deepEqual(want, reuse)) continue;
        await this.registry.update(SLICE, ns, reuse.metadata.name!, want);
      } else {
        await this.registry.create(SLICE, ns, {
          apiVersion: 'discovery.k8s.io/v1',
          kind: 'EndpointSlice',
          metadata: {
            generateName: `${name}-`,
            namespace: ns,
            labels,
            ownerReferences: owner,
            annotations: {},
          },
          ...body,
        });
      }
    }
    for (const s of unused) await this.deleteSlice(ns, s.metadata.name!);
  }

  private async deleteSlice(ns: string, name: string): Promise<void> {
    try {
      await this.registry.delete(SLICE, ns, name);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

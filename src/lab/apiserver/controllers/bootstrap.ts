/**
 * What every cluster has from the start: the namespaces `default`,
 * `kube-system`, `kube-public` and `kube-node-lease`, and the `kubernetes`
 * Service in `default` (the 1st address of the service CIDR, port 443 ->
 * 6443). With an advertise address, an EndpointSlice `kubernetes` points the
 * Service at the API server's node-side address. Namespaces stored without
 * the `kubernetes.io/metadata.name` label (older state) are updated to have it. Idempotent: it only creates
 * what is missing, so a restart changes nothing.
 */
import type { KubeObject } from '../../../k8s/objects.js';
import { NAMESPACE_NAME_LABEL } from '../../../k8s/defaults.js';
import { infoByKind } from '../../../k8s/resources.js';
import { ApiError } from '../../../k8s/status.js';
import type { Registry } from '../registry.js';

/** Namespaces created at start. */
export const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

async function ensure(registry: Registry, obj: KubeObject): Promise<void> {
  const info = infoByKind(obj.kind);
  if (registry.peek(info, obj.metadata.namespace, obj.metadata.name!)) return;
  try {
    await registry.create(info, obj.metadata.namespace, obj);
  } catch (err) {
    if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
  }
}

/** Creates the system namespaces and the `kubernetes` Service (and its slice when `advertise` is given). */
export async function bootstrapCluster(
  registry: Registry,
  options: { advertise?: { ip: string; port: number } } = {},
): Promise<void> {
  for (const name of SYSTEM_NAMESPACES)
    await ensure(registry, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  // Namespaces stored before the API server labelled them get
  // kubernetes.io/metadata.name now (an update sets it, as on create).
  const nsInfo = infoByKind('Namespace');
  for (const ns of registry.scan(nsInfo))
    if (
      !ns.metadata.deletionTimestamp &&
      ns.metadata.labels?.[NAMESPACE_NAME_LABEL] !== ns.metadata.name
    )
      await registry.update(nsInfo, undefined, ns.metadata.name!, ns);
  await ensure(registry, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: 'kubernetes',
      namespace: 'default',
      labels: { component: 'apiserver', provider: 'kubernetes' },
    },
    spec: {
      type: 'ClusterIP',
      ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: 6443 }],
    },
  });
  if (options.advertise) {
    const slice: KubeObject = {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: 'kubernetes',
        namespace: 'default',
        labels: {
          'kubernetes.io/service-name': 'kubernetes',
          'endpointslice.kubernetes.io/managed-by': 'endpointslicemirroring-controller.k8s.io',
        },
      },
      addressType: 'IPv4',
      endpoints: [
        {
          addresses: [options.advertise.ip],
          conditions: { ready: true, serving: true, terminating: false },
        },
      ],
      ports: [{ name: 'https', port: options.advertise.port, protocol: 'TCP' }],
    };
    const info = infoByKind('EndpointSlice');
    const cur = registry.peek(info, 'default', 'kubernetes');
    if (!cur) await ensure(registry, slice);
    else if (
      JSON.stringify(cur.endpoints) !== JSON.stringify(slice.endpoints) ||
      JSON.stringify(cur.ports) !== JSON.stringify(slice.ports)
    ) {
      await registry.update(info, 'default', 'kubernetes', {
        ...slice,
        metadata: { ...cur.metadata },
      });
    }
  }
}

/**
 * The datapath benchmark's service path, for every benchmark that measures it
 * (bench/datapath, bench/hubble): a lab cluster of two workers with Tendril
 * installed, an HAProxy backend pod answering 200 on the first worker, a
 * busybox client pod (`bench-client`) on the second, and a ClusterIP Service
 * `bench-svc` (port 80 -> the backend's service port) that the socket load
 * balancer translates at connect(). The caller pins the backend's processes
 * to the server CPU once it answers (`pinBackend`), and runs load from the
 * client pod (bench/lib/pod.ts).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inPod, podRunning, sleep, type LabPod } from '../../test/e2e/lab-fixture.js';
import type { KubeClient } from '../../src/k8s/client.js';
import type { KubeObject } from '../../src/k8s/objects.js';
import type { LabCluster, LabNode } from '../../src/lab/state.js';
import { backendHaproxyCfg, clientPod, haproxyPod, pinCgroup } from './pod.js';

/** How to build one service path. */
export interface ServicePathOptions {
  /** Lab cluster name (its kube context is `lab-<name>`). */
  name: string;
  /** A directory for the backend's HAProxy configuration. */
  home: string;
  /** `tendril install --set` items (e.g. `hubble-enabled=false`). */
  set?: string[];
  /** Ports the backend's HAProxy answers on; the first is the Service's target port. */
  backendPorts: readonly number[];
  /** More containers of the backend pod (e.g. iperf3 servers). */
  backendExtra?: Record<string, unknown>[];
  /** More ports of the Service (beside `http` 80 -> backendPorts[0]). */
  servicePorts?: { name: string; port: number; targetPort: number }[];
  log: (s: string) => void;
}

/** One service path, ready for load. */
export interface ServicePath {
  cluster: LabCluster;
  kube: KubeClient;
  /** The backend's worker and the client's worker. */
  backendNode: LabNode;
  clientNode: LabNode;
  /** The client pod, for inPod / wrk. */
  client: LabPod;
  backendUid: string;
  /** The backend pod's address and the Service's ClusterIP. */
  backendIP: string;
  vip: string;
  /** Pins every process of the backend pod to CPU; returns how many. */
  pinBackend(cpu: string): number;
  /** Closes the API client (the lab is the caller's to delete). */
  close(): void;
}

/**
 * Creates lab cluster NAME (two workers), installs Tendril with O.set, creates
 * the backend, the client and the Service, and waits until the client reaches
 * the backend directly. Throws naming what did not come up.
 */
export async function createServicePath(o: ServicePathOptions): Promise<ServicePath> {
  const { createCluster } = await import('../../src/lab/create.js');
  const { apiServerURL } = await import('../../src/lab/state.js');
  const { podCgroup } = await import('../../src/lab/layout.js');
  const { install } = await import('../../src/install/install.js');
  const { KubeClient } = await import('../../src/k8s/client.js');

  o.log(`creating lab cluster ${o.name} ...`);
  const cluster = await createCluster({ name: o.name, nodes: 2, wait: true });
  const kube = new KubeClient({ server: apiServerURL(cluster) });
  try {
    await install({
      context: `lab-${o.name}`,
      clusterName: o.name,
      ...(o.set ? { set: o.set } : {}),
      progress: o.log,
    });
    const [, backendNode, clientNode] = cluster.nodes as [LabNode, LabNode, LabNode];
    const cfgPath = join(o.home, `${o.name}-backend-haproxy.cfg`);
    writeFileSync(cfgPath, backendHaproxyCfg(o.backendPorts));
    await kube.create(haproxyPod('bench-backend', backendNode.name, cfgPath, o.backendExtra ?? []));
    await kube.create(clientPod(clientNode.name));
    const svc: KubeObject = await kube.create<KubeObject>({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'bench-svc', namespace: 'default' },
      spec: {
        selector: { app: 'bench-backend' },
        ports: [
          { name: 'http', port: 80, targetPort: o.backendPorts[0], protocol: 'TCP' },
          ...(o.servicePorts ?? []).map((p) => ({ ...p, protocol: 'TCP' })),
        ],
      },
    });
    const backend = await podRunning(kube, 'bench-backend');
    const clientObj = await podRunning(kube, 'bench-client');
    const backendIP = backend.status.podIP as string;
    const backendUid = backend.metadata.uid!;
    const client: LabPod = { cluster: o.name, node: clientNode.name, uid: clientObj.metadata.uid! };
    for (let i = 0; ; i++) {
      try {
        inPod(client, ['curl', '-s', '-m', '2', `http://${backendIP}:${o.backendPorts[0]}/`], 5000);
        break;
      } catch (err) {
        if (i > 60) throw new Error(`backend does not answer: ${(err as Error).message}`);
        await sleep(500);
      }
    }
    o.log(
      `${o.name}: backend ${backendIP} on ${backendNode.name}, client on ${clientNode.name}, service ${svc.spec.clusterIP}`,
    );
    return {
      cluster,
      kube,
      backendNode,
      clientNode,
      client,
      backendUid,
      backendIP,
      vip: svc.spec.clusterIP as string,
      pinBackend: (cpu) => pinCgroup(podCgroup(o.name, backendNode.name, backendUid), cpu),
      close: () => kube.close(),
    };
  } catch (err) {
    kube.close();
    throw err;
  }
}

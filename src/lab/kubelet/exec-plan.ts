/**
 * How a command runs inside a running lab pod (exec): in the pod's cgroup,
 * then its network namespace, with its resolv.conf, hosts and hostname
 * (private mount and UTS namespaces), the way the kubelet starts containers.
 * The API server's pods/exec and pods/attach use it (see
 * src/lab/apiserver/streaming.ts).
 */
import { join } from 'node:path';
import type { KubeObject } from '../../k8s/objects.js';
import { ensureBusyboxBin, resolveImage } from '../images/resolve.js';
import { podCgroup, podNetns } from '../layout.js';
import { busyboxBinDir, podLogDir, type LabCluster } from '../state.js';
import { DEFAULT_PATH, type PodContainer } from './pod-worker.js';
import { podHostname, wrapperArgv } from './runtime.js';

/** The argv and environment `exec` runs for a command in a pod (the image's program mapping applies: busybox applets, curl). */
export function execPlan(
  cluster: LabCluster,
  pod: KubeObject,
  container: PodContainer,
  cmd: string[],
  term?: string,
): { argv: string[]; env: Record<string, string> } {
  const ns = pod.metadata.namespace ?? 'default';
  const uid = pod.metadata.uid!;
  const node = pod.spec?.nodeName as string;
  const dir = podLogDir(cluster.name, ns, pod.metadata.name!, uid);
  const image = resolveImage({ image: container.image, command: cmd });
  const mapped = image.argv;
  const env: Record<string, string> = {
    PATH: `${image.busyboxPath ? ensureBusyboxBin(busyboxBinDir(cluster.name)) + ':' : ''}${DEFAULT_PATH}`,
    HOSTNAME: hostnameOf(pod),
  };
  for (const e of container.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
  if (term) env.TERM = term;
  const argv = wrapperArgv({
    cgroupDir: podCgroup(cluster.name, node, uid),
    netns: podNetnsOf(cluster, pod),
    hostname: hostnameOf(pod),
    resolvConf: join(dir, 'resolv.conf'),
    hosts: join(dir, 'hosts'),
    argv: mapped,
  });
  return { argv, env };
}

/** The network namespace a pod's containers run in (the node's with hostNetwork). */
export function podNetnsOf(cluster: LabCluster, pod: KubeObject): string {
  if (pod.spec?.hostNetwork === true) {
    const node = cluster.nodes.find((n) => n.name === pod.spec?.nodeName);
    if (node) return node.netns;
  }
  return podNetns(pod.metadata.uid!);
}

function hostnameOf(pod: KubeObject): string {
  return pod.spec?.hostNetwork === true
    ? String(pod.spec.nodeName)
    : podHostname(pod.metadata.name!);
}

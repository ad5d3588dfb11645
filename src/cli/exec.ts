/**
 * `tendril exec POD [-c C] [-i] [-t] -- CMD...`: runs a command in a running
 * lab pod, the way the kubelet starts containers: in the pod's cgroup, then
 * its network namespace, with its resolv.conf, hosts and hostname (private
 * mount and UTS namespaces). The lab is local, so the CLI does it directly
 * with nsenter; it exits with the command's exit status.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { KubeObject } from '../k8s/objects.js';
import { TendrilError, isNotFound } from '../util/errors.js';
import { ensureBusyboxBin, resolveImage } from '../lab/images/resolve.js';
import { DEFAULT_PATH, type PodContainer } from '../lab/kubelet/pod-worker.js';
import { podPath } from '../lab/kubelet/api.js';
import { podHostname, wrapperArgv } from '../lab/kubelet/runtime.js';
import { podCgroup, podNetns } from '../lab/layout.js';
import { netnsExists } from '../lab/netns.js';
import { busyboxBinDir, podLogDir, type LabCluster } from '../lab/state.js';
import { resolveLabTarget, type LabTarget } from '../lab/target.js';

/** Fetches a pod, with kubectl's NotFound wording. */
export async function fetchPod(target: LabTarget, ns: string, name: string): Promise<KubeObject> {
  try {
    return await target.api.get(podPath(ns, name));
  } catch (err) {
    if (isNotFound(err)) {
      throw new TendrilError('POD_NOT_FOUND', `pods "${name}" not found in namespace "${ns}"`, {
        hint: `see \`tendril get pods -n ${ns}\``,
      });
    }
    throw err;
  }
}

/** Picks the container: -c, else the only one, else kubectl's default-container annotation; throws naming the choices. */
export function pickContainer(pod: KubeObject, wanted: string | undefined): PodContainer {
  const containers = (pod.spec?.containers ?? []) as PodContainer[];
  const names = containers.map((c) => c.name);
  if (wanted) {
    const c = containers.find((x) => x.name === wanted);
    if (!c)
      throw new TendrilError(
        'CONTAINER_NOT_FOUND',
        `container ${wanted} is not valid for pod ${pod.metadata.name}`,
        { hint: `choose one of: [${names.join(' ')}]` },
      );
    return c;
  }
  const def = pod.metadata.annotations?.['kubectl.kubernetes.io/default-container'];
  const c =
    containers.find((x) => x.name === def) ?? (containers.length === 1 ? containers[0] : undefined);
  if (!c) {
    throw new TendrilError(
      'CONTAINER_REQUIRED',
      `a container name must be specified for pod ${pod.metadata.name}, choose one of: [${names.join(' ')}]`,
      { hint: 'pass -c NAME' },
    );
  }
  return c;
}

/** The argv and environment `exec` runs for a command in a pod (the image's program mapping applies: busybox applets, curl). */
export function execPlan(
  cluster: LabCluster,
  pod: KubeObject,
  container: PodContainer,
  cmd: string[],
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
  if (process.env.TERM) env.TERM = process.env.TERM;
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

/** Registers `tendril exec`. */
export function register(program: Command): void {
  program
    .command('exec')
    .description(
      "run a command in a running pod's container (its network namespace, cgroup and resolv.conf)",
    )
    .argument('<pod>', 'pod name')
    .argument('<command...>', 'the command (after --)')
    .option('-c, --container <name>', 'container name')
    .option('-i, --stdin', 'pass stdin to the command')
    .option('-t, --tty', 'accepted for kubectl compatibility (no terminal is allocated)')
    .option('-n, --namespace <ns>', 'namespace')
    .action(
      async (
        podName: string,
        cmd: string[],
        o: { container?: string; stdin?: boolean; namespace?: string },
        command: Command,
      ) => {
        const globals = command.optsWithGlobals() as { context?: string };
        const target = resolveLabTarget(globals.context);
        const ns = o.namespace ?? target.namespace;
        const pod = await fetchPod(target, ns, podName);
        const container = pickContainer(pod, o.container);
        const phase = pod.status?.phase;
        if (phase !== 'Running') {
          throw new TendrilError(
            'POD_NOT_RUNNING',
            `cannot exec into a container in a ${phase === 'Pending' ? 'pending' : 'completed'} pod; current phase is ${phase}`,
            {
              hint: `see \`tendril describe pod ${podName}\``,
            },
          );
        }
        if (
          !netnsExists(podNetnsOf(target.cluster, pod)) ||
          !existsSync(podLogDir(target.cluster.name, ns, podName, pod.metadata.uid!))
        ) {
          throw new TendrilError(
            'POD_NOT_ON_THIS_MACHINE',
            `pod ${ns}/${podName} has no sandbox on this machine`,
            { hint: 'is its lab cluster healthy? see `tendril lab list`' },
          );
        }
        const plan = execPlan(target.cluster, pod, container, cmd);
        const child = spawn(plan.argv[0]!, plan.argv.slice(1), {
          env: plan.env,
          stdio: [o.stdin ? 'inherit' : 'ignore', 'inherit', 'inherit'],
        });
        const code = await new Promise<number>((resolve) => {
          child.on('error', () => resolve(126));
          child.on('exit', (c, sig) =>
            resolve(c ?? 128 + (sig === 'SIGKILL' ? 9 : sig === 'SIGTERM' ? 15 : 0)),
          );
        });
        if (code !== 0) process.stderr.write(`command terminated with exit code ${code}\n`);
        process.exitCode = code;
      },
    );
}

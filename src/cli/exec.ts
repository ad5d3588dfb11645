/**
 * `tendril exec POD [-c C] [-i] [-t] -- CMD...`: runs a command in a running
 * lab pod, the way the kubelet starts containers: in the pod's cgroup, then
 * its network namespace, with its resolv.conf, hosts and hostname (private
 * mount and UTS namespaces). The lab is local, so the CLI does it directly
 * with nsenter; it exits with the command's exit status.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import type { KubeObject } from '../k8s/objects.js';
import { TendrilError, isNotFound } from '../util/errors.js';
import { podPath } from '../lab/kubelet/api.js';
import { execPlan, podNetnsOf } from '../lab/kubelet/exec-plan.js';
import type { PodContainer } from '../lab/kubelet/pod-worker.js';
import { netnsExists } from '../lab/netns.js';
import { podLogDir } from '../lab/state.js';
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
        const plan = execPlan(target.cluster, pod, container, cmd, process.env.TERM);
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

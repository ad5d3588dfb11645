/**
 * `tendril exec POD [-c C] [-i] [-t] -- CMD...`: runs a command in a running
 * lab pod through the API server's pods/exec (the WebSocket remote-command
 * protocol, as kubectl; ./exec-remote.ts). The server runs it the way the
 * kubelet starts containers: in the pod's cgroup, then its network namespace,
 * with its resolv.conf, hosts and hostname. Exits with the command's status.
 */
import { spawnSync } from 'node:child_process';
import type { Command } from 'commander';
import type { KubeObject } from '../k8s/objects.js';
import { TendrilError, isNotFound } from '../util/errors.js';
import { labAdminClientOptions } from '../lab/client.js';
import { podPath } from '../lab/kubelet/api.js';
import type { PodContainer } from '../lab/kubelet/pod-worker.js';
import { resolveLabTarget, type LabTarget } from '../lab/target.js';
import { remoteExec } from './exec-remote.js';

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
    .option('-t, --tty', "allocate a terminal for the command (of this terminal's size)")
    .option('-n, --namespace <ns>', 'namespace')
    .action(
      async (
        podName: string,
        cmd: string[],
        o: { container?: string; stdin?: boolean; tty?: boolean; namespace?: string },
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
        // through the API server's pods/exec, as kubectl (the server runs the
        // command in the pod with the kubelet's exec plan)
        // -it on a terminal: raw mode, as kubectl (keys, ^C included, go to the
        // command's terminal, which does the echo and the line endings)
        const restore = o.tty && o.stdin && process.stdin.isTTY ? rawTerminal() : undefined;
        let code: number;
        try {
          code = await remoteExec(labAdminClientOptions(target.cluster), {
            namespace: ns,
            pod: podName,
            container: container.name,
            command: cmd,
            ...(o.stdin ? { stdin: process.stdin } : {}),
            ...(o.tty ? { tty: true } : {}),
            ...(o.tty && process.stdout.isTTY
              ? {
                  termSize: {
                    get: () => ({ rows: process.stdout.rows, cols: process.stdout.columns }),
                    onChange: (fn: () => void) => {
                      process.stdout.on('resize', fn);
                      return () => process.stdout.off('resize', fn);
                    },
                  },
                }
              : {}),
            stdout: process.stdout,
            stderr: process.stderr,
          });
        } finally {
          restore?.();
        }
        if (o.stdin) process.stdin.destroy();
        if (code !== 0) process.stderr.write(`command terminated with exit code ${code}\n`);
        process.exitCode = code;
      },
    );
}

/** Puts the terminal on stdin in raw mode (`stty raw -echo`); returns what restores it. */
function rawTerminal(): () => void {
  const saved = spawnSync('stty', ['-g'], { stdio: ['inherit', 'pipe', 'ignore'] })
    .stdout?.toString()
    .trim();
  spawnSync('stty', ['raw', '-echo'], { stdio: ['inherit', 'ignore', 'ignore'] });
  return () => {
    if (saved) spawnSync('stty', [saved], { stdio: ['inherit', 'ignore', 'ignore'] });
  };
}

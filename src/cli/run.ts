/**
 * `tendril run NAME --image IMG [--rm] [-i] [-t] [--restart=...] -- ARGS...`:
 * kubectl run for lab clusters. Creates the pod; with -i, -t or --attach it
 * waits for the pod to start, streams its output (the kubelet's log of the
 * container), passes stdin with -i (through the container's stdin FIFO),
 * waits for the container to finish, deletes the pod with --rm and exits
 * with the container's exit status.
 */
import type { Command } from 'commander';
import {
  constants,
  createWriteStream,
  existsSync,
  openSync,
  readFileSync,
  readlinkSync,
} from 'node:fs';
import { join } from 'node:path';
import type { KubeObject } from '../k8s/objects.js';
import { TendrilError, isNotFound } from '../util/errors.js';
import { parseDuration } from '../util/duration.js';
import { followFile } from '../lab/follow.js';
import { podPath, type LabApi } from '../lab/kubelet/api.js';
import { sleep } from '../lab/proc.js';
import { podLogDir } from '../lab/state.js';
import { podCgroup } from '../lab/layout.js';
import { resolveLabTarget } from '../lab/target.js';

/** Options of `run` as commander parses them. */
interface RunFlags {
  image?: string;
  rm?: boolean;
  stdin?: boolean;
  tty?: boolean;
  attach?: boolean;
  restart: string;
  namespace?: string;
  env: string[];
  labels?: string;
  command?: boolean;
  port?: string;
  podRunningTimeout: string;
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

/** Parses "k=v,k2=v2" (labels) into an object; throws BAD_FLAG naming the bad item. */
export function parseKeyValues(text: string, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',').filter(Boolean)) {
    const i = part.indexOf('=');
    if (i <= 0)
      throw new TendrilError('BAD_FLAG', `${flag} "${part}" is not KEY=VALUE`, {
        hint: `e.g. ${flag} app=web`,
      });
    out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}

/** The pod `kubectl run` would create for these flags. */
export function runPod(name: string, args: string[], o: RunFlags, namespace: string): KubeObject {
  if (!o.image)
    throw new TendrilError('BAD_FLAG', 'required flag --image is missing', {
      hint: `e.g. tendril run ${name} --image=busybox -- sh -c 'echo hi'`,
    });
  if (!['Always', 'OnFailure', 'Never'].includes(o.restart)) {
    throw new TendrilError('BAD_FLAG', `invalid restart policy: ${o.restart}`, {
      hint: 'use --restart=Always, --restart=OnFailure or --restart=Never',
    });
  }
  const env = o.env.map((e) => {
    const i = e.indexOf('=');
    if (i <= 0)
      throw new TendrilError('BAD_FLAG', `--env "${e}" is not NAME=VALUE`, {
        hint: 'e.g. --env FOO=bar',
      });
    return { name: e.slice(0, i), value: e.slice(i + 1) };
  });
  const container: Record<string, unknown> = { name, image: o.image };
  if (args.length > 0) container[o.command ? 'command' : 'args'] = args;
  if (env.length) container.env = env;
  if (o.port) container.ports = [{ containerPort: Number(o.port) }];
  if (o.stdin) {
    container.stdin = true;
    container.stdinOnce = true;
  }
  if (o.tty) container.tty = true;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace,
      labels: o.labels ? parseKeyValues(o.labels, '--labels') : { run: name },
    },
    spec: { containers: [container], restartPolicy: o.restart, dnsPolicy: 'ClusterFirst' },
  };
}

type PodState = { pod?: KubeObject; gone: boolean };

async function getPod(api: LabApi, ns: string, name: string): Promise<PodState> {
  try {
    return { pod: await api.get(podPath(ns, name)), gone: false };
  } catch (err) {
    if (isNotFound(err)) return { gone: true };
    throw err;
  }
}

function terminated(pod: KubeObject | undefined): { exitCode: number; reason: string } | undefined {
  const cs = pod?.status?.containerStatuses?.[0];
  const phase = pod?.status?.phase;
  if (phase !== 'Succeeded' && phase !== 'Failed') return undefined;
  const t = cs?.state?.terminated;
  if (t)
    return { exitCode: t.exitCode, reason: t.reason ?? (t.exitCode === 0 ? 'Completed' : 'Error') };
  return { exitCode: 1, reason: pod?.status?.reason ?? 'Error' };
}

/** Deletes the pod and waits until it is gone; prints `pod "NAME" deleted` as kubectl does. */
export async function deletePodAndWait(
  api: LabApi,
  ns: string,
  name: string,
  uid: string | undefined,
  timeoutMs = 30_000,
): Promise<void> {
  try {
    await api.delete(podPath(ns, name));
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await getPod(api, ns, name);
    if (s.gone || s.pod?.metadata.uid !== uid) break;
    if (Date.now() > deadline) break;
    await sleep(100);
  }
  process.stdout.write(`pod "${name}" deleted\n`);
}

/** Registers `tendril run`. */
export function register(program: Command): void {
  program
    .command('run')
    .description(
      'create a pod running one container (like kubectl run); with -i/-t/--attach, stream its output and exit with its status',
    )
    .argument('<name>', 'pod name')
    .argument('[args...]', 'container arguments (after --); with --command, the command')
    .option(
      '--image <image>',
      'container image (mendhak/http-https-echo, curlimages/curl and busybox are built in)',
    )
    .option('--rm', 'delete the pod after it terminates (needs -i, -t or --attach)')
    .option('-i, --stdin', "pass stdin to the container (through the kubelet's stdin FIFO)")
    .option(
      '-t, --tty',
      'accepted for kubectl compatibility; the lab has no terminals, output is not a TTY',
    )
    .option('--attach', 'wait for the pod and stream its output (implied by -i and -t)')
    .option('--restart <policy>', 'restart policy: Always, OnFailure or Never', 'Always')
    .option('-n, --namespace <ns>', 'namespace')
    .option('--env <NAME=VALUE>', 'environment variable (repeatable)', collect, [])
    .option('-l, --labels <k=v,...>', 'pod labels (default run=NAME)')
    .option('--command', 'the arguments after -- are the command, not args')
    .option('--port <port>', 'container port to declare')
    .option(
      '--pod-running-timeout <duration>',
      'how long to wait for the pod to start (e.g. 60s, 2m)',
      '60s',
    )
    .action(async (name: string, args: string[], o: RunFlags, cmd: Command) => {
      const globals = cmd.optsWithGlobals() as { context?: string };
      const target = resolveLabTarget(globals.context);
      const ns = o.namespace ?? target.namespace;
      const attach = Boolean(o.stdin || o.tty || o.attach);
      if (o.rm && !attach)
        throw new TendrilError('BAD_FLAG', '--rm should only be used for attached containers', {
          hint: 'add -i, -t or --attach',
        });
      const timeoutMs = parseDuration(o.podRunningTimeout, { what: '--pod-running-timeout' });
      const created = await target.api.create(podPath(ns), runPod(name, args, o, ns));
      if (!attach) {
        process.stdout.write(`pod/${name} created\n`);
        return;
      }
      const uid = created.metadata.uid!;
      // Ctrl-C stops waiting/streaming (with --rm the pod is still deleted); exit status 130, as a shell's
      const interrupted = new AbortController();
      const onInt = () => interrupted.abort();
      process.on('SIGINT', onInt);
      const api = target.api;
      let code = 1;
      try {
        code = await attachAndWait(
          api,
          target.cluster.name,
          ns,
          name,
          uid,
          Boolean(o.stdin),
          timeoutMs,
          interrupted.signal,
        );
      } finally {
        process.off('SIGINT', onInt);
        if (o.rm) await deletePodAndWait(api, ns, name, uid);
      }
      if (code !== 0 && code !== 130)
        process.stderr.write(`pod ${ns}/${name} terminated (Error)\n`);
      process.exitCode = code;
    });
}

async function attachAndWait(
  api: LabApi,
  cluster: string,
  ns: string,
  name: string,
  uid: string,
  stdin: boolean,
  timeoutMs: number,
  interrupted: AbortSignal,
): Promise<number> {
  // 1. wait for the container to start (or the pod to finish / fail)
  const deadline = Date.now() + timeoutMs;
  let warned = false;
  let pod: KubeObject | undefined;
  for (;;) {
    const s = await getPod(api, ns, name);
    if (s.gone || s.pod?.metadata.uid !== uid)
      throw new TendrilError('RUN_POD_GONE', `pod ${ns}/${name} was deleted before it ran`);
    if (interrupted.aborted) return 130;
    pod = s.pod;
    const phase = pod.status?.phase;
    if (phase === 'Running' || phase === 'Succeeded' || phase === 'Failed') break;
    if (Date.now() > deadline) {
      const why =
        pod.status?.conditions?.find((c: { type: string }) => c.type === 'Ready')?.message ??
        pod.status?.message ??
        'no reason reported';
      throw new TendrilError(
        'RUN_TIMEOUT',
        `timed out waiting for pod ${ns}/${name} to start: ${why}`,
        {
          hint: /NetworkPluginNotReady|network/.test(why)
            ? 'install the network plugin: `tendril install --context ...`'
            : 'see `tendril describe pod ' + name + '`',
        },
      );
    }
    if (!warned && Date.now() > deadline - timeoutMs + 5000) {
      const why = pod.status?.conditions?.find(
        (c: { type: string; reason?: string }) =>
          c.type === 'Ready' && c.reason === 'NetworkPluginNotReady',
      )?.message;
      if (why) {
        process.stderr.write(`waiting for pod ${ns}/${name}: ${why}\n`);
        warned = true;
      }
    }
    await sleep(100);
  }
  if (pod.status?.phase === 'Failed' && !pod.status?.containerStatuses?.[0]?.state?.terminated) {
    process.stderr.write(
      `pod ${ns}/${name} failed: ${pod.status?.message ?? pod.status?.reason ?? 'unknown reason'}\n`,
    );
    return 1;
  }
  const dir = podLogDir(cluster, ns, name, uid);
  const container = name;
  // 2. stdin through the FIFO the kubelet made for the container
  let stdinStream: import('node:fs').WriteStream | undefined;
  if (stdin) {
    const fifo = join(dir, `${container}.stdin`);
    const d2 = Date.now() + 10_000;
    while (!existsSync(fifo) && Date.now() < d2) await sleep(50);
    if (existsSync(fifo)) {
      // O_RDWR never blocks on a FIFO (O_WRONLY would wait for a reader that may have exited already)
      stdinStream = createWriteStream('', { fd: openSync(fifo, constants.O_RDWR) });
      stdinStream.on('error', () => {});
      // Close the container's stdin at our stdin's end, but only once the container has opened
      // the FIFO: a FIFO reader that starts waiting after the last writer has come and gone
      // waits forever (seen when our stdin is empty and ends before the container starts).
      const writer = stdinStream;
      const cgroup = podCgroup(cluster, String(pod.spec?.nodeName ?? ''), uid);
      process.stdin.pipe(writer, { end: false });
      process.stdin.on('end', () => {
        void (async () => {
          while (!fifoHasReader(cgroup, fifo) && !interrupted.aborted && !writer.destroyed)
            await sleep(50);
          writer.end();
        })();
      });
      process.stdin.on('error', () => {});
    }
  }
  // 3. stream the output until the pod finishes
  let result: { exitCode: number; reason: string } | undefined;
  let lastCheck = 0;
  const logPath = join(dir, `${container}.log`);
  await followFile(logPath, (data) => process.stdout.write(data), {
    signal: interrupted,
    intervalMs: 50,
    until: async () => {
      if (Date.now() - lastCheck < 150) return false;
      lastCheck = Date.now();
      const s = await getPod(api, ns, name);
      if (s.gone || s.pod?.metadata.uid !== uid) {
        result ??= { exitCode: 1, reason: 'Deleted' };
        return true;
      }
      result = terminated(s.pod);
      return result !== undefined;
    },
  });
  if (stdinStream) {
    process.stdin.unpipe(stdinStream);
    stdinStream.destroy();
    process.stdin.destroy();
  }
  if (interrupted.aborted && result === undefined) return 130;
  return result?.exitCode ?? 1;
}

/** Whether a process of the pod (its cgroup) has the FIFO as its standard input yet. */
function fifoHasReader(cgroupDir: string, fifo: string): boolean {
  let pids: string[];
  try {
    pids = readFileSync(join(cgroupDir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
  } catch {
    return true; // the pod's cgroup is gone: nobody will read; let the writer close
  }
  for (const pid of pids) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/0`) === fifo) return true;
    } catch {
      // exited meanwhile
    }
  }
  return false;
}

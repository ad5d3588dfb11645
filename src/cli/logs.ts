/**
 * `tendril logs POD [-c C] [-f] [-p] [--tail N]`: a lab container's output,
 * read from the file the kubelet captures it in
 * ($TENDRIL_HOME/clusters/<cluster>/pods/<ns>_<pod>_<uid>/<container>.log).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { TendrilError, isNotFound } from '../util/errors.js';
import { followFile, readFrom } from '../lab/follow.js';
import { podLogDir } from '../lab/state.js';
import { resolveLabTarget } from '../lab/target.js';
import { fetchPod, pickContainer } from './exec.js';
import { podPath } from '../lab/kubelet/api.js';

/** The last `n` lines of a buffer (n < 0: all). */
export function tailLines(data: Buffer, n: number): Buffer {
  if (n < 0) return data;
  const text = data.toString();
  const lines = text.split('\n');
  const trailing = text.endsWith('\n');
  if (trailing) lines.pop();
  const kept = n === 0 ? [] : lines.slice(-n);
  return Buffer.from(kept.join('\n') + (trailing && kept.length ? '\n' : ''));
}

/** Registers `tendril logs`. */
export function register(program: Command): void {
  program
    .command('logs')
    .description("print a pod's container output")
    .argument('<pod>', 'pod name')
    .option('-c, --container <name>', 'container name')
    .option('-f, --follow', 'stream new output until the container ends')
    .option('-p, --previous', 'the previous (restarted) instance of the container')
    .option('--tail <n>', 'only the last N lines', '-1')
    .option('-n, --namespace <ns>', 'namespace')
    .action(
      async (
        podName: string,
        o: {
          container?: string;
          follow?: boolean;
          previous?: boolean;
          tail: string;
          namespace?: string;
        },
        command: Command,
      ) => {
        const globals = command.optsWithGlobals() as { context?: string };
        const target = resolveLabTarget(globals.context);
        const ns = o.namespace ?? target.namespace;
        const pod = await fetchPod(target, ns, podName);
        const c = pickContainer(pod, o.container);
        const uid = pod.metadata.uid!;
        const dir = podLogDir(target.cluster.name, ns, podName, uid);
        const path = join(dir, o.previous ? `${c.name}.previous.log` : `${c.name}.log`);
        if (!existsSync(path)) {
          if (o.previous)
            throw new TendrilError(
              'LOGS_NOT_FOUND',
              `previous terminated container "${c.name}" in pod "${podName}" not found`,
            );
          const waiting =
            (pod.status?.containerStatuses ?? []).find((s: { name: string }) => s.name === c.name)
              ?.state?.waiting?.reason ?? 'ContainerCreating';
          throw new TendrilError(
            'LOGS_NOT_FOUND',
            `container "${c.name}" in pod "${podName}" is waiting to start: ${waiting}`,
          );
        }
        const tail = Number(o.tail);
        const first = readFrom(path, 0);
        if (first) process.stdout.write(tailLines(first.data, Number.isFinite(tail) ? tail : -1));
        if (!o.follow) return;
        const ac = new AbortController();
        process.once('SIGINT', () => ac.abort());
        let last = 0;
        await followFile(path, (d) => process.stdout.write(d), {
          offset: first?.offset ?? 0,
          signal: ac.signal,
          intervalMs: 100,
          until: async () => {
            if (Date.now() - last < 300) return false;
            last = Date.now();
            try {
              const p = await target.api.get(podPath(ns, podName));
              if (p.metadata.uid !== uid) return true;
              const st = (p.status?.containerStatuses ?? []).find(
                (s: { name: string }) => s.name === c.name,
              );
              return (
                p.status?.phase === 'Succeeded' ||
                p.status?.phase === 'Failed' ||
                (st?.state?.terminated !== undefined && p.spec?.restartPolicy === 'Never')
              );
            } catch (err) {
              if (isNotFound(err)) return true;
              return false;
            }
          },
        });
      },
    );
}

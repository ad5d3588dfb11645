/**
 * Tendril's daemons in a lab cluster as kube-system objects: the marks the
 * lab's controllers, kubelets and API server read, and the daemon log's runs.
 *
 * The supervisor (src/lab/supervisor.ts) runs the agents, operator, DNS and
 * clustermesh-apiserver as processes; its reflector
 * (src/lab/daemon-reflector.ts) writes a DaemonSet `tendril-agent`,
 * Deployments `tendril-operator`, `tendril-dns`, `clustermesh-apiserver` (and
 * `hubble-relay`) and one pod per daemon through the API server, as a
 * kubelet writes mirror pods of its static pods. Every such object carries
 * {@link LAB_REFLECTION_ANNOTATION}: the lab's deployment controller and the
 * kubelets leave them alone (the supervisor owns the processes), the API
 * server serves a reflected pod's `pods/log` from the daemon's log file and
 * refuses `exec`/`attach` on it.
 */
import { readFileSync } from 'node:fs';
import type { KubeObject } from '../k8s/objects.js';
import { badRequest, invalid } from '../k8s/status.js';

/** On every reflected object (value {@link LAB_REFLECTION_OWNER}): "the supervisor owns this". */
export const LAB_REFLECTION_ANNOTATION = 'tendril.io/lab-reflection';
/** The value of {@link LAB_REFLECTION_ANNOTATION}. */
export const LAB_REFLECTION_OWNER = 'supervisor';
/** On a reflected pod: `container=daemon,...`, the supervised daemon behind each container. */
export const LAB_DAEMONS_ANNOTATION = 'tendril.io/lab-daemons';

/** True for an object the lab supervisor's reflector owns (a reflected workload or pod). */
export function isLabReflection(o: Pick<KubeObject, 'metadata'> | undefined): boolean {
  return o?.metadata?.annotations?.[LAB_REFLECTION_ANNOTATION] === LAB_REFLECTION_OWNER;
}

/** `container=daemon,...` of a reflected pod. */
export function formatPodDaemons(map: ReadonlyMap<string, string>): string {
  return [...map].map(([c, d]) => `${c}=${d}`).join(',');
}

/** The container -> daemon map of a reflected pod (empty for any other pod). */
export function podDaemons(pod: KubeObject): Map<string, string> {
  const out = new Map<string, string>();
  if (!isLabReflection(pod)) return out;
  const text = pod.metadata.annotations?.[LAB_DAEMONS_ANNOTATION] ?? '';
  for (const part of text.split(',')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i), part.slice(i + 1));
  }
  return out;
}

/**
 * Write hook of the lab API server for DaemonSets: the lab runs no DaemonSet
 * controller, so only the supervisor's reflections are stored.
 * @throws ApiError 422 Invalid naming the missing annotation and what to use instead.
 */
export function refuseUnreflectedDaemonSet(o: KubeObject): void {
  if (isLabReflection(o)) return;
  throw invalid('DaemonSet', 'apps', o.metadata?.name ?? '', [
    {
      type: 'FieldValueForbidden',
      field: `metadata.annotations[${LAB_REFLECTION_ANNOTATION}]`,
      detail: `this lab API server runs no DaemonSet controller: DaemonSets here are the lab supervisor's reflections of Tendril's agents (${LAB_REFLECTION_ANNOTATION}=${LAB_REFLECTION_OWNER}); run one Deployment per node (spec.template.spec.nodeName) instead`,
    },
  ]);
}

/** Refuses exec/attach/port-forward on a reflected pod (its containers are supervised processes). */
export function refuseStreamOnReflection(pod: KubeObject | undefined, sub: string): void {
  if (!pod) return;
  const daemons = [...podDaemons(pod).values()];
  if (daemons.length === 0) return;
  throw badRequest(
    `pod ${pod.metadata.namespace}/${pod.metadata.name} reflects the lab daemon ${daemons.map((d) => `"${d}"`).join(', ')}, a process the lab supervisor runs (not a container): ${sub} is not available; read its output with \`kubectl logs\` or \`tendril lab logs CLUSTER ${daemons[0]}\``,
  );
}

/**
 * The lines the supervisor writes into a daemon's log around each run
 * (src/lab/supervisor.ts): `--- <ISO time> supervisor: starting NAME: ARGV`
 * and `--- <ISO time> supervisor: NAME exited (...)`.
 */
const MARK = /^--- \d{4}-\d\d-\d\dT[0-9:.]+Z supervisor: /;

/** One run of a daemon in its log: byte offsets of its output (after the start line). */
export interface DaemonRun {
  start: number;
  end: number;
}

/**
 * The runs of `daemon` in its log text: each starts after a
 * `supervisor: starting DAEMON:` line and ends at the next such line (or the
 * end of the file).
 */
export function daemonRuns(log: Buffer, daemon: string): DaemonRun[] {
  const starts: Array<{ lineStart: number; after: number }> = [];
  const needle = ` supervisor: starting ${daemon}: `;
  let pos = 0;
  while (pos < log.length) {
    const nl = log.indexOf(10, pos);
    const end = nl < 0 ? log.length : nl + 1;
    // only lines that begin with "--- " can be marks
    if (log[pos] === 0x2d && log[pos + 1] === 0x2d && log[pos + 2] === 0x2d) {
      const line = log.subarray(pos, Math.min(end, pos + 4096)).toString();
      if (MARK.test(line) && line.includes(needle)) starts.push({ lineStart: pos, after: end });
    }
    pos = end;
  }
  return starts.map((s, i) => ({
    start: s.after,
    end: i + 1 < starts.length ? starts[i + 1]!.lineStart : log.length,
  }));
}

/** Drops the supervisor's own lines from a run's output. */
export function withoutMarks(data: Buffer): Buffer {
  if (!data.includes('--- ')) return data;
  const lines = data.toString().split(/(?<=\n)/);
  return Buffer.from(lines.filter((l) => !MARK.test(l)).join(''));
}

/**
 * The output of a daemon's current (or previous) run from its log file.
 * @throws ApiError 400 when there is no such run.
 */
export function readDaemonRun(
  path: string,
  daemon: string,
  which: 'current' | 'previous',
): { data: Buffer; end: number } {
  let log: Buffer;
  try {
    log = readFileSync(path);
  } catch {
    log = Buffer.alloc(0);
  }
  const runs = daemonRuns(log, daemon);
  const run = which === 'current' ? runs.at(-1) : runs.at(-2);
  if (!run)
    throw badRequest(
      which === 'previous'
        ? `previous terminated container of daemon "${daemon}" not found`
        : `daemon "${daemon}" has not started yet`,
    );
  return { data: withoutMarks(log.subarray(run.start, run.end)), end: run.end };
}

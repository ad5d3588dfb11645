/**
 * One pod on one node: its sandbox (record, cgroup, network namespace, CNI
 * ADD), its containers' processes with restart policy and backoff, readiness
 * probes, the status it reports, and its teardown (stop processes, CNI DEL,
 * remove namespace, cgroup and files, then confirm the delete to the API).
 * All work for a pod is serialized through one promise chain.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeObject } from '../../k8s/objects.js';
import type { Logger } from '../../util/log.js';
import { cgroupPids, ensureCgroup, removeCgroupTree } from '../cgroup.js';
import { ensureBusyboxBin, resolveImage } from '../images/resolve.js';
import { podCgroup, podNetns } from '../layout.js';
import { createNetns, deleteNetns, netnsExists, netnsPath } from '../netns.js';
import { signal } from '../proc.js';
import {
  busyboxBinDir,
  nodeCniBinDir,
  nodeCniConfDir,
  podLogDir,
  type LabCluster,
  type LabNode,
} from '../state.js';
import type { LabApi } from './api.js';
import { podPath } from './api.js';
import { postPodEvent } from './events.js';
import { LogTimeIndexer, timesPath } from './log-times.js';
import {
  CniError,
  NETWORK_NOT_READY_MESSAGE,
  cniAdd,
  cniCheck,
  cniDel,
  loadNetworkConfig,
  resultPodIPs,
  type CniPodRef,
  type CniResult,
} from './cni.js';
import { ProbeState, probeOnce, type ContainerPort, type ProbeSpec } from './probes.js';
import {
  podHostname,
  podHosts,
  podResolvConf,
  startContainerProcess,
  writePodFiles,
} from './runtime.js';
import { isNotFound, isConflict } from '../../util/errors.js';

/** What the kubelet records about a pod on disk (pods/<ns>_<pod>_<uid>/pod.json), before it makes anything. */
export interface PodRecord {
  uid: string;
  namespace: string;
  name: string;
  node: string;
  netns: string;
  cgroup: string;
  /** The CNI ADD result, kept for DEL and CHECK. */
  cniResult?: CniResult;
  /** spec.hostNetwork: the pod uses the node's namespace (no CNI, nothing to delete). */
  hostNetwork?: boolean;
  createdAt: string;
}

/** The kubelet-wide facts a pod worker needs. */
export interface KubeletContext {
  cluster: LabCluster;
  node: LabNode;
  api: LabApi;
  log: Logger;
  dnsIP: string;
  /** Called when the worker has finished tearing down (the kubelet forgets it). */
  onGone(uid: string): void;
}

/** The fields of a pod's container the lab kubelet uses. */
export interface PodContainer {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports?: ContainerPort[];
  readinessProbe?: ProbeSpec;
  stdin?: boolean;
  workingDir?: string;
}

type ContainerStateK8s =
  | { waiting: { reason: string; message?: string } }
  | { running: { startedAt: string } }
  | {
      terminated: {
        exitCode: number;
        signal?: number;
        reason: string;
        message?: string;
        startedAt?: string;
        finishedAt: string;
        containerID?: string;
      };
    };

interface ContainerRun {
  name: string;
  spec: PodContainer;
  child?: ChildProcess;
  exited?: Promise<void>;
  startedAt?: string;
  startedMs: number;
  restartCount: number;
  state: ContainerStateK8s;
  lastState: ContainerStateK8s | Record<string, never>;
  backoffMs: number;
  nextStartAt: number;
  /** Will not run again (restart policy says so). */
  finished: boolean;
  probe?: ProbeState;
  probeTimer?: NodeJS.Timeout;
  started: boolean;
  /** Stamps each line of the container's log with a time (log-times.ts). */
  logTimes?: LogTimeIndexer;
}

/** PATH of a container (as in most images). */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30_000;
const STABLE_MS = 10_000;
const SANDBOX_RETRY_MS = 2000;
const MAX_GRACE_S = 30;

const SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
};

/** The pod's directory of files (record, resolv.conf, hosts, container logs). */
export function podDir(cluster: string, pod: KubeObject): string {
  return podLogDir(
    cluster,
    pod.metadata.namespace ?? 'default',
    pod.metadata.name!,
    pod.metadata.uid!,
  );
}

/** Manages one pod. */
export class PodWorker {
  readonly uid: string;
  private pod: KubeObject;
  private gone = false;
  private done = false;
  private chain: Promise<void> = Promise.resolve();
  private pending = false;
  private retryTimer?: NodeJS.Timeout;
  private sandbox?: { podIPs: string[] };
  private sandboxProblem?: { reason: string; message: string };
  private imageProblem?: { reason: string; message: string };
  private readonly runs = new Map<string, ContainerRun>();
  private lastStatus = '';
  private readonly startTime: string;
  private readonly dir: string;
  private readonly log: Logger;

  constructor(
    private readonly ctx: KubeletContext,
    pod: KubeObject,
  ) {
    this.pod = pod;
    this.uid = pod.metadata.uid!;
    this.dir = podDir(ctx.cluster.name, pod);
    this.log = ctx.log.child({
      pod: `${pod.metadata.namespace}/${pod.metadata.name}`,
      uid: this.uid,
    });
    const prev = (pod.status?.containerStatuses ?? []) as { name: string; restartCount?: number }[];
    for (const c of (pod.spec?.containers ?? []) as PodContainer[]) {
      this.runs.set(c.name, {
        name: c.name,
        spec: c,
        startedMs: 0,
        restartCount: prev.find((p) => p.name === c.name)?.restartCount ?? 0,
        state: { waiting: { reason: 'ContainerCreating' } },
        lastState: {},
        backoffMs: BACKOFF_MIN_MS,
        nextStartAt: 0,
        finished: false,
        started: false,
      });
    }
    this.startTime = pod.status?.startTime ?? new Date().toISOString();
  }

  /** A newer version of the pod object arrived. */
  update(pod: KubeObject): void {
    if (pod.metadata.uid !== this.uid) return;
    this.pod = pod;
    this.kick();
  }

  /** The pod object is gone from the API (deleted for good): tear down. */
  vanished(): void {
    this.gone = true;
    this.kick();
  }

  /** Schedules a sync (coalesced). */
  kick(): void {
    if (this.done || this.pending) return;
    this.pending = true;
    this.chain = this.chain.then(async () => {
      this.pending = false;
      try {
        await this.sync();
      } catch (err) {
        this.log.warn('pod sync failed', { err });
        this.retryLater(SANDBOX_RETRY_MS);
      }
    });
  }

  /** Resolves when the queued work is done (tests, shutdown). */
  idle(): Promise<void> {
    return this.chain;
  }

  private retryLater(ms: number): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.kick(), ms);
    this.retryTimer.unref();
  }

  private async sync(): Promise<void> {
    if (this.done) return;
    if (this.gone || this.pod.metadata.deletionTimestamp) {
      await this.teardown();
      return;
    }
    if (!this.sandbox) {
      const ok = await this.ensureSandbox();
      if (!ok) {
        await this.pushStatus();
        this.retryLater(SANDBOX_RETRY_MS);
        return;
      }
    }
    const policy: string = this.pod.spec?.restartPolicy ?? 'Always';
    let nextWake = Infinity;
    for (const run of this.runs.values()) {
      if (run.child || run.finished) continue;
      if (this.imageProblem) break;
      const now = Date.now();
      if (run.nextStartAt > now) {
        nextWake = Math.min(nextWake, run.nextStartAt);
        continue;
      }
      this.startContainer(run, policy);
    }
    if (nextWake !== Infinity) this.retryLater(nextWake - Date.now());
    await this.pushStatus();
  }

  // ---- sandbox ----------------------------------------------------------------

  private record(): PodRecord | undefined {
    try {
      return JSON.parse(readFileSync(join(this.dir, 'pod.json'), 'utf8')) as PodRecord;
    } catch {
      return undefined;
    }
  }

  private writeRecord(r: PodRecord): void {
    writeFileSync(join(this.dir, 'pod.json'), JSON.stringify(r, null, 2) + '\n', { mode: 0o600 });
  }

  private hostNetwork(): boolean {
    return this.pod.spec?.hostNetwork === true;
  }

  /** The pod's network namespace: its own, or the node's with hostNetwork. */
  private netnsName(): string {
    return this.hostNetwork() ? this.ctx.node.netns : podNetns(this.uid);
  }

  /** The pod's hostname: its name, or the node's with hostNetwork. */
  private hostname(): string {
    return this.hostNetwork() ? this.ctx.node.name : podHostname(this.pod.metadata.name!);
  }

  private cniRef(): CniPodRef {
    return {
      containerId: this.uid,
      netnsPath: netnsPath(podNetns(this.uid)),
      ifName: 'eth0',
      namespace: this.pod.metadata.namespace ?? 'default',
      name: this.pod.metadata.name!,
      uid: this.uid,
    };
  }

  private async ensureSandbox(): Promise<boolean> {
    const { cluster, node } = this.ctx;
    if (this.hostNetwork()) {
      // as in Kubernetes: no CNI, the node's namespace and address
      mkdirSync(this.dir, { recursive: true });
      const cgroup = podCgroup(cluster.name, node.name, this.uid);
      if (!this.record()) {
        this.writeRecord({
          uid: this.uid,
          namespace: this.pod.metadata.namespace ?? 'default',
          name: this.pod.metadata.name!,
          node: node.name,
          netns: node.netns,
          cgroup,
          hostNetwork: true,
          createdAt: new Date().toISOString(),
        });
      }
      ensureCgroup(cgroup);
      this.sandbox = { podIPs: [node.ip] };
      this.sandboxProblem = undefined;
      return true;
    }
    let conf;
    try {
      conf = loadNetworkConfig(nodeCniConfDir(cluster.name, node.name));
    } catch (err) {
      this.sandboxProblem = {
        reason: 'NetworkPluginNotReady',
        message: `container runtime network not ready: ${(err as Error).message}`,
      };
      return false;
    }
    if (!conf) {
      this.sandboxProblem = { reason: 'NetworkPluginNotReady', message: NETWORK_NOT_READY_MESSAGE };
      return false;
    }
    mkdirSync(this.dir, { recursive: true });
    let rec = this.record();
    const netns = podNetns(this.uid);
    const cgroup = podCgroup(cluster.name, node.name, this.uid);
    if (!rec) {
      rec = {
        uid: this.uid,
        namespace: this.pod.metadata.namespace ?? 'default',
        name: this.pod.metadata.name!,
        node: node.name,
        netns,
        cgroup,
        createdAt: new Date().toISOString(),
      };
      this.writeRecord(rec);
    }
    ensureCgroup(cgroup);
    if (rec.cniResult && netnsExists(netns)) {
      // a sandbox from before a kubelet restart: CNI CHECK it, redo it when the plugin finds it broken
      try {
        await cniCheck(conf, this.cniRef(), nodeCniBinDir(cluster.name, node.name), rec.cniResult);
        this.sandbox = { podIPs: resultPodIPs(rec.cniResult) };
        this.sandboxProblem = undefined;
        return true;
      } catch (err) {
        this.log.warn('CNI CHECK failed; setting the pod network up again', { err });
        await cniDel(
          conf,
          this.cniRef(),
          nodeCniBinDir(cluster.name, node.name),
          rec.cniResult,
        ).catch(() => {});
        delete rec.cniResult;
        this.writeRecord(rec);
      }
    }
    if (rec.cniResult && !netnsExists(netns)) {
      // the namespace went away (a reboot, `lab restart`): release what the plugin holds for it first
      await cniDel(
        conf,
        { ...this.cniRef(), netnsPath: '' },
        nodeCniBinDir(cluster.name, node.name),
        rec.cniResult,
      ).catch((err: unknown) => this.log.warn('CNI DEL of a lost sandbox failed', { err }));
      delete rec.cniResult;
      this.writeRecord(rec);
    }
    await createNetns(netns);
    try {
      const result = await cniAdd(conf, this.cniRef(), nodeCniBinDir(cluster.name, node.name));
      rec.cniResult = result;
      this.writeRecord(rec);
      this.sandbox = { podIPs: resultPodIPs(result) };
      this.sandboxProblem = undefined;
      this.log.info('pod network ready', { podIPs: this.sandbox.podIPs, config: conf.file });
      return true;
    } catch (err) {
      const message =
        err instanceof CniError
          ? `failed to set up pod network: ${err.message}`
          : `failed to set up pod network: ${(err as Error).message}`;
      this.log.warn('CNI ADD failed', { err });
      this.sandboxProblem = { reason: 'FailedCreatePodSandBox', message };
      // undo a partial ADD so the next attempt starts clean
      await cniDel(conf, this.cniRef(), nodeCniBinDir(cluster.name, node.name)).catch(() => {});
      return false;
    }
  }

  // ---- containers ---------------------------------------------------------------

  private containerEnv(
    run: ContainerRun,
    imageEnv: Record<string, string>,
    busyboxPath: boolean,
  ): Record<string, string> {
    const env: Record<string, string> = {
      PATH: `${busyboxPath ? ensureBusyboxBin(busyboxBinDir(this.ctx.cluster.name)) + ':' : ''}${DEFAULT_PATH}`,
      ...imageEnv,
      HOSTNAME: this.hostname(),
    };
    const field = (path: string): string => {
      switch (path) {
        case 'metadata.name':
          return this.pod.metadata.name ?? '';
        case 'metadata.namespace':
          return this.pod.metadata.namespace ?? '';
        case 'metadata.uid':
          return this.uid;
        case 'spec.nodeName':
          return this.ctx.node.name;
        case 'spec.serviceAccountName':
          return this.pod.spec?.serviceAccountName ?? 'default';
        case 'status.hostIP':
          return this.ctx.node.ip;
        case 'status.podIP':
          return this.sandbox?.podIPs[0] ?? '';
        default: {
          const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
          if (m)
            return (
              (
                this.pod.metadata[m[1] as 'labels' | 'annotations'] as
                  Record<string, string> | undefined
              )?.[m[2]!] ?? ''
            );
          return '';
        }
      }
    };
    for (const e of run.spec.env ?? []) {
      if (e.value !== undefined)
        env[e.name] = String(e.value).replace(
          /\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g,
          (m0, n: string) => env[n] ?? m0,
        );
      else if (e.valueFrom?.fieldRef) env[e.name] = field(e.valueFrom.fieldRef.fieldPath);
      else env[e.name] = '';
    }
    return env;
  }

  private startContainer(run: ContainerRun, policy: string): void {
    let image;
    try {
      image = resolveImage(run.spec);
    } catch (err) {
      this.imageProblem = { reason: 'ImageNotAvailable', message: (err as Error).message };
      run.state = { waiting: { reason: 'ImageNotAvailable', message: (err as Error).message } };
      run.finished = true;
      this.log.warn('cannot run container', { container: run.name, err });
      return;
    }
    const logPath = join(this.dir, `${run.name}.log`);
    if (run.started && existsSync(logPath)) {
      const previous = join(this.dir, `${run.name}.previous.log`);
      renameSync(logPath, previous);
      if (existsSync(timesPath(logPath))) renameSync(timesPath(logPath), timesPath(previous));
      else rmSync(timesPath(previous), { force: true });
    }
    const podIP = this.sandbox?.podIPs[0];
    const files = writePodFiles(
      this.dir,
      podResolvConf(this.pod.metadata.namespace ?? 'default', this.ctx.dnsIP),
      podHosts(this.hostname(), podIP),
    );
    let stdinFifo: string | undefined;
    if (run.spec.stdin) {
      stdinFifo = join(this.dir, `${run.name}.stdin`);
      if (!existsSync(stdinFifo)) execFileSync('mkfifo', ['-m', '600', stdinFifo]);
    }
    const child = startContainerProcess({
      cgroupDir: podCgroup(this.ctx.cluster.name, this.ctx.node.name, this.uid),
      netns: this.netnsName(),
      hostname: this.hostname(),
      resolvConf: files.resolvConf,
      hosts: files.hosts,
      argv: image.argv,
      env: this.containerEnv(run, image.env, image.busyboxPath),
      cwd: run.spec.workingDir,
      logPath,
      ...(stdinFifo ? { stdinFifo } : {}),
    });
    run.logTimes?.stop();
    run.logTimes = new LogTimeIndexer(logPath);
    run.logTimes.start();
    const startedAt = new Date().toISOString();
    this.event(
      'Normal',
      'Pulled',
      `Container image "${run.spec.image}" already present on machine`,
      run.name,
    );
    this.event('Normal', 'Created', `Created container: ${run.name}`, run.name);
    this.event('Normal', 'Started', `Started container ${run.name}`, run.name);
    if (run.started) run.restartCount++;
    run.started = true;
    run.child = child;
    run.startedAt = startedAt;
    run.startedMs = Date.now();
    run.state = { running: { startedAt } };
    run.probe = run.spec.readinessProbe ? new ProbeState(run.spec.readinessProbe) : undefined;
    this.log.info('container started', {
      container: run.name,
      pid: child.pid,
      argv: image.argv.join(' '),
    });
    run.exited = new Promise((resolve) => {
      child.on('error', (err) =>
        this.log.warn('container process error', { container: run.name, err }),
      );
      child.on('exit', (code, sig) => {
        this.onExit(run, child, code, sig, policy);
        resolve();
      });
    });
    if (run.probe)
      this.scheduleProbe(run, (run.spec.readinessProbe?.initialDelaySeconds ?? 0) * 1000);
  }

  private scheduleProbe(run: ContainerRun, delayMs: number): void {
    clearTimeout(run.probeTimer);
    run.probeTimer = setTimeout(async () => {
      const child = run.child;
      if (!child || !run.probe || this.done) return;
      const spec = run.spec.readinessProbe!;
      const ok = await probeOnce(
        spec,
        this.sandbox?.podIPs[0] ?? '127.0.0.1',
        run.spec.ports ?? [],
      );
      if (run.child !== child) return;
      if (run.probe.record(ok)) this.kick();
      this.scheduleProbe(run, (spec.periodSeconds ?? 10) * 1000);
    }, delayMs);
    run.probeTimer.unref();
  }

  private onExit(
    run: ContainerRun,
    child: ChildProcess,
    code: number | null,
    sig: NodeJS.Signals | null,
    policy: string,
  ): void {
    if (run.child !== child) return;
    run.child = undefined;
    clearTimeout(run.probeTimer);
    run.logTimes?.stop();
    const exitCode = code ?? 128 + (sig ? (SIGNALS[sig] ?? 0) : 0);
    const finishedAt = new Date().toISOString();
    // 125: the wrapper failed before the container's program ran (cgroup, namespace, mounts)
    const reason = exitCode === 0 ? 'Completed' : exitCode === 125 ? 'StartError' : 'Error';
    const term: ContainerStateK8s = {
      terminated: {
        exitCode,
        ...(sig ? { signal: SIGNALS[sig] ?? 0 } : {}),
        reason,
        startedAt: run.startedAt,
        finishedAt,
        containerID: this.containerID(run),
      },
    };
    run.lastState = term;
    run.state = term;
    this.log.info('container exited', { container: run.name, exitCode, signal: sig });
    const restart =
      !this.pod.metadata.deletionTimestamp &&
      !this.gone &&
      (policy === 'Always' || (policy === 'OnFailure' && exitCode !== 0));
    if (!restart) {
      run.finished = true;
      run.lastState = {};
    } else {
      if (Date.now() - run.startedMs >= STABLE_MS) run.backoffMs = BACKOFF_MIN_MS;
      const delay = run.backoffMs;
      run.backoffMs = Math.min(run.backoffMs * 2, BACKOFF_MAX_MS);
      run.nextStartAt = Date.now() + delay;
      if (exitCode !== 0)
        this.event(
          'Warning',
          'BackOff',
          `Back-off restarting failed container ${run.name} in pod ${this.pod.metadata.name}_${this.pod.metadata.namespace}(${this.uid})`,
          run.name,
        );
      run.state = {
        waiting: {
          reason: 'CrashLoopBackOff',
          message: `back-off ${Math.round(delay / 1000)}s restarting failed container=${run.name} pod=${this.pod.metadata.name}_${this.pod.metadata.namespace}(${this.uid})`,
        },
      };
    }
    this.kick();
  }

  private event(
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
    container?: string,
  ): void {
    postPodEvent(
      this.ctx.api,
      this.log,
      this.ctx.node.name,
      this.pod,
      type,
      reason,
      message,
      container,
    );
  }

  private containerID(run: ContainerRun): string {
    return `tendril://${this.uid}/${run.name}/${run.restartCount}`;
  }

  // ---- status -------------------------------------------------------------------

  /** The pod status the kubelet reports now. */
  computeStatus(): Record<string, unknown> {
    const now = new Date().toISOString();
    const runs = [...this.runs.values()];
    const policy: string = this.pod.spec?.restartPolicy ?? 'Always';
    let phase: string;
    let reason: string | null = null;
    let message: string | null = null;
    if (this.imageProblem) {
      phase = 'Failed';
      reason = this.imageProblem.reason;
      message = this.imageProblem.message;
    } else if (!this.sandbox) {
      phase = 'Pending';
    } else if (runs.some((r) => !r.started)) {
      phase = 'Pending';
    } else if (runs.every((r) => r.finished)) {
      phase = runs.every((r) => 'terminated' in r.state && r.state.terminated.exitCode === 0)
        ? 'Succeeded'
        : 'Failed';
    } else {
      phase = 'Running';
    }
    if (policy === 'Never' && phase === 'Running' && runs.every((r) => r.finished))
      phase = 'Failed';
    const ready = (r: ContainerRun) => Boolean(r.child) && (!r.probe || r.probe.ready);
    const allReady = runs.length > 0 && runs.every(ready) && !this.sandboxProblem;
    const prevConds = (this.pod.status?.conditions ?? []) as {
      type: string;
      status: string;
      lastTransitionTime?: string;
    }[];
    const cond = (type: string, status: boolean, why?: { reason: string; message: string }) => {
      const s = status ? 'True' : 'False';
      const prev = prevConds.find((c) => c.type === type);
      return {
        type,
        status: s,
        lastProbeTime: null,
        lastTransitionTime:
          prev?.status === s && prev.lastTransitionTime ? prev.lastTransitionTime : now,
        ...(why ? { reason: why.reason, message: why.message } : {}),
      };
    };
    const notReadyWhy =
      this.sandboxProblem ??
      (this.imageProblem
        ? this.imageProblem
        : allReady
          ? undefined
          : {
              reason:
                phase === 'Succeeded' || phase === 'Failed' ? 'PodCompleted' : 'ContainersNotReady',
              message: `containers with unready status: [${runs
                .filter((r) => !ready(r))
                .map((r) => r.name)
                .join(' ')}]`,
            });
    const conditions = [
      cond('PodReadyToStartContainers', Boolean(this.sandbox)),
      cond('Initialized', true),
      cond('Ready', allReady, notReadyWhy),
      cond('ContainersReady', allReady, notReadyWhy),
      cond('PodScheduled', true),
    ];
    if (this.sandboxProblem) message = message ?? this.sandboxProblem.message;
    const podIPs = this.sandbox?.podIPs ?? [];
    const containerStatuses = runs.map((r) => ({
      name: r.name,
      state: r.state,
      lastState: r.lastState,
      ready: ready(r),
      restartCount: r.restartCount,
      image: r.spec.image,
      imageID: '',
      ...(r.started ? { containerID: this.containerID(r) } : {}),
      started: Boolean(r.child),
    }));
    return {
      phase,
      conditions,
      message,
      reason,
      hostIP: this.ctx.node.ip,
      hostIPs: [{ ip: this.ctx.node.ip }],
      podIP: podIPs[0] ?? null,
      podIPs: podIPs.length ? podIPs.map((ip) => ({ ip })) : null,
      startTime: this.startTime,
      containerStatuses,
      qosClass: 'BestEffort',
    };
  }

  private async pushStatus(): Promise<void> {
    if (this.done || this.gone) return;
    const status = this.computeStatus();
    const text = JSON.stringify({
      ...status,
      conditions: (status.conditions as { lastTransitionTime: string }[]).map((c) => ({
        ...c,
        lastTransitionTime: '',
      })),
    });
    if (text === this.lastStatus) return;
    try {
      const updated = await this.ctx.api.mergePatch(
        `${podPath(this.pod.metadata.namespace ?? 'default', this.pod.metadata.name!)}/status`,
        { status },
      );
      if (updated.metadata.uid === this.uid) this.pod = { ...this.pod, status: updated.status };
      this.lastStatus = text;
    } catch (err) {
      if (isNotFound(err)) {
        this.gone = true;
        this.kick();
        return;
      }
      this.log.warn('status update failed', { err });
      this.retryLater(SANDBOX_RETRY_MS);
    }
  }

  // ---- teardown ---------------------------------------------------------------

  /** Stops every container (SIGTERM to each process group, SIGKILL after the grace period). */
  private async stopContainers(graceS: number): Promise<void> {
    const live = [...this.runs.values()].filter((r) => r.child?.pid !== undefined);
    for (const r of live) {
      clearTimeout(r.probeTimer);
      if (!this.gone) this.event('Normal', 'Killing', `Stopping container ${r.name}`, r.name);
      if (!signal(-r.child!.pid!, 'SIGTERM')) signal(r.child!.pid!, 'SIGTERM');
    }
    const all = Promise.all(live.map((r) => r.exited));
    const timer = new Promise<void>((r) => setTimeout(r, graceS * 1000).unref());
    await Promise.race([all, timer]);
    for (const r of live) if (r.child?.pid) signal(-r.child.pid, 'SIGKILL');
  }

  private async teardown(): Promise<void> {
    const grace = Math.min(
      MAX_GRACE_S,
      Number(
        this.pod.metadata.deletionGracePeriodSeconds ??
          this.pod.spec?.terminationGracePeriodSeconds ??
          30,
      ),
    );
    for (const r of this.runs.values()) r.nextStartAt = Infinity;
    clearTimeout(this.retryTimer);
    await this.stopContainers(this.gone ? 0 : grace);
    await cleanupPodResources(this.ctx, this.dir, this.log);
    this.done = true;
    if (!this.gone) {
      try {
        await this.ctx.api.delete(
          podPath(this.pod.metadata.namespace ?? 'default', this.pod.metadata.name!),
          {
            gracePeriodSeconds: 0,
            preconditions: { uid: this.uid },
          },
        );
      } catch (err) {
        if (!(isNotFound(err) || isConflict(err)))
          this.log.warn('confirming pod deletion failed', { err });
      }
    }
    this.log.info('pod removed');
    this.ctx.onGone(this.uid);
  }

  /** pids of the pod's processes (for exec/tests). */
  pids(): number[] {
    return cgroupPids(podCgroup(this.ctx.cluster.name, this.ctx.node.name, this.uid));
  }
}

/**
 * Removes what a pod had on the node, from its record directory: kills what
 * remains in its cgroup and removes it, CNI DEL (with the cached result),
 * deletes its network namespace and the directory. Works for pods a previous
 * kubelet left behind.
 */
export async function cleanupPodResources(
  ctx: Pick<KubeletContext, 'cluster' | 'node' | 'log'>,
  dir: string,
  log: Logger,
): Promise<void> {
  let rec: PodRecord | undefined;
  try {
    rec = JSON.parse(readFileSync(join(dir, 'pod.json'), 'utf8')) as PodRecord;
  } catch {
    rec = undefined;
  }
  if (rec) {
    await removeCgroupTree(rec.cgroup).catch((err) =>
      log.warn('removing pod cgroup failed', { err }),
    );
  }
  // a hostNetwork pod runs in the node's namespace: no CNI DEL, and the namespace stays
  if (rec && !rec.hostNetwork) {
    if (rec.cniResult || netnsExists(rec.netns)) {
      try {
        const conf = loadNetworkConfig(nodeCniConfDir(ctx.cluster.name, ctx.node.name));
        if (conf) {
          await cniDel(
            conf,
            {
              containerId: rec.uid,
              netnsPath: netnsExists(rec.netns) ? netnsPath(rec.netns) : '',
              ifName: 'eth0',
              namespace: rec.namespace,
              name: rec.name,
              uid: rec.uid,
            },
            nodeCniBinDir(ctx.cluster.name, ctx.node.name),
            rec.cniResult,
          );
        }
      } catch (err) {
        log.warn('CNI DEL failed', { err });
      }
    }
    await deleteNetns(rec.netns).catch((err) => log.warn('deleting pod netns failed', { err }));
  }
  rmSync(dir, { recursive: true, force: true });
}

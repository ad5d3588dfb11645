/**
 * Shared fixture of the lab tests (test/e2e and the privileged tests that
 * make lab clusters) and of the benchmarks that run in lab clusters: a
 * unique lab (TENDRIL_HOME and TENDRIL_LAB_PREFIX), the CLI run as a child
 * process, polling, commands run inside a pod, two meshed lab clusters, and a
 * teardown that asserts nothing of the lab is left (no network namespace of
 * the prefix, no cgroup or bpffs directory, no process started with this
 * TENDRIL_HOME).
 *
 *   const lab = useUniqueLab('walk');      // before importing src/lab modules
 *   const pair = await createMeshedPair(); // cluster1 + cluster2, meshed
 *   ... finally { await teardownLab(lab); }
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
// layout reads TENDRIL_LAB_PREFIX when called, not when imported
import { podCgroup, podNetns } from '../../src/lab/layout.js';
import type { KubeClient } from '../../src/k8s/client.js';
import type { KubeObject } from '../../src/k8s/objects.js';

/** The repository root (this file is test/e2e/lab-fixture.ts). */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A lab of its own: prefix of every kernel object and the state root. */
export interface UniqueLab {
  prefix: string;
  home: string;
}

/**
 * Points this process (and every child) at a new lab: TENDRIL_LAB_PREFIX
 * `tendril-t<pid><tag>x` (`tendril-b<pid><tag>x` for a benchmark),
 * TENDRIL_HOME a new temp dir `tendril-<use>-<tag>-*`, KUBECONFIG a file in
 * it (lab create writes its context there). Call it before the
 * lab modules are imported (they read the environment when called, but the
 * CLI children inherit it).
 */
export function useUniqueLab(tag: string, use: 'e2e' | 'bench' = 'e2e'): UniqueLab {
  const prefix = `tendril-${use === 'bench' ? 'b' : 't'}${process.pid}${tag}x`;
  const home = mkdtempSync(join(tmpdir(), `tendril-${use}-${tag}-`));
  process.env.TENDRIL_LAB_PREFIX = prefix;
  process.env.TENDRIL_HOME = home;
  // `lab create` merges lab-NAME into $KUBECONFIG: a file of this lab, never the user's ~/.kube/config.
  process.env.KUBECONFIG = join(home, 'kubeconfig');
  delete process.env.TENDRIL_CONFIG;
  delete process.env.TENDRIL_CONTEXT;
  return { prefix, home };
}

/** The outcome of one CLI run. */
export interface CliResult {
  status: number | null;
  out: string;
  err: string;
  all: string;
}

/**
 * Runs `tendril ARGS` (bin/tendril.mjs) without blocking the event loop, so
 * several runs (e.g. a client polling while a daemon is stopped) overlap.
 */
export function cli(
  args: string[],
  opts: { input?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/tendril.mjs'), ...args], {
      env: process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, out, err, all: `${out}\n${err}` });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs `tendril ARGS` and asserts it exits 0. */
export async function cliOk(
  args: string[],
  opts: { input?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  const r = await cli(args, opts);
  assert.equal(r.status, 0, `tendril ${args.join(' ')} exited ${r.status}:\n${r.all}`);
  return r;
}

/** Sleeps MS milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls FN every INTERVALMS until it returns something other than undefined
 * or false; throws naming WHAT (and the last error) after TIMEOUTMS.
 */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 60_000,
  intervalMs = 500,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(intervalMs);
  }
}

/**
 * Waits until pod NAME of NAMESPACE is Running with an address, polling
 * every 300 ms; returns it. Throws naming the pod after TIMEOUTMS.
 */
export function podRunning(
  kube: KubeClient,
  name: string,
  timeoutMs = 90_000,
  namespace = 'default',
): Promise<KubeObject> {
  return until(
    `pod ${namespace === 'default' ? '' : `${namespace}/`}${name} running`,
    async () => {
      const p = await kube.getOrUndefined('v1', 'Pod', name, { namespace });
      return p?.status?.phase === 'Running' && p.status.podIP ? p : undefined;
    },
    timeoutMs,
    300,
  );
}

/** A pod of a lab cluster: its cgroup is <cluster>/<node>/<uid>, its netns by uid. */
export interface LabPod {
  cluster: string;
  node: string;
  uid: string;
}

/**
 * The command (for spawn/execFile) that runs ARGV inside POD: it joins the
 * pod's cgroup first (the socket LB works per cgroup; `ip netns exec` would
 * hide /sys/fs/cgroup), then enters the pod's network namespace.
 */
export function inPodCommand(pod: LabPod, argv: string[]): [string, string[]] {
  const script = `echo $$ > ${podCgroup(pod.cluster, pod.node, pod.uid)}/cgroup.procs && exec nsenter --net=/run/netns/${podNetns(pod.uid)} "$@"`;
  return ['sh', ['-c', script, 'sh', ...argv]];
}

/** Runs ARGV inside POD (see inPodCommand); returns stdout. Throws on a non-zero exit or after TIMEOUTMS. */
export function inPod(pod: LabPod, argv: string[], timeoutMs = 15_000): string {
  const [cmd, args] = inPodCommand(pod, argv);
  return execFileSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 16 << 20 });
}

/** The echo server's answer (examples/seed-walkthrough's echo image). */
export interface EchoAnswer {
  ip: string;
  os: { hostname: string };
}

/**
 * Runs curl in a new pod of CONTEXT (`tendril run --rm ... curl URL`) and
 * parses the echo JSON; undefined when the pod or the request failed.
 */
let curlPods = 0;

export async function curlFromPod(context: string, url: string): Promise<EchoAnswer | undefined> {
  // A pod name per attempt: a run that fails half-way cannot block the next one
  // with "already exists" while its pod is still being deleted.
  const name = `curl-${process.pid}-${++curlPods}`;
  const r = await cli(
    [
      '--context',
      context,
      'run',
      '-i',
      '--rm',
      '--restart=Never',
      name,
      '--image=curlimages/curl',
      '--',
      'curl',
      '-sS',
      '-m',
      '5',
      url,
    ],
    { timeoutMs: 60_000 },
  );
  // Failures are thrown (not returned as undefined) so that `until` reports the last cause.
  if (r.status !== 0)
    throw new Error(`tendril run ${name} exited ${r.status}: ${r.all.slice(-400)}`);
  const i = r.out.indexOf('{');
  if (i < 0) throw new Error(`tendril run ${name}: no JSON in the answer: ${r.out.slice(-400)}`);
  try {
    return JSON.parse(r.out.slice(i, r.out.lastIndexOf('}') + 1)) as EchoAnswer;
  } catch {
    return undefined;
  }
}

let labelledPods = 0;

/**
 * Runs curl (4 s) in a new pod of CONTEXT labelled app=APP (a policy selects it
 * by that label); true when the echo server answered (its JSON names a hostname).
 */
export async function reachFromLabelledPod(
  context: string,
  app: string,
  url: string,
): Promise<boolean> {
  const r = await cli(
    [
      '--context',
      context,
      'run',
      '-i',
      '--rm',
      '--restart=Never',
      `${app}-${process.pid}-${++labelledPods}`,
      '--labels',
      `app=${app}`,
      '--image=curlimages/curl',
      '--',
      'curl',
      '-sS',
      '-m',
      '4',
      url,
    ],
    { timeoutMs: 60_000 },
  );
  return r.status === 0 && r.out.includes('"hostname"');
}

/** Processes whose environment carries TENDRIL_HOME=HOME (other than this one). */
export function processesOfHome(home: string): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const env = readFileSync(`/proc/${d}/environ`, 'utf8').split('\0');
      if (env.includes(`TENDRIL_HOME=${home}`)) pids.push(Number(d));
    } catch {
      // gone, or a kernel thread
    }
  }
  return pids;
}

/** What of LAB is still on the machine: netns, cgroup and bpffs dirs, processes. */
export function labLeftovers(lab: UniqueLab): string[] {
  const left: string[] = [];
  const netnsDir = '/run/netns';
  if (existsSync(netnsDir))
    for (const n of readdirSync(netnsDir))
      if (n.startsWith(`${lab.prefix}-`)) left.push(`netns ${n}`);
  const cg = join(process.env.TENDRIL_CGROUP2 ?? '/sys/fs/cgroup/unified', lab.prefix);
  if (existsSync(cg)) left.push(`cgroup ${cg}`);
  const bpf = join('/sys/fs/bpf', lab.prefix);
  if (existsSync(bpf)) left.push(`bpffs ${bpf}`);
  for (const pid of processesOfHome(lab.home)) {
    let cmd = '?';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').slice(0, 120);
    } catch {
      // gone
    }
    left.push(`process ${pid}: ${cmd}`);
  }
  return left;
}

/**
 * Deletes every cluster of LAB through the CLI (`tendril lab delete --all`)
 * and returns that run and what it left behind (see labLeftovers). Whatever
 * is left is removed anyway (processes killed by pid, clusters deleted
 * through the library). LAB.home stays.
 */
export async function deleteLab(lab: UniqueLab): Promise<{ r: CliResult; left: string[] }> {
  const r = await cli(['lab', 'delete', '--all'], { timeoutMs: 180_000 });
  // the supervisor's children may take a moment to go
  let left: string[] = [];
  for (let i = 0; i < 20; i++) {
    left = labLeftovers(lab);
    if (left.length === 0) break;
    await sleep(250);
  }
  if (left.length > 0) {
    for (const pid of processesOfHome(lab.home)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    const { deleteAllClusters } = await import('../../src/lab/teardown.js');
    await deleteAllClusters().catch(() => {});
  }
  return { r, left };
}

/**
 * Deletes LAB (deleteLab) and its TENDRIL_HOME, then asserts the CLI
 * succeeded and nothing was left, so a failing test does not leak into the
 * next one.
 */
export async function teardownLab(lab: UniqueLab): Promise<void> {
  const { r, left } = await deleteLab(lab);
  rmSync(lab.home, { recursive: true, force: true });
  assert.equal(r.status, 0, `tendril lab delete --all failed:\n${r.all}`);
  assert.deepEqual(left, [], 'the lab left these behind after `tendril lab delete --all`');
}

/**
 * `tendril lab create NAME --nodes NODES --wait` (context lab-NAME); asserts
 * it exits 0 within 3 minutes.
 */
export async function createLabCluster(name: string, nodes = 1): Promise<void> {
  await cliOk(['lab', 'create', name, '--nodes', String(nodes), '--wait'], { timeoutMs: 180_000 });
}

/**
 * `tendril install` on lab cluster NAME (context lab-NAME) with cluster name
 * NAME and cluster ID ID; asserts it exits 0.
 */
export async function installTendril(name: string, id: number): Promise<void> {
  await cliOk([
    'install',
    '--context',
    `lab-${name}`,
    '--cluster-name',
    name,
    '--cluster-id',
    String(id),
  ]);
}

/**
 * One lab cluster with Tendril installed, as the single-cluster e2e tests
 * start: createLabCluster then installTendril (context lab-NAME).
 */
export async function createInstalledCluster(name = 'cluster1', id = 1, nodes = 1): Promise<void> {
  await createLabCluster(name, nodes);
  await installTendril(name, id);
}

/**
 * The seed's step 3 through the CLI: `clustermesh enable` on lab-cluster1
 * (NodePort), then `clustermesh connect` from lab-cluster2; asserts both exit
 * 0 within TIMEOUTMS each. Both clusters must have Tendril installed.
 */
export async function connectMesh(timeoutMs = 120_000): Promise<void> {
  await cliOk(
    ['clustermesh', 'enable', '--context', 'lab-cluster1', '--service-type', 'NodePort'],
    {
      timeoutMs,
    },
  );
  await cliOk(
    [
      'clustermesh',
      'connect',
      '--context',
      'lab-cluster2',
      '--destination-context',
      'lab-cluster1',
    ],
    { timeoutMs },
  );
}

/** Two meshed lab clusters, as the seed makes them. */
export interface MeshedPair {
  /** Underlay/pod CIDR details, as the lab recorded them. */
  c1: import('../../src/lab/state.js').LabCluster;
  c2: import('../../src/lab/state.js').LabCluster;
}

/**
 * The seed's steps 1-3 through the CLI: `lab create cluster1|cluster2`
 * (one worker each), `install` with IDs 1 and 2, connectMesh, and status
 * --wait on both sides.
 */
export async function createMeshedPair(): Promise<MeshedPair> {
  await createLabCluster('cluster1');
  await createLabCluster('cluster2');
  await installTendril('cluster1', 1);
  await installTendril('cluster2', 2);
  await connectMesh();
  for (const ctx of ['lab-cluster1', 'lab-cluster2'])
    await cliOk(['clustermesh', 'status', '--context', ctx, '--wait', '--wait-duration', '90s'], {
      timeoutMs: 150_000,
    });
  const { loadCluster } = await import('../../src/lab/state.js');
  return { c1: loadCluster('cluster1'), c2: loadCluster('cluster2') };
}

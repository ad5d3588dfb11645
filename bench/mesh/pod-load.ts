/**
 * Load tools for benchmarks inside lab pods, as bench/datapath/index.ts runs
 * them (same wrk invocation: one thread, 16 connections, keep-alive or
 * `Connection: close`; same pinning): a command runs in the pod's cgroup
 * (the socket LB works per cgroup) and network namespace.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { podCgroup, podNetns } from '../../src/lab/layout.js';

/** Runs `argv` inside a pod (its cgroup, then its netns); returns stdout. Throws on failure/timeout. */
export function inPod(
  cluster: string,
  node: string,
  uid: string,
  argv: string[],
  timeoutMs: number,
): string {
  const script = `echo $$ > ${podCgroup(cluster, node, uid)}/cgroup.procs && exec nsenter --net=/run/netns/${podNetns(uid)} "$@"`;
  return execFileSync('sh', ['-c', script, 'sh', ...argv], {
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 16 << 20,
  });
}

/**
 * wrk from a pod, pinned to `cpu`: requests/s (NaN when wrk failed or saw
 * connect errors/timeouts, so a broken path never counts as a figure).
 */
export function wrk(
  pod: { cluster: string; node: string; uid: string },
  url: string,
  o: { seconds: number; close: boolean; cpu: string },
): number {
  const args = [
    'taskset',
    '-c',
    o.cpu,
    'wrk',
    '-t1',
    '-c16',
    `-d${o.seconds}s`,
    '--timeout',
    '2s',
    ...(o.close ? ['-H', 'Connection: close'] : []),
    url,
  ];
  try {
    const out = inPod(pod.cluster, pod.node, pod.uid, args, (o.seconds + 15) * 1000);
    if (/Non-2xx/.test(out)) return NaN;
    const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** Pins every process (all threads) of a cgroup and its children to `cpu`; returns how many. */
export function pinCgroup(cgroup: string, cpu: string): number {
  let n = 0;
  for (const pid of readFileSync(join(cgroup, 'cgroup.procs'), 'utf8')
    .split('\n')
    .filter(Boolean)) {
    execFileSync('taskset', ['-a', '-c', '-p', cpu, pid], { stdio: 'ignore' });
    n++;
  }
  for (const e of readdirSync(cgroup, { withFileTypes: true }))
    if (e.isDirectory()) n += pinCgroup(join(cgroup, e.name), cpu);
  return n;
}

/** HAProxy configuration of a backend answering HTTP 200 "ok" on :8080 (as bench/datapath's). */
export const BACKEND_HAPROXY_CFG = `global
  maxconn 4000
defaults
  mode http
  timeout client 30s
  timeout server 30s
  timeout connect 5s
frontend web
  bind :8080
  http-request return status 200 content-type text/plain string "ok"
`;

/**
 * Load tools for the benchmarks that run inside lab pods (bench/datapath,
 * bench/mesh's full path), so both measure the same way: the same wrk
 * invocation (one thread, 16 connections, keep-alive or `Connection: close`,
 * pinned to a CPU with taskset), the same CPU pinning of a server pod, the
 * same HAProxy backend answering 200 "ok", and the same client and backend
 * pods. Commands run in a pod's cgroup and network namespace through
 * test/e2e/lab-fixture.ts's inPod/inPodCommand.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inPod, type LabPod } from '../../test/e2e/lab-fixture.js';
import type { KubeObject } from '../../src/k8s/objects.js';

/** How one wrk run goes: SECONDS long, a new connection per request when CLOSE, on CPU. */
export interface WrkOptions {
  seconds: number;
  close: boolean;
  cpu: string;
}

/** The argv of one wrk run against URL: `taskset -c CPU wrk -t1 -c16 -dS --timeout 2s [-H 'Connection: close'] URL`. */
export function wrkArgv(url: string, o: WrkOptions): string[] {
  return [
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
}

/** How long a wrk run of SECONDS may take before it is killed, in ms. */
export const wrkTimeoutMs = (seconds: number): number => (seconds + 15) * 1000;

/** Requests/s in wrk's output; NaN when there is none. */
export function requestsPerSec(out: string): number {
  const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
  return m ? Number(m[1]) : NaN;
}

/**
 * wrk from POD (see wrkArgv): requests/s, NaN when wrk failed or saw non-2xx
 * answers, so a broken path never counts as a figure.
 */
export function wrk(pod: LabPod, url: string, o: WrkOptions): number {
  try {
    const out = inPod(pod, wrkArgv(url, o), wrkTimeoutMs(o.seconds));
    if (/Non-2xx/.test(out)) return NaN;
    return requestsPerSec(out);
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

/** HAProxy configuration of a backend answering HTTP 200 "ok" on each of PORTS (in that order). */
export function backendHaproxyCfg(ports: readonly number[]): string {
  return `global
  maxconn 4000
defaults
  mode http
  timeout client 30s
  timeout server 30s
  timeout connect 5s
frontend web
${ports.map((p) => `  bind :${p}\n`).join('')}  http-request return status 200 content-type text/plain string "ok"
`;
}

/**
 * The backend pod NAME (label app=NAME) on NODENAME: HAProxy (local/haproxy)
 * with the configuration at CFGPATH (container "http", port 8080), plus
 * EXTRA containers.
 */
export function haproxyPod(
  name: string,
  nodeName: string,
  cfgPath: string,
  extra: Record<string, unknown>[] = [],
): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels: { app: name } },
    spec: {
      nodeName,
      containers: [
        {
          name: 'http',
          image: 'local/haproxy',
          command: ['haproxy', '-db', '-f', cfgPath],
          ports: [{ containerPort: 8080 }],
        },
        ...extra,
      ],
    },
  };
}

/** The client pod `bench-client` on NODENAME: busybox sleeping, a place to run wrk, curl and iperf3 from. */
export function clientPod(nodeName: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'bench-client', namespace: 'default', labels: { app: 'bench-client' } },
    spec: {
      nodeName,
      containers: [{ name: 'sleep', image: 'busybox', command: ['sleep', '36000'] }],
    },
  };
}

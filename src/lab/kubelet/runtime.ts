/**
 * Starting a container's process the lab way: join the pod's cgroup first
 * (so cgroup-attached eBPF programs see every socket it opens), then enter the
 * pod's network namespace with nsenter (not `ip netns exec`, which remounts
 * /sys), then private mount and UTS namespaces where /etc/resolv.conf and
 * /etc/hosts are bind-mounted from the pod's directory and the hostname is
 * the pod's name.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { netnsPath } from '../netns.js';

/**
 * Absolute path of a system tool (util-linux's nsenter, unshare, mount), so a
 * container's PATH (busybox applets first) cannot swap in another one.
 */
export function sysBin(name: string): string {
  for (const d of ['/usr/bin', '/bin', '/usr/sbin', '/sbin'])
    if (existsSync(`${d}/${name}`)) return `${d}/${name}`;
  return name;
}

/** The resolv.conf of a pod in `namespace` (search path and ndots as Kubernetes writes them). */
export function podResolvConf(namespace: string, dnsIP: string): string {
  return `search ${namespace}.svc.cluster.local svc.cluster.local cluster.local\nnameserver ${dnsIP}\noptions ndots:5\n`;
}

/** The /etc/hosts of a pod. */
export function podHosts(podName: string, podIP: string | undefined): string {
  const lines = [
    '# Kubernetes-managed hosts file (tendril lab).',
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
  ];
  if (podIP) lines.push(`${podIP}\t${podName}`);
  return lines.join('\n') + '\n';
}

/** Hostname of a pod (its name, at most 63 characters, as Kubernetes truncates it). */
export function podHostname(podName: string): string {
  return podName.slice(0, 63).replace(/[-.]+$/, '');
}

/** Options of startContainerProcess. */
export interface ContainerLaunch {
  /** The pod's cgroup directory. */
  cgroupDir: string;
  /** The pod's network namespace name. */
  netns: string;
  hostname: string;
  resolvConf: string;
  hosts: string;
  argv: string[];
  env: Record<string, string>;
  cwd?: string;
  /** File that receives stdout and stderr (appended). */
  logPath: string;
  /** A FIFO to read stdin from (opened by the wrapper; blocks until a writer attaches). */
  stdinFifo?: string;
}

/**
 * The wrapper argv: a shell writes its own pid into the cgroup, then execs
 * nsenter -> unshare -> a shell that sets the hostname, bind-mounts
 * resolv.conf and hosts, and execs the container's argv (so the container
 * keeps the wrapper's pid). Arguments travel as positional parameters, never
 * spliced into shell text.
 */
export function wrapperArgv(l: Omit<ContainerLaunch, 'logPath' | 'env' | 'cwd'>): string[] {
  const outer =
    'echo $$ > "$1" || exit 125; shift; ns="$1"; shift; ' +
    (l.stdinFifo ? 'exec < "$1"; ' : '') +
    'shift; ' +
    `exec ${sysBin('nsenter')} "--net=$ns" -- ${sysBin('unshare')} --mount --uts --propagation private -- /bin/sh -c "$0" container "$@"`;
  const mount = sysBin('mount');
  const inner = `echo "$1" > /proc/sys/kernel/hostname && ${mount} --bind "$2" /etc/resolv.conf && ${mount} --bind "$3" /etc/hosts || exit 125; shift 3; exec "$@"`;
  return [
    '/bin/sh',
    '-c',
    outer,
    inner,
    join(l.cgroupDir, 'cgroup.procs'),
    netnsPath(l.netns),
    l.stdinFifo ?? '-',
    l.hostname,
    l.resolvConf,
    l.hosts,
    ...l.argv,
  ];
}

/**
 * Starts a container process (detached: its own process group). Its stdout
 * and stderr go to `logPath`. The returned child's pid is the container's
 * process once the wrapper has exec'd.
 */
export function startContainerProcess(l: ContainerLaunch): ChildProcess {
  const fd = openSync(l.logPath, 'a', 0o600);
  try {
    return spawn(wrapperArgv(l)[0]!, wrapperArgv(l).slice(1), {
      cwd: l.cwd ?? '/',
      env: l.env,
      stdio: ['ignore', fd, fd],
      detached: true,
    });
  } finally {
    closeSync(fd);
  }
}

/** Writes the pod's resolv.conf and hosts files into its directory; returns their paths. */
export function writePodFiles(
  dir: string,
  resolv: string,
  hosts: string,
): { resolvConf: string; hosts: string } {
  const r = join(dir, 'resolv.conf');
  const h = join(dir, 'hosts');
  writeFileSync(r, resolv);
  writeFileSync(h, hosts);
  return { resolvConf: r, hosts: h };
}

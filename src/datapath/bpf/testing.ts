/**
 * Helpers for this package's privileged tests: throwaway network namespaces,
 * cgroups and bpffs directories with unique "tendril" names, each removed by
 * the returned cleanup. Not used by library code.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmdirSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cgroup2Root } from '../../util/paths.js';
import { asm, Helper, R0, R1, R2, R3, R6, R10 } from './asm/index.js';
import { SkBuffCtx, TcAction } from './types.js';

let seq = 0;

/** A unique name containing "tendril" for this test process. */
export function uniqueName(tag: string): string {
  const prefix = process.env.TENDRIL_LAB_PREFIX ?? `tendril-t${process.pid}x`;
  return `${prefix}${tag}${seq++}`;
}

/** Runs a command; throws with its stderr on failure. */
export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Creates a network namespace with lo up. */
export function makeNetns(tag = 'ns'): { name: string; path: string; remove(): void } {
  const name = uniqueName(tag);
  sh('ip', ['netns', 'add', name]);
  sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return {
    name,
    path: `/run/netns/${name}`,
    remove: () => {
      try {
        sh('ip', ['netns', 'del', name]);
      } catch {
        /* already gone */
      }
    },
  };
}

/** Creates a cgroup v2 directory under the unified hierarchy. */
export function makeCgroup(tag = 'cg'): { path: string; remove(): void } {
  const path = join(cgroup2Root(), uniqueName(tag));
  mkdirSync(path);
  return {
    path,
    remove: () => {
      // Move any stragglers out first; rmdir fails on a populated cgroup.
      try {
        for (const pid of readFileSync(join(path, 'cgroup.procs'), 'utf8')
          .split('\n')
          .filter(Boolean)) {
          try {
            execFileSync('sh', ['-c', `echo ${pid} > ${join(cgroup2Root(), 'cgroup.procs')}`]);
          } catch {
            /* exited */
          }
        }
      } catch {
        /* gone */
      }
      if (existsSync(path)) rmdirSync(path);
    },
  };
}

/** Starts a process, returns it with a promise of its first stdout line matching `ready`. */
export function startProcess(
  cmd: string,
  args: string[],
  ready: RegExp,
): { child: ChildProcess; ready: Promise<string> } {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const readyP = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${cmd} ${args.join(' ')}: not ready after 10s; stderr: ${err}`)),
      10_000,
    );
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = out.match(ready);
      if (m) {
        clearTimeout(timer);
        resolve(m[0]);
      }
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited with ${code} before ready; stderr: ${err}`));
    });
  });
  readyP.catch(() => {});
  return { child, ready: readyP };
}

/** Runs a command to completion; resolves with status, stdout and stderr (no throw). */
export function runProcess(
  cmd: string,
  args: string[],
  timeoutMs = 15_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Kills a child we started (by its pid) and waits for it to exit. */
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  await Promise.race([done, new Promise((r) => setTimeout(r, 3000))]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** An Ethernet + IPv4 + UDP frame to `dport`. */
export function udpFrame(dport: number): Buffer {
  const f = Buffer.alloc(14 + 20 + 8 + 4);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f.writeUInt16BE(20 + 8 + 4, 16);
  f[14 + 8] = 64;
  f[14 + 9] = 17;
  Buffer.from([10, 0, 0, 1, 10, 0, 0, 2]).copy(f, 26);
  f.writeUInt16BE(1234, 34);
  f.writeUInt16BE(dport, 36);
  f.writeUInt16BE(12, 38);
  return f;
}

/** Ethernet + IPv4 + TCP header with FLAGS (0x02 SYN, 0x10 ACK, 0x18 PSH|ACK). */
export function tcpFrame(
  src: string,
  dst: string,
  sport: number,
  dport: number,
  flags: number,
): Buffer {
  const f = Buffer.alloc(14 + 20 + 20);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f.writeUInt16BE(40, 16);
  f[14 + 8] = 64;
  f[14 + 9] = 6;
  Buffer.from(src.split('.').map(Number)).copy(f, 26);
  Buffer.from(dst.split('.').map(Number)).copy(f, 30);
  f.writeUInt16BE(sport, 34);
  f.writeUInt16BE(dport, 36);
  f[34 + 12] = 5 << 4;
  f[34 + 13] = flags;
  return f;
}

/** Ethernet + IPv4 + ICMP echo (type 8 request, 0 reply). */
export function icmpFrame(src: string, dst: string, type: number, id: number): Buffer {
  const f = Buffer.alloc(14 + 20 + 8);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f.writeUInt16BE(28, 16);
  f[14 + 8] = 64;
  f[14 + 9] = 1;
  Buffer.from(src.split('.').map(Number)).copy(f, 26);
  Buffer.from(dst.split('.').map(Number)).copy(f, 30);
  f[34] = type;
  f.writeUInt16BE(id, 38);
  f.writeUInt16BE(1, 40);
  return f;
}

/** SchedCls: drop IPv4/UDP to `port`, pass everything else; count drops in `counter[0]`. */
export function dropUdpPort(port: number, counter: { fd: number; name: string }) {
  return [
    asm.mov.reg(R6, R1),
    asm.ldxw(R2, R6, SkBuffCtx.data),
    asm.ldxw(R3, R6, SkBuffCtx.dataEnd),
    asm.mov.reg(R1, R2),
    asm.add.imm(R1, 14 + 20 + 8),
    asm.jgt.reg(R1, R3, 'pass'),
    asm.ldxh(R1, R2, 12),
    asm.jne.imm(R1, 0x0008, 'pass'), // ETH_P_IP, loaded little-endian
    asm.ldxb(R1, R2, 14 + 9),
    asm.jne.imm(R1, 17, 'pass'),
    asm.ldxh(R1, R2, 14 + 20 + 2),
    asm.be16(R1),
    asm.jne.imm(R1, port, 'pass'),
    asm.mov.imm(R1, 0),
    asm.stxw(R10, -4, R1),
    asm.loadMapPtr(R1, counter),
    asm.mov.reg(R2, R10),
    asm.add.imm(R2, -4),
    asm.call(Helper.MapLookupElem),
    asm.jeq.imm(R0, 0, 'drop'),
    asm.mov.imm(R1, 1),
    asm.atomicAdd(R0, 0, R1, 'dw'),
    asm.label('drop'),
    asm.retImm(TcAction.Drop),
    asm.label('pass'),
    asm.retImm(TcAction.Pass),
  ];
}

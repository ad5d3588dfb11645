/**
 * Attaching SchedCls programs to a network interface's ingress or egress,
 * possibly inside another network namespace. TCX (BPF links, kernel >= 6.6)
 * first; where it is missing, legacy tc (`tc filter ... bpf da pinned PATH`
 * on a clsact qdisc). The interface index is resolved, and the link created,
 * on the main thread after setns() into the target namespace (withNetns),
 * since an ifindex means something only inside its namespace.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { TendrilError } from '../../util/errors.js';
import { BPFFS_ROOT } from '../../util/paths.js';
import { BpfError, NotSupportedError, bpfError } from './errors.js';
import { haveTcx } from './features.js';
import { FD } from './fd.js';
import { BpfLink, linkCreate, type Link } from './link.js';
import { netnsPath, withNetns } from './netns.js';
import { unpinPath } from './object.js';
import type { Program } from './program.js';
import { Cmd, ifNameToIndex } from './syscall.js';
import { AttachFlags, AttachType } from './types.js';

/** Which side of the interface. */
export type TcDirection = 'ingress' | 'egress';

/** Options of attachTc. */
export interface TcAttachOptions {
  /** Interface name, e.g. "eth0" or "lxc1234". */
  ifname: string;
  direction: TcDirection;
  /** Network namespace (name under /run/netns or a path); default: the caller's. */
  netns?: string;
  /** TCX: attach before every other program (default: after them, i.e. appended). */
  first?: boolean;
  /** Legacy tc filter priority (default 1). */
  priority?: number;
  /** Use legacy tc even when TCX is available (tests of the fallback). */
  forceLegacy?: boolean;
  /** Refuse the legacy fallback: throw NotSupportedError when TCX is missing. */
  tcxOnly?: boolean;
}

function where(o: TcAttachOptions): string {
  return `${o.direction} of ${o.ifname}${o.netns ? ` in netns ${o.netns}` : ''}`;
}

/** Runs fn in the namespace (if any). */
function inNs<T>(netns: string | undefined, fn: () => T): T {
  return netns === undefined ? fn() : withNetns(netns, fn);
}

/** The ifindex of ifname inside netns; throws BpfError ENODEV naming both. */
export function interfaceIndex(ifname: string, netns?: string): number {
  const idx = inNs(netns, () => ifNameToIndex(ifname));
  if (idx === 0) {
    throw new BpfError('if_nametoindex', 19, {
      context: `find interface ${ifname}${netns ? ` in netns ${netns}` : ''}`,
      hint: `check the name with: ${netns ? `ip -n ${netns} link` : 'ip link'}`,
    });
  }
  return idx;
}

/**
 * Attaches a SchedCls program to an interface's ingress or egress: TCX (a BPF
 * link, appended after existing programs, or first with `first`) or, where the
 * kernel lacks TCX, a legacy tc filter in direct-action mode.
 * Throws BpfError naming the interface and namespace (ENODEV: no such
 * interface), NotSupportedError when `tcxOnly` and TCX is missing.
 */
export function attachTc(program: Program, options: TcAttachOptions): Link {
  if (!options.forceLegacy && haveTcx()) return attachTcx(program, options);
  if (options.tcxOnly)
    throw new NotSupportedError('TCX (tc BPF links)', {
      hint: 'use a kernel >= 6.6 or allow the legacy tc fallback',
    });
  return attachLegacyTc(program, options);
}

function attachTcx(program: Program, o: TcAttachOptions): BpfLink {
  const what = `tcx ${where(o)} (program ${program.name})`;
  const attachType = o.direction === 'ingress' ? AttachType.TcxIngress : AttachType.TcxEgress;
  const fd = inNs(o.netns, () => {
    const idx = ifNameToIndex(o.ifname);
    if (idx === 0) return -19;
    return linkCreate(program.fd, idx, attachType, o.first ? AttachFlags.Before : 0);
  });
  if (fd < 0) {
    const e = bpfError(Cmd.LinkCreate, -fd, `attach ${what}`);
    if (-fd === 19)
      (e as { hint?: string }).hint =
        `no interface ${o.ifname} there; check: ${o.netns ? `ip -n ${o.netns} link` : 'ip link'}`;
    throw e;
  }
  return new BpfLink(new FD(fd, 'link', what), what);
}

function tcCmd(netns: string | undefined, args: string[]): string {
  const cmd = netns === undefined ? 'tc' : 'nsenter';
  const full = netns === undefined ? args : [`--net=${netnsPath(netns)}`, 'tc', ...args];
  try {
    return execFileSync(cmd, full, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const stderr = String((e as { stderr?: unknown }).stderr ?? '').trim();
    throw new TendrilError(
      'TC_FAILED',
      `tc ${args.join(' ')}${netns ? ` (netns ${netns})` : ''}: ${stderr || (e as Error).message}`,
      {
        hint: 'is iproute2 tc installed, and does the interface exist?',
        cause: e,
      },
    );
  }
}

let legacySeq = 0;

/** A legacy tc filter attachment; close() deletes the filter and the pinned program. */
export class TcFilterLink implements Link {
  readonly kind = 'tc' as const;
  readonly description: string;
  readonly pinnedPath = undefined;
  #attached = true;
  readonly #o: TcAttachOptions;
  readonly #progPin: string;
  readonly #prio: number;

  constructor(o: TcAttachOptions, progPin: string, prio: number, description: string) {
    this.#o = o;
    this.#progPin = progPin;
    this.#prio = prio;
    this.description = description;
  }

  pin(): void {
    throw new NotSupportedError('pinning a legacy tc filter (it persists until deleted)', {
      hint: 'TCX links (kernel >= 6.6) can be pinned',
    });
  }

  unpin(): void {}

  detach(): void {
    if (!this.#attached) return;
    this.#attached = false;
    try {
      tcCmd(this.#o.netns, [
        'filter',
        'del',
        'dev',
        this.#o.ifname,
        this.#o.direction,
        'prio',
        String(this.#prio),
        'handle',
        '1',
        'bpf',
      ]);
    } finally {
      unpinPath(this.#progPin);
      try {
        rmdirSync(dirname(this.#progPin));
      } catch {
        /* other filters still pinned there */
      }
    }
  }

  close(): void {
    this.detach();
  }
}

function attachLegacyTc(program: Program, o: TcAttachOptions): Link {
  const what = `tc ${where(o)} (program ${program.name})`;
  // tc loads the program from bpffs: pin it under a private directory.
  const dir = join(BPFFS_ROOT, 'tendril-tc');
  mkdirSync(dir, { recursive: true });
  const pin = join(dir, `${process.pid}-${legacySeq++}-${program.name || 'prog'}`);
  const userPin = program.pinnedPath;
  program.pin(pin);
  program.pinnedPath = userPin; // the TcFilterLink owns this pin, not the program
  const prio = o.priority ?? 1;
  try {
    tcCmd(o.netns, ['qdisc', 'replace', 'dev', o.ifname, 'clsact']);
    tcCmd(o.netns, [
      'filter',
      'replace',
      'dev',
      o.ifname,
      o.direction,
      'prio',
      String(prio),
      'handle',
      '1',
      'bpf',
      'da',
      'pinned',
      pin,
    ]);
  } catch (e) {
    unpinPath(pin);
    throw e;
  }
  return new TcFilterLink(o, pin, prio, what);
}

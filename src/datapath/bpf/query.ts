/**
 * What is attached where (BPF_PROG_QUERY): the programs (and, for TCX, the
 * links) on a cgroup hook or an interface's tcx ingress/egress.
 */
import { bpfError } from './errors.js';
import { netnsPath, withNetns } from './netns.js';
import {
  BPF_ATTR_SIZE,
  Cmd,
  O_DIRECTORY,
  O_RDONLY,
  addressOf,
  bpfAddr,
  closeFd,
  ifNameToIndex,
  openFd,
  stableBuffer,
} from './syscall.js';
import { AttachType, attachTypeName, type AttachTypeId } from './types.js';
import type { TcDirection } from './tcx.js';

/** The answer of a query. */
export interface AttachedPrograms {
  /** Program IDs in execution order. */
  programIds: number[];
  /** Link IDs matching programIds (0 for programs attached without a link); TCX only. */
  linkIds: number[];
  /** attach_flags of the hook (cgroup: AllowMulti/AllowOverride). */
  attachFlags: number;
  /** Revision counter of the hook (TCX), 0n where not kept. */
  revision: bigint;
}

/** Where to query. */
export type QueryTarget =
  | { cgroup: string; attachType: AttachTypeId }
  | { ifname: string; direction: TcDirection; netns?: string };

const MAX = 64;

function run(target: number, attachType: number, what: string): AttachedPrograms {
  const ids = stableBuffer(MAX * 4);
  const links = stableBuffer(MAX * 4);
  const attr = stableBuffer(BPF_ATTR_SIZE);
  attr.writeUInt32LE(target, 0);
  attr.writeUInt32LE(attachType, 4);
  attr.writeBigUInt64LE(addressOf(ids), 16);
  attr.writeUInt32LE(MAX, 24);
  const tcx = attachType === AttachType.TcxIngress || attachType === AttachType.TcxEgress;
  if (tcx) attr.writeBigUInt64LE(addressOf(links), 40);
  const r = bpfAddr(Cmd.ProgQuery, addressOf(attr), BPF_ATTR_SIZE);
  if (r < 0) throw bpfError(Cmd.ProgQuery, -r, `query ${what}`);
  const n = Math.min(attr.readUInt32LE(24), MAX);
  const programIds: number[] = [];
  const linkIds: number[] = [];
  for (let i = 0; i < n; i++) {
    programIds.push(ids.readUInt32LE(i * 4));
    if (tcx) linkIds.push(links.readUInt32LE(i * 4));
  }
  return {
    programIds,
    linkIds,
    attachFlags: attr.readUInt32LE(12),
    revision: attr.readBigUInt64LE(56),
  };
}

/**
 * Lists the programs attached at a cgroup hook or an interface's TCX ingress/egress
 * (up to 64). Throws BpfError naming the target (ENOENT: no such cgroup; ENODEV: no such interface).
 */
export function queryAttached(target: QueryTarget): AttachedPrograms {
  if ('cgroup' in target) {
    const fd = openFd(target.cgroup, O_RDONLY | O_DIRECTORY);
    try {
      return run(
        fd,
        target.attachType,
        `cgroup ${target.cgroup} ${attachTypeName(target.attachType)}`,
      );
    } finally {
      closeFd(fd);
    }
  }
  const what = `tcx ${target.direction} of ${target.ifname}${target.netns ? ` in netns ${target.netns}` : ''}`;
  const attachType = target.direction === 'ingress' ? AttachType.TcxIngress : AttachType.TcxEgress;
  const go = () => {
    const idx = ifNameToIndex(target.ifname);
    if (idx === 0) throw bpfError(Cmd.ProgQuery, 19, `query ${what}`);
    return run(idx, attachType, what);
  };
  return target.netns === undefined ? go() : withNetns(netnsPath(target.netns), go);
}

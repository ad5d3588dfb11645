/**
 * Kernel constants for maps, programs and attach points, taken from the
 * running kernel's BTF (6.18). Stable kernel ABI.
 */

/** Map types (enum bpf_map_type). */
export const MapType = {
  Hash: 1,
  Array: 2,
  ProgArray: 3,
  PerfEventArray: 4,
  PercpuHash: 5,
  PercpuArray: 6,
  StackTrace: 7,
  CgroupArray: 8,
  LruHash: 9,
  LruPercpuHash: 10,
  LpmTrie: 11,
  ArrayOfMaps: 12,
  HashOfMaps: 13,
  Devmap: 14,
  Sockmap: 15,
  Cpumap: 16,
  Xskmap: 17,
  Sockhash: 18,
  CgroupStorage: 19,
  ReuseportSockarray: 20,
  PercpuCgroupStorage: 21,
  Queue: 22,
  Stack: 23,
  SkStorage: 24,
  DevmapHash: 25,
  StructOps: 26,
  Ringbuf: 27,
  InodeStorage: 28,
  TaskStorage: 29,
  BloomFilter: 30,
  UserRingbuf: 31,
  CgrpStorage: 32,
  Arena: 33,
} as const;
export type MapTypeId = (typeof MapType)[keyof typeof MapType];

/** The name of a map type number ("Hash"). */
export function mapTypeName(t: number): string {
  return Object.entries(MapType).find(([, v]) => v === t)?.[0] ?? `MapType(${t})`;
}

/** Whether a map type stores one value per possible CPU. */
export function isPerCpu(t: number): boolean {
  return (
    t === MapType.PercpuHash ||
    t === MapType.PercpuArray ||
    t === MapType.LruPercpuHash ||
    t === MapType.PercpuCgroupStorage
  );
}

/** Map creation flags (map_flags). */
export const MapFlags = {
  NoPrealloc: 1,
  NoCommonLru: 2,
  NumaNode: 4,
  Rdonly: 8,
  Wronly: 16,
  StackBuildId: 32,
  ZeroSeed: 64,
  RdonlyProg: 128,
  WronlyProg: 256,
  Clone: 512,
  Mmapable: 1024,
  PreserveElems: 2048,
  InnerMap: 4096,
} as const;

/** Element update flags. */
export const UpdateFlags = {
  /** Create or update. */
  Any: 0,
  /** Create only: fails with EEXIST when the key exists. */
  NoExist: 1,
  /** Update only: fails with ENOENT when the key is absent. */
  Exist: 2,
  Lock: 4,
} as const;

/** Program types (enum bpf_prog_type). */
export const ProgramType = {
  SocketFilter: 1,
  Kprobe: 2,
  SchedCls: 3,
  SchedAct: 4,
  Tracepoint: 5,
  Xdp: 6,
  PerfEvent: 7,
  CgroupSkb: 8,
  CgroupSock: 9,
  LwtIn: 10,
  LwtOut: 11,
  LwtXmit: 12,
  SockOps: 13,
  SkSkb: 14,
  CgroupDevice: 15,
  SkMsg: 16,
  RawTracepoint: 17,
  CgroupSockAddr: 18,
  LwtSeg6local: 19,
  LircMode2: 20,
  SkReuseport: 21,
  FlowDissector: 22,
  CgroupSysctl: 23,
  RawTracepointWritable: 24,
  CgroupSockopt: 25,
  Tracing: 26,
  StructOps: 27,
  Ext: 28,
  Lsm: 29,
  SkLookup: 30,
  Syscall: 31,
  Netfilter: 32,
} as const;
export type ProgramTypeId = (typeof ProgramType)[keyof typeof ProgramType];

/** The name of a program type number ("SchedCls"). */
export function programTypeName(t: number): string {
  return Object.entries(ProgramType).find(([, v]) => v === t)?.[0] ?? `ProgramType(${t})`;
}

/** Attach types (enum bpf_attach_type). */
export const AttachType = {
  CgroupInetIngress: 0,
  CgroupInetEgress: 1,
  CgroupInetSockCreate: 2,
  CgroupSockOps: 3,
  SkSkbStreamParser: 4,
  SkSkbStreamVerdict: 5,
  CgroupDevice: 6,
  SkMsgVerdict: 7,
  CgroupInet4Bind: 8,
  CgroupInet6Bind: 9,
  CgroupInet4Connect: 10,
  CgroupInet6Connect: 11,
  CgroupInet4PostBind: 12,
  CgroupInet6PostBind: 13,
  CgroupUdp4Sendmsg: 14,
  CgroupUdp6Sendmsg: 15,
  LircMode2: 16,
  FlowDissector: 17,
  CgroupSysctl: 18,
  CgroupUdp4Recvmsg: 19,
  CgroupUdp6Recvmsg: 20,
  CgroupGetsockopt: 21,
  CgroupSetsockopt: 22,
  TraceRawTp: 23,
  TraceFentry: 24,
  TraceFexit: 25,
  ModifyReturn: 26,
  LsmMac: 27,
  TraceIter: 28,
  CgroupInet4Getpeername: 29,
  CgroupInet6Getpeername: 30,
  CgroupInet4Getsockname: 31,
  CgroupInet6Getsockname: 32,
  XdpDevmap: 33,
  CgroupInetSockRelease: 34,
  XdpCpumap: 35,
  SkLookup: 36,
  Xdp: 37,
  SkSkbVerdict: 38,
  SkReuseportSelect: 39,
  SkReuseportSelectOrMigrate: 40,
  PerfEvent: 41,
  TraceKprobeMulti: 42,
  LsmCgroup: 43,
  StructOps: 44,
  Netfilter: 45,
  TcxIngress: 46,
  TcxEgress: 47,
  TraceUprobeMulti: 48,
  CgroupUnixConnect: 49,
  CgroupUnixSendmsg: 50,
  CgroupUnixRecvmsg: 51,
  CgroupUnixGetpeername: 52,
  CgroupUnixGetsockname: 53,
  NetkitPrimary: 54,
  NetkitPeer: 55,
} as const;
export type AttachTypeId = (typeof AttachType)[keyof typeof AttachType];

/** The name of an attach type number ("CgroupInet4Connect"). */
export function attachTypeName(t: number): string {
  return Object.entries(AttachType).find(([, v]) => v === t)?.[0] ?? `AttachType(${t})`;
}

/** PROG_ATTACH / LINK_CREATE flags. */
export const AttachFlags = {
  AllowOverride: 1 << 0,
  AllowMulti: 1 << 1,
  Replace: 1 << 2,
  Before: 1 << 3,
  After: 1 << 4,
  Id: 1 << 5,
  Link: 1 << 13,
} as const;

/** Return codes of TC / TCX programs. */
export const TcAction = {
  /** TCX_NEXT / TC_ACT_UNSPEC: continue with the next program. */
  Next: -1,
  /** TCX_PASS / TC_ACT_OK. */
  Pass: 0,
  /** TCX_DROP / TC_ACT_SHOT. */
  Drop: 2,
  /** TCX_REDIRECT / TC_ACT_REDIRECT. */
  Redirect: 7,
} as const;

/** Offsets in the contexts programs read (checked against the kernel's BTF). */
export const SockAddrCtx = {
  userFamily: 0,
  userIp4: 4,
  userIp6: 8,
  userPort: 24,
  family: 28,
  type: 32,
  protocol: 36,
  msgSrcIp4: 40,
  msgSrcIp6: 44,
} as const;

/** struct __sk_buff offsets. */
export const SkBuffCtx = {
  len: 0,
  pktType: 4,
  mark: 8,
  queueMapping: 12,
  protocol: 16,
  vlanPresent: 20,
  vlanTci: 24,
  vlanProto: 28,
  priority: 32,
  ingressIfindex: 36,
  ifindex: 40,
  tcIndex: 44,
  cb: 48,
  hash: 68,
  tcClassid: 72,
  data: 76,
  dataEnd: 80,
} as const;

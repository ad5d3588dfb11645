/**
 * The socket load balancer of one node: owns the LB maps (./maps.ts), the
 * four cgroup programs (./programs.ts) and their BPF links, all pinned under
 * `<bpffsDir>/lb/`, and translates ServiceEntry upserts into map writes.
 *
 * Write order (a program reading concurrently never follows a dangling id):
 * backends first, then the Maglev table, then slots 1..n, then the master
 * entry (slot 0, carrying the count); surplus slots and unused backends are
 * deleted after. Only ready backends get slots.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  attachCgroup,
  createOrUpdatePinnedLink,
  openPinnedLink,
  type Link,
} from '../../bpf/link.js';
import type { Program } from '../../bpf/program.js';
import { removePinnedTree } from '../../bpf/bpffs.js';
import { TendrilError } from '../../../util/errors.js';
import { nopLogger, type Logger } from '../../../util/log.js';
import type { Backend, Frontend, LBAlgorithm, ServiceEntry } from '../../types.js';
import type { SocketLB } from '../datapath.js';
import { maglevTable } from './maglev.js';
import {
  LB_PIN,
  lbPinDir,
  MAGLEV_M,
  openLBMaps,
  protoName,
  protoNumber,
  SvcFlags,
  type BackendValue,
  type LBMaps,
} from './maps.js';
import { HOOKS, loadHookProgram } from './programs.js';
import type { EventProgramMaps } from '../events.js';

/** Bad service input (code LB_INVALID_SERVICE) or an exhausted id space (LB_FULL). */
export class LBError extends TendrilError {
  constructor(code: string, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(code, message, options);
    this.name = 'LBError';
  }
}

export interface SocketLBOptions {
  /** The node's bpffs directory (maps and links are pinned in its `lb/` subdirectory). */
  bpffsDir: string;
  /** The cgroup v2 directory whose processes get the socket LB. */
  cgroupPath: string;
  logger?: Logger;
  /** Only open the maps (no programs, no attach): for `tendril debug` and tests. */
  mapsOnly?: boolean;
  /** Flow events: connect4 reports each translation to this ring (absent: no events). */
  events?: EventProgramMaps;
}

interface SvcState {
  id: number;
  count: number;
  backendIds: number[];
  algorithm: LBAlgorithm;
}

const feKey = (f: Frontend) => `${f.ip}:${f.port}/${f.protocol}`;
const beKey = (ip: string, port: number, proto: number) => `${ip}:${port}/${proto}`;
const MAX_SLOTS = 0xffff;
const MAX_SVC_ID = 0xffff;

/** The eBPF socket LB. Use `SocketLB.open()` (or `createSocketLB`). */
export class BpfSocketLB implements SocketLB {
  readonly maps: LBMaps;
  private readonly log: Logger;
  private readonly programs: Program[] = [];
  private readonly links: Link[] = [];
  private readonly services = new Map<string, SvcState>();
  private readonly svcIds = new Set<number>();
  private readonly backends = new Map<string, { id: number; refs: number }>();
  private readonly backendById = new Map<number, BackendValue>();
  private nextSvcId = 1;
  private nextBackendId = 1;
  private closed = false;

  private constructor(
    private readonly o: SocketLBOptions,
    maps: LBMaps,
  ) {
    this.maps = maps;
    this.log = (o.logger ?? nopLogger).child({ subsys: 'socket-lb' });
  }

  /**
   * Opens (or reuses) the pinned maps, adopts the services already in them,
   * loads the programs and attaches them to the cgroup through pinned BPF links
   * (a link pinned by a previous run gets the new program atomically).
   * Throws MapMismatchError, VerifierError, BpfError (e.g. ENOENT: no such cgroup).
   */
  static open(o: SocketLBOptions): BpfSocketLB {
    const maps = openLBMaps(o.bpffsDir);
    const lb = new BpfSocketLB(o, maps);
    try {
      lb.adopt();
      if (!o.mapsOnly) lb.attach();
    } catch (e) {
      lb.close();
      throw e;
    }
    return lb;
  }

  private linkPath(hook: string): string {
    return join(lbPinDir(this.o.bpffsDir), LB_PIN.links, hook);
  }

  private attach(): void {
    if (!existsSync(this.o.cgroupPath))
      throw new LBError('LB_NO_CGROUP', `cgroup ${this.o.cgroupPath} does not exist`, {
        hint: 'the socket LB attaches to a cgroup v2 directory; create it or check TENDRIL_CGROUP2',
      });
    mkdirSync(join(lbPinDir(this.o.bpffsDir), LB_PIN.links), { recursive: true });
    for (const h of HOOKS) {
      const prog = loadHookProgram(h.hook, this.maps, this.o.events);
      this.programs.push(prog);
      const link = createOrUpdatePinnedLink(this.linkPath(h.hook), prog, () =>
        attachCgroup(prog, { cgroup: this.o.cgroupPath, attachType: h.attachType }),
      );
      this.links.push(link);
      this.log.debug('attached', { hook: h.hook, kind: link.kind, cgroup: this.o.cgroupPath });
    }
  }

  /** Rebuilds the in-memory index (service ids, backend ids and refs) from the pinned maps. */
  private adopt(): void {
    for (const [id, v] of this.maps.backends.entries()) {
      this.backendById.set(id, v);
      this.backends.set(beKey(v.ip, v.port, v.proto), { id, refs: 0 });
      this.nextBackendId = Math.max(this.nextBackendId, id + 1);
    }
    const slots = new Map<string, Map<number, number>>();
    for (const [k, v] of this.maps.services.entries()) {
      const fe = feKey({ ip: k.vip, port: k.dport, protocol: protoName(k.proto) });
      if (k.slot === 0) {
        this.services.set(fe, {
          id: v.revNat,
          count: v.count,
          backendIds: [],
          algorithm: v.flags & SvcFlags.Maglev ? 'maglev' : 'random',
        });
        this.svcIds.add(v.revNat);
      } else {
        if (!slots.has(fe)) slots.set(fe, new Map());
        slots.get(fe)!.set(k.slot, v.backendId);
      }
    }
    for (const [fe, s] of this.services) {
      const sl = slots.get(fe) ?? new Map<number, number>();
      for (let i = 1; i <= s.count; i++) {
        const id = sl.get(i);
        if (id !== undefined) s.backendIds.push(id);
      }
      // Slots beyond the count are leftovers of an interrupted update: keep them referenced until the next upsert.
      for (const [slot, id] of sl) if (slot > s.count) s.backendIds.push(id);
      for (const id of s.backendIds) {
        const v = this.backendById.get(id);
        if (v) this.backends.get(beKey(v.ip, v.port, v.proto))!.refs++;
      }
    }
    if (this.services.size || this.backends.size)
      this.log.info('adopted pinned services', {
        services: this.services.size,
        backends: this.backends.size,
      });
  }

  /** Whether all four programs are attached (links open). */
  attached(): boolean {
    return !this.closed && this.links.length === HOOKS.length;
  }

  private allocSvcId(): number {
    for (let n = 0; n < MAX_SVC_ID; n++) {
      const id = ((this.nextSvcId - 1 + n) % MAX_SVC_ID) + 1;
      if (!this.svcIds.has(id)) {
        this.svcIds.add(id);
        this.nextSvcId = id + 1;
        return id;
      }
    }
    throw new LBError('LB_FULL', 'no free service id (65535 services in the socket LB)');
  }

  private acquireBackend(b: Backend, proto: number): number {
    const k = beKey(b.ip, b.port, proto);
    let e = this.backends.get(k);
    if (!e) {
      const id = this.nextBackendId++;
      if (id > 0xffffffff) throw new LBError('LB_FULL', 'backend ids exhausted');
      const v: BackendValue = { ip: b.ip, port: b.port, proto, flags: 0, clusterId: b.clusterId };
      this.maps.backends.update(id, v);
      this.backendById.set(id, v);
      e = { id, refs: 0 };
      this.backends.set(k, e);
    } else {
      const cur = this.backendById.get(e.id);
      if (cur && cur.clusterId !== b.clusterId) {
        const v = { ...cur, clusterId: b.clusterId };
        this.maps.backends.update(e.id, v);
        this.backendById.set(e.id, v);
      }
    }
    e.refs++;
    return e.id;
  }

  private releaseBackend(id: number): void {
    const v = this.backendById.get(id);
    if (!v) return;
    const k = beKey(v.ip, v.port, v.proto);
    const e = this.backends.get(k);
    if (!e) return;
    if (--e.refs <= 0) {
      this.maps.backends.delete(id);
      this.backends.delete(k);
      this.backendById.delete(id);
    }
  }

  /**
   * Writes a service: its ready backends get slots (random) or Maglev table
   * entries. Idempotent. Throws LBError (LB_INVALID_SERVICE) for bad input,
   * CodecError/BpfError from the maps.
   */
  upsertService(svc: ServiceEntry): void {
    this.check();
    validate(svc);
    const f = svc.frontend;
    const proto = protoNumber(f.protocol);
    const seen = new Set<string>();
    const ready = svc.backends.filter((b) => {
      const k = `${b.ip}:${b.port}`;
      if (!b.ready || seen.has(k)) return false;
      seen.add(k);
      return true;
    });
    if (ready.length > MAX_SLOTS - 1)
      throw new LBError('LB_INVALID_SERVICE', `service ${feKey(f)} has ${ready.length} backends`, {
        hint: `at most ${MAX_SLOTS - 1} backends per service`,
      });
    const old = this.services.get(feKey(f));
    const id = old?.id ?? this.allocSvcId();
    // 1. backends
    const ids = ready.map((b) => this.acquireBackend(b, proto));
    const maglev = svc.algorithm === 'maglev';
    // 2. maglev table
    if (maglev && ids.length > 0) {
      const table = maglevTable(
        ready.map((b, i) => ({ name: `${b.ip}:${b.port}`, id: ids[i]! })),
        MAGLEV_M,
      );
      this.maps.maglev.update(id, table);
    }
    // 3. slots, 4. master
    const key = { vip: f.ip, dport: f.port, proto };
    ids.forEach((bid, i) =>
      this.maps.services.update(
        { ...key, slot: i + 1 },
        { backendId: bid, count: 0, revNat: id, flags: 0 },
      ),
    );
    this.maps.services.update(
      { ...key, slot: 0 },
      { backendId: 0, count: ids.length, revNat: id, flags: maglev ? SvcFlags.Maglev : 0 },
    );
    // 5. cleanup: surplus slots, table, backends no longer used
    const oldCount = old ? Math.max(old.count, old.backendIds.length) : 0;
    for (let s = ids.length + 1; s <= oldCount; s++) this.maps.services.delete({ ...key, slot: s });
    if (!maglev || ids.length === 0) this.maps.maglev.delete(id);
    for (const bid of old?.backendIds ?? []) this.releaseBackend(bid);
    this.services.set(feKey(f), {
      id,
      count: ids.length,
      backendIds: ids,
      algorithm: svc.algorithm,
    });
  }

  /** Removes a service (master first, so new connections stop at once). Idempotent. */
  deleteService(frontend: Frontend): void {
    this.check();
    const s = this.services.get(feKey(frontend));
    if (!s) return;
    const key = { vip: frontend.ip, dport: frontend.port, proto: protoNumber(frontend.protocol) };
    this.maps.services.delete({ ...key, slot: 0 });
    for (let i = 1; i <= Math.max(s.count, s.backendIds.length); i++)
      this.maps.services.delete({ ...key, slot: i });
    this.maps.maglev.delete(s.id);
    for (const bid of s.backendIds) this.releaseBackend(bid);
    this.services.delete(feKey(frontend));
    this.svcIds.delete(s.id);
  }

  /** The services as the maps hold them (backends ready, in slot order). */
  listServices(): ServiceEntry[] {
    this.check();
    return readServices(this.maps);
  }

  /** The service id (rev-NAT index) of a frontend, for debugging. */
  serviceId(frontend: Frontend): number | undefined {
    return this.services.get(feKey(frontend))?.id;
  }

  /** Closes fds. Pinned maps and links stay: the programs keep running for an agent restart. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const l of this.links) l.close();
    for (const p of this.programs) p.close();
    for (const m of Object.values(this.maps)) m.close();
  }

  /** Uninstall: detaches the programs, removes every pin of the LB, and closes. */
  destroy(): void {
    if (!this.closed) {
      for (const l of this.links) {
        try {
          l.detach();
        } catch (e) {
          this.log.warn('detach failed', { link: l.description, error: e });
        }
      }
      this.close();
    }
    destroyPinnedLB(this.o.bpffsDir);
  }

  private check(): void {
    if (this.closed)
      throw new LBError('LB_CLOSED', 'the socket LB is closed', {
        hint: 'open a new one with createSocketLB()',
      });
  }
}

/** Reads the services from opened LB maps. */
export function readServices(maps: LBMaps): ServiceEntry[] {
  const masters: Array<{
    vip: string;
    dport: number;
    proto: number;
    count: number;
    flags: number;
  }> = [];
  const slots = new Map<string, number>();
  for (const [k, v] of maps.services.entries()) {
    if (k.slot === 0) masters.push({ ...k, count: v.count, flags: v.flags });
    else slots.set(`${k.vip}:${k.dport}/${k.proto}#${k.slot}`, v.backendId);
  }
  const out: ServiceEntry[] = [];
  for (const m of masters) {
    const backends: Backend[] = [];
    for (let i = 1; i <= m.count; i++) {
      const id = slots.get(`${m.vip}:${m.dport}/${m.proto}#${i}`);
      const b = id === undefined ? undefined : maps.backends.lookup(id);
      if (b) backends.push({ ip: b.ip, port: b.port, clusterId: b.clusterId, ready: true });
    }
    out.push({
      frontend: { ip: m.vip, port: m.dport, protocol: protoName(m.proto) },
      backends,
      algorithm: m.flags & SvcFlags.Maglev ? 'maglev' : 'random',
    });
  }
  out.sort((a, b) => (feKey(a.frontend) < feKey(b.frontend) ? -1 : 1));
  return out;
}

/**
 * Detaches the LB's pinned links under `bpffsDir` and removes all its pins
 * (uninstall, even without an open SocketLB). Missing pins are fine.
 */
export function destroyPinnedLB(bpffsDir: string): void {
  const dir = lbPinDir(bpffsDir);
  for (const h of HOOKS) {
    const p = join(dir, LB_PIN.links, h.hook);
    if (!existsSync(p)) continue;
    const l = openPinnedLink(p);
    try {
      l.detach();
    } finally {
      l.close();
    }
  }
  if (existsSync(dir)) removePinnedTree(dir);
}

function validate(svc: ServiceEntry): void {
  const f = svc.frontend;
  const bad = (what: string, hint: string) =>
    new LBError('LB_INVALID_SERVICE', `service ${f?.ip}:${f?.port}/${f?.protocol}: ${what}`, {
      hint,
    });
  if (!f || !/^\d{1,3}(\.\d{1,3}){3}$/.test(f.ip))
    throw bad('frontend is not an IPv4 address', 'the socket LB handles IPv4 services only');
  if (!Number.isInteger(f.port) || f.port < 1 || f.port > 65535)
    throw bad(`port ${f.port} is out of range`, 'ports are 1-65535');
  if (f.protocol !== 'TCP' && f.protocol !== 'UDP')
    throw bad(`protocol ${String(f.protocol)} is not supported`, 'use TCP or UDP');
  if (svc.algorithm !== 'random' && svc.algorithm !== 'maglev')
    throw bad(`algorithm ${String(svc.algorithm)} is unknown`, "use 'random' or 'maglev'");
  for (const b of svc.backends) {
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(b.ip))
      throw bad(`backend ${b.ip} is not an IPv4 address`, 'backends must be IPv4');
    if (!Number.isInteger(b.port) || b.port < 1 || b.port > 65535)
      throw bad(`backend port ${b.port} is out of range`, 'ports are 1-65535');
  }
}

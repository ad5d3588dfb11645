/**
 * eBPF maps. A `MapSpec` describes a map; `newMap` creates it, `openPinnedMap`
 * opens a pinned one, `createOrReusePinnedMap` reuses a pinned map after
 * checking that it matches the spec. A `BpfMap` is typed by its key and value
 * codecs, so callers pass objects; element operations reuse preallocated,
 * stable buffers and a preformatted attr, so the fast path allocates nothing.
 */
import { mapOpRecorder } from '../map-ops.js';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { bytes, checkCodecSize, type Codec } from './codec.js';
import {
  BpfError,
  CodecError,
  MapMismatchError,
  SpecError,
  bpfError,
  errnoNumber,
} from './errors.js';
import { FD } from './fd.js';
import { getPinnedObject, objectInfo, pinObject, readCString, unpinPath } from './object.js';
import {
  BPF_ATTR_SIZE,
  Cmd,
  addressNumber,
  addressOf,
  bpf,
  bpfAddr,
  stableBuffer,
} from './syscall.js';
import { MapFlags, MapType, isPerCpu, mapTypeName, type MapTypeId } from './types.js';

const ENOENT = errnoNumber('ENOENT')!;

/** Describes a map to create. */
export interface MapSpec<K = Buffer, V = Buffer> {
  /** Kernel name: up to 15 characters of [A-Za-z0-9_.]. */
  name: string;
  type: MapTypeId;
  /** Key size in bytes; defaults to the key codec's size (0 for RINGBUF). */
  keySize?: number;
  /** Value size in bytes (one CPU's value for per-CPU maps); defaults to the value codec's size. */
  valueSize?: number;
  /** Maximum entries (for RINGBUF: the data size in bytes, a power of 2 multiple of the page size). */
  maxEntries: number;
  /** map_flags (MapFlags). LPM_TRIE always gets NoPrealloc, which the kernel requires. */
  flags?: number;
  /** Key codec; default raw bytes of keySize. */
  key?: Codec<K>;
  /** Value codec; default raw bytes of valueSize. */
  value?: Codec<V>;
}

/** What the kernel says about a map (BPF_OBJ_GET_INFO_BY_FD). */
export interface MapInfo {
  type: number;
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
}

/** Options of batch operations. */
export interface BatchOptions {
  /** Entries per syscall for batch lookup (default 4096). */
  batchSize?: number;
  /** elem_flags (UpdateFlags) for batch update. */
  flags?: number;
}

let possibleCpusCache: number | undefined;

/** Number of possible CPUs (per-CPU map values hold one slot per possible CPU). */
export function possibleCpus(): number {
  if (possibleCpusCache !== undefined) return possibleCpusCache;
  const text = readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim();
  let n = 0;
  for (const part of text.split(',')) {
    const [a, b] = part.split('-').map(Number);
    n += b === undefined ? 1 : b - a! + 1;
  }
  possibleCpusCache = n;
  return n;
}

function round8(n: number): number {
  return (n + 7) & ~7;
}

const NAME_RE = /^[A-Za-z0-9_.]{0,15}$/;

function checkName(name: string, what: string): void {
  if (!NAME_RE.test(name))
    throw new SpecError(
      `${what} name "${name}" is invalid`,
      'use at most 15 characters of A-Z a-z 0-9 _ .',
    );
}

/** Normalised spec: sizes and flags as the kernel will see them. */
function normalise<K, V>(
  spec: MapSpec<K, V>,
): { keySize: number; valueSize: number; flags: number } {
  checkName(spec.name, 'map');
  const ring = spec.type === MapType.Ringbuf;
  const keySize = spec.keySize ?? spec.key?.size ?? (ring ? 0 : undefined);
  const valueSize = spec.valueSize ?? spec.value?.size ?? (ring ? 0 : undefined);
  if (keySize === undefined)
    throw new SpecError(`map ${spec.name}: no keySize and no key codec`, 'set keySize or key');
  if (valueSize === undefined)
    throw new SpecError(
      `map ${spec.name}: no valueSize and no value codec`,
      'set valueSize or value',
    );
  if (spec.key) checkCodecSize(spec.key, keySize, `map ${spec.name} key`);
  if (spec.value) checkCodecSize(spec.value, valueSize, `map ${spec.name} value`);
  if (!Number.isInteger(spec.maxEntries) || spec.maxEntries <= 0)
    throw new SpecError(`map ${spec.name}: maxEntries must be a positive integer`);
  let flags = spec.flags ?? 0;
  if (spec.type === MapType.LpmTrie) flags |= MapFlags.NoPrealloc;
  if (ring && (spec.maxEntries & (spec.maxEntries - 1)) !== 0) {
    throw new SpecError(
      `map ${spec.name}: a RINGBUF size must be a power of 2 (got ${spec.maxEntries})`,
      'use e.g. 65536',
    );
  }
  return { keySize, valueSize, flags };
}

/**
 * Creates a map. Throws SpecError for a bad spec (before the syscall) and
 * BpfError when the kernel refuses (EPERM: not root; EINVAL: bad sizes for the type).
 */
export function newMap<K = Buffer, V = Buffer>(spec: MapSpec<K, V>): BpfMap<K, V> {
  const { keySize, valueSize, flags } = normalise(spec);
  const attr = stableBuffer(BPF_ATTR_SIZE);
  attr.writeUInt32LE(spec.type, 0);
  attr.writeUInt32LE(keySize, 4);
  attr.writeUInt32LE(valueSize, 8);
  attr.writeUInt32LE(spec.maxEntries, 12);
  attr.writeUInt32LE(flags >>> 0, 16);
  attr.write(spec.name, 28, 15, 'latin1');
  const fd = bpf(Cmd.MapCreate, attr, `create map ${spec.name} (${mapTypeName(spec.type)})`);
  return new BpfMap<K, V>(new FD(fd, 'map', spec.name), {
    name: spec.name,
    type: spec.type,
    keySize,
    valueSize,
    maxEntries: spec.maxEntries,
    flags,
    key: spec.key,
    value: spec.value,
  });
}

/** Reads a map fd's info. */
export function mapInfoOf(fd: number, what: string): MapInfo {
  const b = objectInfo(fd, 96, what);
  return {
    type: b.readUInt32LE(0),
    id: b.readUInt32LE(4),
    keySize: b.readUInt32LE(8),
    valueSize: b.readUInt32LE(12),
    maxEntries: b.readUInt32LE(16),
    flags: b.readUInt32LE(20),
    name: readCString(b, 24, 16),
  };
}

/** Options for opening a pinned map: codecs for its keys and values. */
export interface OpenMapOptions<K, V> {
  key?: Codec<K>;
  value?: Codec<V>;
}

/**
 * Opens the map pinned at `path`. Throws BpfError (ENOENT: nothing pinned there)
 * or CodecError when a codec's size differs from the map's.
 */
export function openPinnedMap<K = Buffer, V = Buffer>(
  path: string,
  options: OpenMapOptions<K, V> = {},
): BpfMap<K, V> {
  const raw = getPinnedObject(path, 'map');
  const fd = new FD(raw, 'map', path);
  try {
    const info = mapInfoOf(raw, `map ${path}`);
    if (options.key) checkCodecSize(options.key, info.keySize, `pinned map ${path} key`);
    if (options.value) checkCodecSize(options.value, info.valueSize, `pinned map ${path} value`);
    const m = new BpfMap<K, V>(fd, {
      name: info.name,
      type: info.type as MapTypeId,
      keySize: info.keySize,
      valueSize: info.valueSize,
      maxEntries: info.maxEntries,
      flags: info.flags,
      key: options.key,
      value: options.value,
    });
    m.pinnedPath = path;
    return m;
  } catch (e) {
    fd.close();
    throw e;
  }
}

/**
 * Reuses the map pinned at `path` when its type, key/value sizes, maxEntries
 * and flags match `spec`; otherwise creates the map and pins it there.
 * Throws MapMismatchError (leaving the pinned map untouched) when they differ.
 */
export function createOrReusePinnedMap<K = Buffer, V = Buffer>(
  spec: MapSpec<K, V>,
  path: string,
): BpfMap<K, V> {
  const want = normalise(spec);
  if (existsSync(path)) {
    const m = openPinnedMap<K, V>(path);
    const diffs: string[] = [];
    const info = m.info();
    if (info.type !== spec.type)
      diffs.push(`type ${mapTypeName(info.type)} != ${mapTypeName(spec.type)}`);
    if (info.keySize !== want.keySize) diffs.push(`keySize ${info.keySize} != ${want.keySize}`);
    if (info.valueSize !== want.valueSize)
      diffs.push(`valueSize ${info.valueSize} != ${want.valueSize}`);
    if (info.maxEntries !== spec.maxEntries)
      diffs.push(`maxEntries ${info.maxEntries} != ${spec.maxEntries}`);
    if (info.flags !== want.flags)
      diffs.push(`flags 0x${info.flags.toString(16)} != 0x${want.flags.toString(16)}`);
    if (diffs.length > 0) {
      m.close();
      throw new MapMismatchError(path, diffs);
    }
    m.close();
    const reused = openPinnedMap<K, V>(path, { key: spec.key, value: spec.value });
    return reused;
  }
  mkdirSync(dirname(path), { recursive: true });
  const m = newMap(spec);
  try {
    m.pin(path);
  } catch (e) {
    m.close();
    // another process pinned it between our check and our pin: reuse theirs (checked as above)
    if ((e as { errnoName?: string }).errnoName === 'EEXIST' && existsSync(path))
      return createOrReusePinnedMap(spec, path);
    throw e;
  }
  return m;
}

interface MapShape<K, V> {
  name: string;
  type: MapTypeId;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  key: Codec<K> | undefined;
  value: Codec<V> | undefined;
}

/** A created or opened map. Holds a file descriptor: close() it. */
export class BpfMap<K = Buffer, V = Buffer> {
  readonly name: string;
  readonly type: MapTypeId;
  readonly keySize: number;
  /** One CPU's value size for per-CPU maps. */
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  readonly perCpu: boolean;
  /** Where the map is pinned, if it is. */
  pinnedPath: string | undefined;
  readonly #fd: FD;
  readonly #key: Codec<K>;
  readonly #value: Codec<V>;
  /** Bytes a lookup returns: valueSize, or round8(valueSize) x possible CPUs. */
  readonly #valueBytes: number;
  // Preallocated stable buffers for element operations.
  readonly #kb: Buffer;
  readonly #vb: Buffer;
  readonly #nkb: Buffer;
  readonly #attr: Buffer;
  readonly #attrAddr: number;
  /** The elem flags last written into #attr (offset 24), so updates rewrite them only on change. */
  #attrFlags = 0;
  readonly #iterAttr: Buffer;
  readonly #iterAttrAddr: number;
  /** DELETE_ELEM takes only map_fd and key (value and flags must be zero). */
  readonly #delAttr: Buffer;
  readonly #delAttrAddr: number;
  #batch: { keys: Buffer; values: Buffer; attr: Buffer; inTok: Buffer; outTok: Buffer } | undefined;

  constructor(fd: FD, shape: MapShape<K, V>) {
    this.#fd = fd;
    this.name = shape.name;
    this.type = shape.type;
    this.keySize = shape.keySize;
    this.valueSize = shape.valueSize;
    this.maxEntries = shape.maxEntries;
    this.flags = shape.flags;
    this.perCpu = isPerCpu(shape.type);
    this.#key = shape.key ?? (bytes(shape.keySize) as unknown as Codec<K>);
    this.#value = shape.value ?? (bytes(shape.valueSize) as unknown as Codec<V>);
    this.#valueBytes = this.perCpu ? round8(shape.valueSize) * possibleCpus() : shape.valueSize;
    this.#kb = stableBuffer(Math.max(shape.keySize, 8));
    this.#vb = stableBuffer(Math.max(this.#valueBytes, 8));
    this.#nkb = stableBuffer(Math.max(shape.keySize, 8));
    this.#attr = stableBuffer(32);
    this.#attr.writeUInt32LE(fd.raw, 0);
    this.#attr.writeBigUInt64LE(addressOf(this.#kb), 8);
    this.#attr.writeBigUInt64LE(addressOf(this.#vb), 16);
    this.#attrAddr = addressNumber(this.#attr);
    this.#iterAttr = stableBuffer(32);
    this.#iterAttr.writeUInt32LE(fd.raw, 0);
    this.#iterAttr.writeBigUInt64LE(addressOf(this.#kb), 8);
    this.#iterAttr.writeBigUInt64LE(addressOf(this.#nkb), 16);
    this.#iterAttrAddr = addressNumber(this.#iterAttr);
    this.#delAttr = stableBuffer(16);
    this.#delAttr.writeUInt32LE(fd.raw, 0);
    this.#delAttr.writeBigUInt64LE(addressOf(this.#kb), 8);
    this.#delAttrAddr = addressNumber(this.#delAttr);
  }

  /** The raw file descriptor (throws after close()). */
  get fd(): number {
    return this.#fd.raw;
  }

  get closed(): boolean {
    return this.#fd.closed;
  }

  /** The key codec. */
  get keyCodec(): Codec<K> {
    return this.#key;
  }

  /** The value codec. */
  get valueCodec(): Codec<V> {
    return this.#value;
  }

  #fail(cmd: number, errno: number, what: string): BpfError {
    return bpfError(cmd, errno, `${what} map ${this.name}`);
  }

  #setFlags(flags: number): void {
    if (flags !== this.#attrFlags) {
      this.#attr.writeUInt32LE(flags, 24);
      this.#attrFlags = flags;
    }
  }

  #checkOpen(): void {
    if (this.#fd.closed) void this.#fd.raw; // throws the use-after-close error
  }

  #notPerCpu(op: string): void {
    if (this.perCpu)
      throw new SpecError(
        `${op} on per-CPU map ${this.name}`,
        `use ${op}PerCpu (one value per possible CPU)`,
      );
  }

  /** The value for key, or undefined when absent. Throws BpfError on other failures. */
  lookup(key: K): V | undefined {
    this.#notPerCpu('lookup');
    return this.#lookupRaw(key) ? this.#value.decode(this.#vb, 0) : undefined;
  }

  #lookupRaw(key: K): boolean {
    this.#checkOpen();
    this.#key.encode(key, this.#kb, 0);
    this.#setFlags(0);
    const r = bpfAddr(Cmd.MapLookupElem, this.#attrAddr, 32);
    if (r === -ENOENT) return false;
    if (r < 0) throw this.#fail(Cmd.MapLookupElem, -r, 'lookup in');
    return true;
  }

  /** Per-CPU maps: one value per possible CPU, or undefined when absent. */
  lookupPerCpu(key: K): V[] | undefined {
    if (!this.#lookupRaw(key)) return undefined;
    const stride = round8(this.valueSize);
    const n = this.#valueBytes / stride;
    const out: V[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = this.#value.decode(this.#vb, i * stride);
    return out;
  }

  /**
   * Creates or updates key (flags: UpdateFlags.Any | NoExist | Exist). The fast path:
   * encodes into preallocated buffers and calls bpf(2) with a preformatted attr.
   * Throws CodecError for a bad key/value, BpfError (E2BIG: map full; EEXIST with NoExist).
   */
  update(key: K, value: V, flags = 0): void {
    this.#notPerCpu('update');
    this.#checkOpen();
    this.#key.encode(key, this.#kb, 0);
    this.#value.encode(value, this.#vb, 0);
    this.#setFlags(flags);
    const r = bpfAddr(Cmd.MapUpdateElem, this.#attrAddr, 32);
    mapOpRecorder?.record(this.name, 'update', r < 0 ? 'fail' : 'success', 1);
    if (r < 0) throw this.#fail(Cmd.MapUpdateElem, -r, 'update');
  }

  /** Per-CPU maps: sets every CPU's value (an array of possibleCpus() values, or one value for all). */
  updatePerCpu(key: K, values: V | V[], flags = 0): void {
    this.#checkOpen();
    this.#key.encode(key, this.#kb, 0);
    const stride = round8(this.valueSize);
    const n = this.#valueBytes / stride;
    if (Array.isArray(values) && values.length !== n) {
      throw new CodecError(
        `map ${this.name}: ${values.length} per-CPU values given, ${n} possible CPUs`,
      );
    }
    this.#vb.fill(0, 0, this.#valueBytes);
    for (let i = 0; i < n; i++)
      this.#value.encode(Array.isArray(values) ? values[i]! : values, this.#vb, i * stride);
    this.#setFlags(flags);
    const r = bpfAddr(Cmd.MapUpdateElem, this.#attrAddr, 32);
    mapOpRecorder?.record(this.name, 'update', r < 0 ? 'fail' : 'success', 1);
    if (r < 0) throw this.#fail(Cmd.MapUpdateElem, -r, 'update');
  }

  /** Deletes key; returns false when it was absent. */
  delete(key: K): boolean {
    this.#checkOpen();
    this.#key.encode(key, this.#kb, 0);
    const r = bpfAddr(Cmd.MapDeleteElem, this.#delAttrAddr, 16);
    mapOpRecorder?.record(this.name, 'delete', r < 0 && r !== -ENOENT ? 'fail' : 'success', 1);
    if (r === -ENOENT) return false;
    if (r < 0) throw this.#fail(Cmd.MapDeleteElem, -r, 'delete from');
    return true;
  }

  /**
   * Iterates keys (BPF_MAP_GET_NEXT_KEY). Deleting the current key makes a hash map's
   * walk restart from the first key (keys may repeat): to delete while walking,
   * collect the keys first (`[...map.keys()]`) or use batchLookup({ andDelete }).
   */
  *keys(): IterableIterator<K> {
    this.#checkOpen();
    // First call with key = NULL.
    this.#iterAttr.writeBigUInt64LE(0n, 8);
    let r = bpfAddr(Cmd.MapGetNextKey, this.#iterAttrAddr, 32);
    this.#iterAttr.writeBigUInt64LE(addressOf(this.#kb), 8);
    let guard = 0;
    while (r === 0) {
      const k = this.#key.decode(this.#nkb, 0);
      // Copy next key into the key buffer for the following call, before yielding (callers may use the map).
      this.#nkb.copy(this.#kb, 0, 0, this.keySize);
      const saved = Buffer.from(this.#kb.subarray(0, this.keySize));
      yield k;
      saved.copy(this.#kb, 0);
      r = bpfAddr(Cmd.MapGetNextKey, this.#iterAttrAddr, 32);
      if (++guard > this.maxEntries * 4 + 16) break;
    }
    if (r < 0 && r !== -ENOENT) throw this.#fail(Cmd.MapGetNextKey, -r, 'iterate');
  }

  /** Iterates [key, value] pairs (skipping keys deleted meanwhile). Per-CPU maps yield V[] in the value. */
  *entries(): IterableIterator<[K, V]> {
    for (const k of this.keys()) {
      if (this.perCpu) {
        const v = this.lookupPerCpu(k);
        if (v !== undefined) yield [k, v as unknown as V];
      } else {
        const v = this.lookup(k);
        if (v !== undefined) yield [k, v];
      }
    }
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }

  #batchBuffers(n: number) {
    const kb = n * this.keySize;
    const vb = n * this.#valueBytes;
    if (!this.#batch || this.#batch.keys.length < kb || this.#batch.values.length < vb) {
      const tok = Math.max(this.keySize, 8);
      this.#batch = {
        keys: stableBuffer(Math.max(kb, 8)),
        values: stableBuffer(Math.max(vb, 8)),
        attr: stableBuffer(56),
        inTok: stableBuffer(tok),
        outTok: stableBuffer(tok),
      };
    }
    return this.#batch;
  }

  #batchCall(cmd: number, attr: Buffer, what: string): number {
    const r = bpfAddr(cmd, addressOf(attr), 56);
    if (r < 0 && r !== -ENOENT) {
      const err = this.#fail(cmd, -r, what);
      (err as { processed?: number }).processed = attr.readUInt32LE(32);
      throw err;
    }
    return r;
  }

  /**
   * Creates or updates many entries in one syscall (BPF_MAP_UPDATE_BATCH).
   * Per-CPU maps take V[] per key. Throws BpfError (with `processed`) on failure.
   */
  batchUpdate(keys: readonly K[], values: readonly V[], options: BatchOptions = {}): void {
    this.#checkOpen();
    if (keys.length !== values.length)
      throw new CodecError(
        `batch update of map ${this.name}: ${keys.length} keys but ${values.length} values`,
      );
    const n = keys.length;
    if (n === 0) return;
    const b = this.#batchBuffers(n);
    const ks = this.keySize;
    const vs = this.#valueBytes;
    const kc = this.#key;
    const vc = this.#value;
    for (let i = 0; i < n; i++) kc.encode(keys[i]!, b.keys, i * ks);
    if (this.perCpu) {
      const stride = round8(this.valueSize);
      for (let i = 0; i < n; i++) {
        const per = values[i] as unknown as V[];
        for (let c = 0; c < vs / stride; c++) vc.encode(per[c]!, b.values, i * vs + c * stride);
      }
    } else {
      for (let i = 0; i < n; i++) vc.encode(values[i]!, b.values, i * vs);
    }
    this.#batchUpdateFrom(b.keys, b.values, n, options.flags ?? 0);
  }

  /** Batch update from already-encoded keys (n x keySize) and values (n x value bytes). */
  batchUpdateRaw(keys: Buffer, values: Buffer, count: number, options: BatchOptions = {}): void {
    this.#checkOpen();
    if (keys.length < count * this.keySize || values.length < count * this.#valueBytes) {
      throw new CodecError(
        `batch update of map ${this.name}: buffers too small for ${count} entries`,
      );
    }
    const b = this.#batchBuffers(count);
    keys.copy(b.keys, 0, 0, count * this.keySize);
    values.copy(b.values, 0, 0, count * this.#valueBytes);
    this.#batchUpdateFrom(b.keys, b.values, count, options.flags ?? 0);
  }

  #batchUpdateFrom(keys: Buffer, values: Buffer, n: number, flags: number): void {
    const a = this.#batchBuffers(n).attr;
    a.fill(0);
    a.writeBigUInt64LE(addressOf(keys), 16);
    a.writeBigUInt64LE(addressOf(values), 24);
    a.writeUInt32LE(n, 32);
    a.writeUInt32LE(this.#fd.raw, 36);
    a.writeUInt32LE(flags, 40);
    try {
      this.#batchCall(Cmd.MapUpdateBatch, a, 'batch update');
    } catch (err) {
      mapOpRecorder?.record(this.name, 'batch_update', 'fail', n);
      throw err;
    }
    mapOpRecorder?.record(this.name, 'batch_update', 'success', n);
  }

  /** Deletes many keys in one syscall (BPF_MAP_DELETE_BATCH). Absent keys fail with ENOENT. */
  batchDelete(keys: readonly K[]): void {
    this.#checkOpen();
    const n = keys.length;
    if (n === 0) return;
    const b = this.#batchBuffers(n);
    for (let i = 0; i < n; i++) this.#key.encode(keys[i]!, b.keys, i * this.keySize);
    const a = b.attr;
    a.fill(0);
    a.writeBigUInt64LE(addressOf(b.keys), 16);
    a.writeUInt32LE(n, 32);
    a.writeUInt32LE(this.#fd.raw, 36);
    const r = bpfAddr(Cmd.MapDeleteBatch, addressOf(a), 56);
    mapOpRecorder?.record(this.name, 'batch_delete', r < 0 ? 'fail' : 'success', n);
    if (r < 0) throw this.#fail(Cmd.MapDeleteBatch, -r, 'batch delete from');
  }

  /**
   * Reads every entry with BPF_MAP_LOOKUP_BATCH, `batchSize` per syscall.
   * `andDelete` empties the map while reading (LOOKUP_AND_DELETE_BATCH).
   * Per-CPU maps yield V[] in the value.
   */
  batchLookup(options: BatchOptions & { andDelete?: boolean } = {}): Array<[K, V]> {
    const out: Array<[K, V]> = [];
    this.batchLookupRaw((keys, values, count) => {
      for (let i = 0; i < count; i++) {
        const k = this.#key.decode(keys, i * this.keySize);
        out.push([k, this.#decodeValueAt(values, i * this.#valueBytes)]);
      }
    }, options);
    return out;
  }

  #decodeValueAt(buf: Buffer, off: number): V {
    if (!this.perCpu) return this.#value.decode(buf, off);
    const stride = round8(this.valueSize);
    const n = this.#valueBytes / stride;
    const per: V[] = new Array(n);
    for (let c = 0; c < n; c++) per[c] = this.#value.decode(buf, off + c * stride);
    return per as unknown as V;
  }

  /**
   * Batch lookup without decoding: calls onBatch(keys, values, count) for each chunk;
   * the buffers are reused between calls. Returns the number of entries read.
   */
  batchLookupRaw(
    onBatch: (keys: Buffer, values: Buffer, count: number) => void,
    options: BatchOptions & { andDelete?: boolean } = {},
  ): number {
    this.#checkOpen();
    const size = Math.max(1, Math.min(options.batchSize ?? 4096, this.maxEntries));
    const b = this.#batchBuffers(size);
    const cmd = options.andDelete ? Cmd.MapLookupAndDeleteBatch : Cmd.MapLookupBatch;
    const a = b.attr;
    let first = true;
    let total = 0;
    for (;;) {
      a.fill(0);
      if (!first) {
        b.outTok.copy(b.inTok);
        a.writeBigUInt64LE(addressOf(b.inTok), 0);
      }
      a.writeBigUInt64LE(addressOf(b.outTok), 8);
      a.writeBigUInt64LE(addressOf(b.keys), 16);
      a.writeBigUInt64LE(addressOf(b.values), 24);
      a.writeUInt32LE(size, 32);
      a.writeUInt32LE(this.#fd.raw, 36);
      const r = this.#batchCall(cmd, a, 'batch lookup in');
      const count = a.readUInt32LE(32);
      if (count > 0) onBatch(b.keys, b.values, count);
      total += count;
      if (r === -ENOENT) break;
      first = false;
    }
    return total;
  }

  /** The kernel's view of this map. */
  info(): MapInfo {
    return mapInfoOf(this.#fd.raw, `map ${this.name}`);
  }

  /** Pins the map at path (bpffs). Throws BpfError (EEXIST when taken). */
  pin(path: string): void {
    pinObject(this.#fd.raw, path, `map ${this.name}`);
    this.pinnedPath = path;
  }

  /** Removes the map's pin, if any (the map lives while an fd or program holds it). */
  unpin(): void {
    if (this.pinnedPath !== undefined) unpinPath(this.pinnedPath);
    this.pinnedPath = undefined;
  }

  /** Closes the fd. The map itself lives on while pinned or used by a loaded program. Idempotent. */
  close(): void {
    this.#fd.close();
  }
}

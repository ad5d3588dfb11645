/**
 * Key/value codecs: how a JS value is laid out in a map's key or value bytes.
 * Scalars (u8..u64, i32, be16/be32 network order, ipv4, ipv6, mac, bytes) and
 * `struct`, which places fields at fixed, documented offsets and checks that
 * they fit the declared size and do not overlap. Codecs write into a caller's
 * buffer at an offset, so map operations encode without allocating.
 */
import { CodecError } from './errors.js';

/** Encodes/decodes a T in exactly `size` bytes. */
export interface Codec<T> {
  readonly size: number;
  /** Short description for error messages ("u32", "struct backend_key"). */
  readonly name: string;
  /** Writes v at buf[off..off+size). Throws CodecError when v does not fit. */
  encode(v: T, buf: Buffer, off: number): void;
  /** Reads a T from buf[off..off+size). */
  decode(buf: Buffer, off: number): T;
}

/** The JS type a codec handles. */
export type CodecValue<C> = C extends Codec<infer T> ? T : never;

function uint(name: string, bits: 8 | 16 | 32, be: boolean): Codec<number> {
  const max = 2 ** bits - 1;
  const size = bits / 8;
  const check = (v: number) => {
    if (!Number.isInteger(v) || v < 0 || v > max)
      throw new CodecError(`${name}: ${v} is not an integer in 0..${max}`);
  };
  if (bits === 8)
    return { size, name, encode: (v, b, o) => (check(v), (b[o] = v)), decode: (b, o) => b[o]! };
  if (bits === 16) {
    return be
      ? {
          size,
          name,
          encode: (v, b, o) => (check(v), b.writeUInt16BE(v, o)),
          decode: (b, o) => b.readUInt16BE(o),
        }
      : {
          size,
          name,
          encode: (v, b, o) => (check(v), b.writeUInt16LE(v, o)),
          decode: (b, o) => b.readUInt16LE(o),
        };
  }
  return be
    ? {
        size,
        name,
        encode: (v, b, o) => (check(v), b.writeUInt32BE(v, o)),
        decode: (b, o) => b.readUInt32BE(o),
      }
    : {
        size,
        name,
        encode: (v, b, o) => (check(v), b.writeUInt32LE(v, o)),
        decode: (b, o) => b.readUInt32LE(o),
      };
}

/** Unsigned 8-bit. */
export const u8: Codec<number> = uint('u8', 8, false);
/** Unsigned 16-bit, host (little-endian) order. */
export const u16: Codec<number> = uint('u16', 16, false);
/** Unsigned 32-bit, host (little-endian) order. */
export const u32: Codec<number> = uint('u32', 32, false);
/** Unsigned 16-bit in network byte order (ports). */
export const be16: Codec<number> = uint('be16', 16, true);
/** Unsigned 32-bit in network byte order. */
export const be32: Codec<number> = uint('be32', 32, true);

/** Signed 32-bit, host order. */
export const i32: Codec<number> = {
  size: 4,
  name: 'i32',
  encode: (v, b, o) => {
    if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31)
      throw new CodecError(`i32: ${v} is out of range`);
    b.writeInt32LE(v, o);
  },
  decode: (b, o) => b.readInt32LE(o),
};

/** Unsigned 64-bit as bigint, host order. */
export const u64: Codec<bigint> = {
  size: 8,
  name: 'u64',
  encode: (v, b, o) => {
    if (typeof v !== 'bigint' || v < 0n || v >= 1n << 64n)
      throw new CodecError(`u64: ${String(v)} is not a bigint in 0..2^64-1`);
    b.writeBigUInt64LE(v, o);
  },
  decode: (b, o) => b.readBigUInt64LE(o),
};

/** Unsigned 64-bit as a JS number (exact up to 2^53), host order: faster than bigint for counters. */
export const u64n: Codec<number> = {
  size: 8,
  name: 'u64n',
  encode: (v, b, o) => {
    if (!Number.isSafeInteger(v) || v < 0)
      throw new CodecError(`u64n: ${v} is not a safe non-negative integer`);
    b.writeUInt32LE(v % 0x100000000, o);
    b.writeUInt32LE(Math.floor(v / 0x100000000), o + 4);
  },
  decode: (b, o) => b.readUInt32LE(o) + b.readUInt32LE(o + 4) * 0x100000000,
};

/** An IPv4 address as a dotted string, stored in network byte order (4 bytes). */
export const ipv4: Codec<string> = {
  size: 4,
  name: 'ipv4',
  encode: (v, b, o) => {
    const p = typeof v === 'string' ? v.split('.') : [];
    if (p.length !== 4)
      throw new CodecError(
        `ipv4: "${String(v)}" is not a dotted IPv4 address`,
        'write it like 10.0.0.1',
      );
    for (let i = 0; i < 4; i++) {
      const s = p[i]!;
      const n = Number(s);
      if (s === '' || !Number.isInteger(n) || n < 0 || n > 255)
        throw new CodecError(`ipv4: "${v}" is not a dotted IPv4 address`, 'write it like 10.0.0.1');
      b[o + i] = n;
    }
  },
  decode: (b, o) => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`,
};

/** Converts a dotted IPv4 address to the u32 a BPF program sees when it loads it (network order bytes read little-endian). */
export function ipv4ToU32(ip: string): number {
  const b = Buffer.alloc(4);
  ipv4.encode(ip, b, 0);
  return b.readUInt32LE(0);
}

/** An IPv6 address string, stored as 16 bytes in network order. */
export const ipv6: Codec<string> = {
  size: 16,
  name: 'ipv6',
  encode: (v, b, o) => {
    const bytes = parseIPv6(v);
    bytes.copy(b, o);
  },
  decode: (b, o) => {
    const parts: string[] = [];
    for (let i = 0; i < 16; i += 2) parts.push(b.readUInt16BE(o + i).toString(16));
    return compressIPv6(parts);
  },
};

function parseIPv6(v: string): Buffer {
  const bad = () => new CodecError(`ipv6: "${v}" is not an IPv6 address`);
  if (typeof v !== 'string') throw bad();
  const halves = v.split('::');
  if (halves.length > 2) throw bad();
  const parse = (s: string) => (s === '' ? [] : s.split(':'));
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  const fill = 8 - head.length - tail.length;
  if (halves.length === 1 ? head.length !== 8 : fill < 1) throw bad();
  const groups = [...head, ...Array<string>(halves.length === 2 ? fill : 0).fill('0'), ...tail];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw bad();
    out.writeUInt16BE(parseInt(g, 16), i * 2);
  });
  return out;
}

function compressIPv6(parts: string[]): string {
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (parts[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && parts[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return parts.join(':');
  return `${parts.slice(0, best).join(':')}::${parts.slice(best + bestLen).join(':')}`;
}

/** A MAC address "aa:bb:cc:dd:ee:ff" (6 bytes). */
export const mac: Codec<string> = {
  size: 6,
  name: 'mac',
  encode: (v, b, o) => {
    const p = typeof v === 'string' ? v.split(':') : [];
    if (p.length !== 6 || p.some((x) => !/^[0-9a-fA-F]{2}$/.test(x)))
      throw new CodecError(`mac: "${String(v)}" is not a MAC address`);
    p.forEach((x, i) => (b[o + i] = parseInt(x, 16)));
  },
  decode: (b, o) => [...b.subarray(o, o + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':'),
};

/** Raw bytes of a fixed size (a Buffer of exactly `size` bytes; decode returns a copy). */
export function bytes(size: number): Codec<Buffer> {
  return {
    size,
    name: `bytes[${size}]`,
    encode: (v, b, o) => {
      if (!((v as unknown) instanceof Uint8Array))
        throw new CodecError(`bytes[${size}]: expected a Buffer`);
      if (v.length !== size)
        throw new CodecError(`bytes[${size}]: got ${v.length} bytes, expected ${size}`);
      b.set(v, o);
    },
    decode: (b, o) => Buffer.from(b.subarray(o, o + size)),
  };
}

/** Zero bytes (padding); encodes nothing but zeros and decodes to undefined. */
export function pad(size: number): Codec<undefined> {
  return {
    size,
    name: `pad[${size}]`,
    encode: (_v, b, o) => void b.fill(0, o, o + size),
    decode: () => undefined,
  };
}

/** A fixed-length array of one codec, elements packed back to back. */
export function array<T>(elem: Codec<T>, n: number): Codec<T[]> {
  return {
    size: elem.size * n,
    name: `${elem.name}[${n}]`,
    encode: (v, b, o) => {
      if (!Array.isArray(v) || v.length !== n)
        throw new CodecError(`${elem.name}[${n}]: expected an array of ${n}`);
      for (let i = 0; i < n; i++) elem.encode(v[i]!, b, o + i * elem.size);
    },
    decode: (b, o) => {
      const out: T[] = new Array(n);
      for (let i = 0; i < n; i++) out[i] = elem.decode(b, o + i * elem.size);
      return out;
    },
  };
}

/** A field of a struct: its byte offset and codec. */
export type FieldSpec<T> = readonly [offset: number, codec: Codec<T>];

type FieldValue<S> = S extends FieldSpec<infer T> ? T : never;
type Simplify<T> = { [K in keyof T]: T[K] };
/** The object a struct codec takes: padding fields (codec value undefined) are optional. */
export type StructValue<F extends Record<string, FieldSpec<unknown>>> = Simplify<
  { [K in keyof F as undefined extends FieldValue<F[K]> ? never : K]: FieldValue<F[K]> } & {
    [K in keyof F as undefined extends FieldValue<F[K]> ? K : never]?: undefined;
  }
>;

/**
 * A struct at fixed offsets: `struct('lb4_key', 8, { ip: [0, ipv4], port: [4, be16], slot: [6, u16] })`.
 * Bytes not covered by a field are zero. Throws CodecError at definition time when a field
 * does not fit `size` or overlaps another; encode throws when a field is missing or out of range.
 */
export function struct<F extends Record<string, FieldSpec<unknown>>>(
  name: string,
  size: number,
  fields: F,
): Codec<StructValue<F>> {
  const list = Object.entries(fields).map(([k, [off, codec]]) => ({ k, off, codec }));
  const sorted = [...list].sort((a, b) => a.off - b.off);
  let end = 0;
  let prev = '';
  for (const f of sorted) {
    if (!Number.isInteger(f.off) || f.off < 0)
      throw new CodecError(`struct ${name}: field ${f.k} has a bad offset ${f.off}`);
    if (f.off < end)
      throw new CodecError(
        `struct ${name}: field ${f.k} at ${f.off} overlaps ${prev} (which ends at ${end})`,
      );
    end = f.off + f.codec.size;
    prev = f.k;
    if (end > size)
      throw new CodecError(
        `struct ${name}: field ${f.k} (${f.codec.name} at ${f.off}) ends at ${end}, beyond the size ${size}`,
      );
  }
  const needsZero = sorted.reduce((n, f) => n + f.codec.size, 0) !== size;
  return {
    size,
    name: `struct ${name}`,
    encode: (v, b, o) => {
      if (v === null || typeof v !== 'object')
        throw new CodecError(`struct ${name}: expected an object, got ${String(v)}`);
      if (needsZero) b.fill(0, o, o + size);
      const rec = v as Record<string, unknown>;
      for (const f of list) {
        const x = rec[f.k];
        if (x === undefined && !f.codec.name.startsWith('pad'))
          throw new CodecError(`struct ${name}: field ${f.k} is missing`);
        try {
          (f.codec as Codec<unknown>).encode(x, b, o + f.off);
        } catch (e) {
          if (e instanceof CodecError)
            throw new CodecError(`struct ${name}.${f.k}: ${e.message}`, e.hint);
          throw e;
        }
      }
    },
    decode: (b, o) => {
      const out: Record<string, unknown> = {};
      for (const f of list)
        if (!f.codec.name.startsWith('pad')) out[f.k] = f.codec.decode(b, o + f.off);
      return out as StructValue<F>;
    },
  };
}

/** The key of an LPM_TRIE map: a host-order u32 prefix length, then the address bytes. */
export function lpmKey<T>(addr: Codec<T>): Codec<{ prefixLen: number; addr: T }> {
  return struct(`lpm_${addr.name}`, 4 + addr.size, {
    prefixLen: [0, u32],
    addr: [4, addr],
  }) as unknown as Codec<{ prefixLen: number; addr: T }>;
}

/** Checks that a codec has the size a map expects. */
export function checkCodecSize(codec: Codec<unknown>, size: number, what: string): void {
  if (codec.size !== size)
    throw new CodecError(
      `${what}: codec ${codec.name} is ${codec.size} bytes, the map's is ${size}`,
      'make the codec and the map spec agree',
    );
}

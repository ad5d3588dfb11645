/**
 * SPDY/3.1 framing and a server-side session, as much of it as Kubernetes'
 * streaming protocols use (kubectl port-forward, and exec/attach when a
 * client falls back from WebSocket): the frames SYN_STREAM, SYN_REPLY,
 * RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE and DATA of
 * draft-mbelshe-httpbis-spdy-00 (SPDY/3), with 3.1's stream-level flow control.
 *
 * Header blocks: name/value pairs with 32-bit counts and lengths, names
 * lowercased, several values joined by NUL, zlib-compressed with SPDY/3's
 * fixed dictionary. One compression context spans all the header blocks one
 * side sends on a connection, so decoding keeps one inflate stream per
 * session. Encoding writes deflate *stored* blocks (a valid zlib stream that
 * any inflater reads, kubectl's Go `compress/zlib` included): it is
 * synchronous and needs no compression state beyond "the zlib header was sent".
 *
 * Flow control: every DATA frame sent is counted against the stream's window
 * (64 KiB, or SETTINGS_INITIAL_WINDOW_SIZE) and WINDOW_UPDATEs add to it;
 * received data is acknowledged with WINDOW_UPDATE once the consumer has
 * taken half a window. Whether the peer's window *holds back* sending is the
 * session option `enforcePeerWindow`: kubectl's SPDY library (moby/spdystream)
 * neither sends nor honours WINDOW_UPDATE (nor does the kubelet's), so against
 * it a window would stall every transfer after 64 KiB; backpressure then is
 * the transport's (TCP or WebSocket buffers).
 */
import { createInflate, constants as zc, type Inflate } from 'node:zlib';
import { TendrilError } from '../../util/errors.js';

/** SPDY version spoken. */
export const SPDY_VERSION = 3;

/** Control frame types. */
export const FRAME = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

/** Flags of control and data frames. */
export const FLAG_FIN = 0x01;
/** SYN_STREAM flag: the sender will not receive on this stream. */
export const FLAG_UNIDIRECTIONAL = 0x02;

/** RST_STREAM status codes. */
export const RST = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  UNSUPPORTED_VERSION: 4,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
  STREAM_IN_USE: 8,
  STREAM_ALREADY_CLOSED: 9,
  FRAME_TOO_LARGE: 11,
} as const;

/** SETTINGS ids used here. */
export const SETTINGS_INITIAL_WINDOW_SIZE = 7;

/** The initial flow-control window of a stream (SPDY/3). */
export const DEFAULT_WINDOW = 64 * 1024;

/** Largest payload of one DATA frame sent (SPDY allows 2^24-1). */
export const MAX_DATA_FRAME = 16 * 1024;

/** Largest control frame accepted (header blocks of the streaming protocols are tiny). */
export const MAX_CONTROL_FRAME = 1024 * 1024;

/** Largest DATA frame accepted. */
export const MAX_DATA_FRAME_IN = (1 << 24) - 1;

/** Header names (lowercase) to their values. */
export type SpdyHeaders = Record<string, string[]>;

/** One frame, decoded (header blocks still compressed in `block`). */
export type SpdyFrame =
  | {
      type: 'SYN_STREAM';
      streamId: number;
      associatedTo: number;
      priority: number;
      flags: number;
      headers: SpdyHeaders;
    }
  | { type: 'SYN_REPLY'; streamId: number; flags: number; headers: SpdyHeaders }
  | { type: 'HEADERS'; streamId: number; flags: number; headers: SpdyHeaders }
  | { type: 'RST_STREAM'; streamId: number; status: number }
  | {
      type: 'SETTINGS';
      flags: number;
      entries: Array<{ flags: number; id: number; value: number }>;
    }
  | { type: 'PING'; id: number }
  | { type: 'GOAWAY'; lastGoodStreamId: number; status: number }
  | { type: 'WINDOW_UPDATE'; streamId: number; delta: number }
  | { type: 'DATA'; streamId: number; flags: number; data: Buffer };

/** A protocol violation by the peer. */
export class SpdyProtocolError extends TendrilError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('SPDY_PROTOCOL_ERROR', message, options);
  }
}

const DICTIONARY_WORDS = [
  'options', 'head', 'post', 'put', 'delete', 'trace', 'accept', 'accept-charset',
  'accept-encoding', 'accept-language', 'accept-ranges', 'age', 'allow', 'authorization',
  'cache-control', 'connection', 'content-base', 'content-encoding', 'content-language',
  'content-length', 'content-location', 'content-md5', 'content-range', 'content-type', 'date',
  'etag', 'expect', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match',
  'if-range', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'pragma',
  'proxy-authenticate', 'proxy-authorization', 'range', 'referer', 'retry-after', 'server', 'te',
  'trailer', 'transfer-encoding', 'upgrade', 'user-agent', 'vary', 'via', 'warning',
  'www-authenticate', 'method', 'get', 'status', '200 OK', 'version', 'HTTP/1.1', 'url', 'public',
  'set-cookie', 'keep-alive', 'origin',
]; // prettier-ignore

const DICTIONARY_TAIL =
  '100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505' +
  '203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request' +
  '401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented' +
  '503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ' +
  'Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,' +
  'application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=' +
  'gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.';

/** SPDY/3's fixed zlib dictionary for header blocks (1423 bytes; spec section 2.6.10.1). */
export const SPDY_DICTIONARY: Buffer = (() => {
  const parts: Buffer[] = [];
  for (const w of DICTIONARY_WORDS) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(w.length);
    parts.push(len, Buffer.from(w, 'latin1'));
  }
  parts.push(Buffer.from(DICTIONARY_TAIL, 'latin1'));
  return Buffer.concat(parts);
})();

/** Adler-32 of a buffer (zlib's dictionary id). */
export function adler32(buf: Buffer): number {
  let a = 1;
  let b = 0;
  for (let i = 0; i < buf.length; i++) {
    a = (a + buf[i]!) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/** The uncompressed name/value block of `headers` (names lowercased, values joined by NUL). */
export function headerBlock(headers: SpdyHeaders): Buffer {
  const entries = Object.entries(headers);
  const parts: Buffer[] = [u32(entries.length)];
  for (const [name, values] of entries) {
    const n = Buffer.from(name.toLowerCase());
    const v = Buffer.from(values.join('\0'));
    parts.push(u32(n.length), n, u32(v.length), v);
  }
  return Buffer.concat(parts);
}

/** Parses an uncompressed name/value block. */
export function parseHeaderBlock(buf: Buffer): SpdyHeaders {
  const out: SpdyHeaders = {};
  let off = 0;
  const need = (n: number) => {
    if (off + n > buf.length)
      throw new SpdyProtocolError(`header block truncated at byte ${off} of ${buf.length}`);
  };
  need(4);
  const count = buf.readUInt32BE(off);
  off += 4;
  for (let i = 0; i < count; i++) {
    need(4);
    const nl = buf.readUInt32BE(off);
    off += 4;
    need(nl);
    const name = buf.subarray(off, off + nl).toString();
    off += nl;
    need(4);
    const vl = buf.readUInt32BE(off);
    off += 4;
    need(vl);
    const value = buf.subarray(off, off + vl).toString();
    off += vl;
    if (name === '' || name !== name.toLowerCase())
      throw new SpdyProtocolError(`header name "${name}" is empty or not lowercase`);
    if (out[name]) throw new SpdyProtocolError(`header "${name}" appears twice in one block`);
    out[name] = value.split('\0');
  }
  return out;
}

/**
 * Compresses header blocks for one direction of one session: the first block
 * starts the zlib stream (header with the dictionary's id), every block is
 * one or more stored deflate blocks followed by the empty stored block a
 * sync flush writes.
 */
export class HeaderCompressor {
  private started = false;

  /** The compressed form of `headers`, continuing this session's zlib stream. */
  encode(headers: SpdyHeaders): Buffer {
    const raw = headerBlock(headers);
    const parts: Buffer[] = [];
    if (!this.started) {
      this.started = true;
      // CMF 0x78 (deflate, 32 KiB window); FLG with FDICT, FCHECK so (CMF*256+FLG) % 31 == 0
      const cmf = 0x78;
      let flg = 0x20;
      flg += 31 - ((cmf * 256 + flg) % 31);
      parts.push(Buffer.from([cmf, flg]), u32(adler32(SPDY_DICTIONARY)));
    }
    for (let off = 0; off < raw.length; off += 0xffff) {
      const chunk = raw.subarray(off, off + 0xffff);
      const h = Buffer.alloc(5);
      h[0] = 0; // BFINAL 0, BTYPE 00 (stored), padding to the byte
      h.writeUInt16LE(chunk.length, 1);
      h.writeUInt16LE(~chunk.length & 0xffff, 3);
      parts.push(h, chunk);
    }
    // then an empty stored block, as a sync flush ends: an inflater hands out
    // a stored block's bytes only when it reaches the next block, so without
    // it Go's reader would look past the frame for one (and fail there)
    parts.push(SYNC_FLUSH);
    return Buffer.concat(parts);
  }
}

/**
 * Decompresses the header blocks one peer sends on a session: one inflate
 * stream (with SPDY's dictionary) fed block by block, each ending in a sync
 * flush. Calls must not overlap (the session decodes frames in order).
 */
export class HeaderDecompressor {
  private readonly inflate: Inflate;
  private chunks: Buffer[] = [];
  private error: Error | undefined;
  private bytes = 0;

  constructor(private readonly maxBytes = MAX_CONTROL_FRAME) {
    this.inflate = createInflate({ dictionary: SPDY_DICTIONARY });
    this.inflate.on('data', (c: Buffer) => {
      this.bytes += c.length;
      this.chunks.push(c);
    });
    this.inflate.on('error', (err) => (this.error = err));
  }

  /** The headers of one compressed block. */
  decode(block: Buffer): Promise<SpdyHeaders> {
    return new Promise((resolve, reject) => {
      if (this.error)
        return reject(new SpdyProtocolError('header compression failed earlier on this session'));
      const onError = (err: Error) =>
        reject(
          new SpdyProtocolError(`header block does not inflate: ${err.message}`, { cause: err }),
        );
      this.inflate.once('error', onError);
      this.inflate.write(block);
      this.inflate.flush(zc.Z_SYNC_FLUSH, () => {
        this.inflate.off('error', onError);
        const raw = Buffer.concat(this.chunks);
        this.chunks = [];
        const size = this.bytes;
        this.bytes = 0;
        if (this.error)
          return reject(
            new SpdyProtocolError(`header block does not inflate: ${this.error.message}`, {
              cause: this.error,
            }),
          );
        if (size > this.maxBytes)
          return reject(new SpdyProtocolError(`header block inflates past ${this.maxBytes} bytes`));
        try {
          resolve(parseHeaderBlock(raw));
        } catch (err) {
          reject(err as Error);
        }
      });
    });
  }

  /** Frees the inflate stream. */
  close(): void {
    this.inflate.destroy();
  }
}

const SYNC_FLUSH = Buffer.from([0, 0, 0, 0xff, 0xff]);

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

function controlFrame(type: number, flags: number, body: Buffer): Buffer {
  if (body.length > 0xffffff) throw new RangeError(`SPDY control frame of ${body.length} bytes`);
  const h = Buffer.alloc(8);
  h.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  h.writeUInt16BE(type, 2);
  h.writeUInt32BE(((flags & 0xff) << 24) | body.length, 4);
  return Buffer.concat([h, body]);
}

/**
 * Encodes a frame (header blocks compressed with `compressor`, which must be
 * the session's one compressor for this direction).
 */
export function encodeFrame(f: SpdyFrame, compressor: HeaderCompressor): Buffer {
  switch (f.type) {
    case 'SYN_STREAM': {
      const b = Buffer.alloc(10);
      b.writeUInt32BE(f.streamId & 0x7fffffff, 0);
      b.writeUInt32BE(f.associatedTo & 0x7fffffff, 4);
      b[8] = (f.priority & 7) << 5;
      b[9] = 0;
      return controlFrame(
        FRAME.SYN_STREAM,
        f.flags,
        Buffer.concat([b, compressor.encode(f.headers)]),
      );
    }
    case 'SYN_REPLY':
    case 'HEADERS':
      return controlFrame(
        f.type === 'SYN_REPLY' ? FRAME.SYN_REPLY : FRAME.HEADERS,
        f.flags,
        Buffer.concat([u32(f.streamId & 0x7fffffff), compressor.encode(f.headers)]),
      );
    case 'RST_STREAM':
      return controlFrame(FRAME.RST_STREAM, 0, Buffer.concat([u32(f.streamId), u32(f.status)]));
    case 'SETTINGS': {
      const parts = [u32(f.entries.length)];
      for (const e of f.entries)
        parts.push(u32(((e.flags & 0xff) << 24) | (e.id & 0xffffff)), u32(e.value));
      return controlFrame(FRAME.SETTINGS, f.flags, Buffer.concat(parts));
    }
    case 'PING':
      return controlFrame(FRAME.PING, 0, u32(f.id));
    case 'GOAWAY':
      return controlFrame(FRAME.GOAWAY, 0, Buffer.concat([u32(f.lastGoodStreamId), u32(f.status)]));
    case 'WINDOW_UPDATE':
      return controlFrame(FRAME.WINDOW_UPDATE, 0, Buffer.concat([u32(f.streamId), u32(f.delta)]));
    case 'DATA': {
      if (f.data.length > 0xffffff)
        throw new RangeError(`SPDY DATA frame of ${f.data.length} bytes`);
      const h = Buffer.alloc(8);
      h.writeUInt32BE(f.streamId & 0x7fffffff, 0);
      h.writeUInt32BE(((f.flags & 0xff) << 24) | f.data.length, 4);
      return Buffer.concat([h, f.data]);
    }
  }
}

/**
 * Splits a byte stream into frames and decodes them in order (header blocks
 * through one HeaderDecompressor). `push` bytes as they arrive; `next()`
 * resolves the next whole frame or undefined when more bytes are needed.
 */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  readonly decompressor = new HeaderDecompressor();

  /** Appends received bytes. */
  push(data: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
  }

  /** Bytes received but not yet decoded. */
  get buffered(): number {
    return this.buf.length;
  }

  /**
   * The next frame, or undefined if it has not fully arrived. Unknown control
   * frame types are skipped (as SPDY requires). Throws SpdyProtocolError.
   */
  async next(): Promise<SpdyFrame | undefined> {
    for (;;) {
      if (this.buf.length < 8) return undefined;
      const first = this.buf.readUInt32BE(0);
      const word2 = this.buf.readUInt32BE(4);
      const flags = word2 >>> 24;
      const len = word2 & 0xffffff;
      const control = (first & 0x80000000) !== 0;
      if (control && len > MAX_CONTROL_FRAME)
        throw new SpdyProtocolError(`control frame of ${len} bytes (limit ${MAX_CONTROL_FRAME})`);
      if (this.buf.length < 8 + len) return undefined;
      const body = this.buf.subarray(8, 8 + len);
      this.buf = this.buf.subarray(8 + len);
      if (!control) return { type: 'DATA', streamId: first & 0x7fffffff, flags, data: body };
      const version = (first >>> 16) & 0x7fff;
      const type = first & 0xffff;
      if (version !== SPDY_VERSION)
        throw new SpdyProtocolError(`SPDY version ${version} (only 3 is spoken)`);
      const need = (n: number) => {
        if (len < n)
          throw new SpdyProtocolError(`control frame type ${type} too short (${len} bytes)`);
      };
      switch (type) {
        case FRAME.SYN_STREAM:
          need(10);
          return {
            type: 'SYN_STREAM',
            streamId: body.readUInt32BE(0) & 0x7fffffff,
            associatedTo: body.readUInt32BE(4) & 0x7fffffff,
            priority: body[8]! >>> 5,
            flags,
            headers: await this.decompressor.decode(body.subarray(10)),
          };
        case FRAME.SYN_REPLY:
        case FRAME.HEADERS:
          need(4);
          return {
            type: type === FRAME.SYN_REPLY ? 'SYN_REPLY' : 'HEADERS',
            streamId: body.readUInt32BE(0) & 0x7fffffff,
            flags,
            headers: await this.decompressor.decode(body.subarray(4)),
          };
        case FRAME.RST_STREAM:
          need(8);
          return {
            type: 'RST_STREAM',
            streamId: body.readUInt32BE(0) & 0x7fffffff,
            status: body.readUInt32BE(4),
          };
        case FRAME.SETTINGS: {
          need(4);
          const n = body.readUInt32BE(0);
          need(4 + n * 8);
          const entries = [];
          for (let i = 0; i < n; i++) {
            const fi = body.readUInt32BE(4 + i * 8);
            entries.push({
              flags: fi >>> 24,
              id: fi & 0xffffff,
              value: body.readUInt32BE(8 + i * 8),
            });
          }
          return { type: 'SETTINGS', flags, entries };
        }
        case FRAME.PING:
          need(4);
          return { type: 'PING', id: body.readUInt32BE(0) };
        case FRAME.GOAWAY:
          need(4);
          return {
            type: 'GOAWAY',
            lastGoodStreamId: body.readUInt32BE(0) & 0x7fffffff,
            status: len >= 8 ? body.readUInt32BE(4) : 0,
          };
        case FRAME.WINDOW_UPDATE:
          need(8);
          return {
            type: 'WINDOW_UPDATE',
            streamId: body.readUInt32BE(0) & 0x7fffffff,
            delta: body.readUInt32BE(4) & 0x7fffffff,
          };
        default:
          continue; // unknown control frames are ignored
      }
    }
  }

  /** Frees the decompressor. */
  close(): void {
    this.decompressor.close();
  }
}

/** Where a session writes its frames. */
export interface SpdyTransport {
  /** Sends bytes; false when the transport's buffer is full (wait for onDrain). */
  write(data: Buffer): boolean;
  /** Calls fn once the transport can take more. */
  onDrain(fn: () => void): void;
  /** Closes the transport. */
  close(): void;
  /** Stops / restarts reading from the peer (backpressure when a consumer is full). */
  pause?(): void;
  resume?(): void;
}

/** Options of SpdySession. */
export interface SpdySessionOptions {
  transport: SpdyTransport;
  /** A stream the peer opened (reply to it with stream.reply()). */
  onStream: (stream: SpdyStream) => void;
  /** Hold sending when the peer's window is used up (see the module comment). Default false. */
  enforcePeerWindow?: boolean;
  /** Called once when the session ends (GOAWAY, transport closed, protocol error). */
  onClose?: (err?: Error) => void;
}

/**
 * One stream of a session. Data arrives through `onData`, the peer's FIN
 * through `onEnd`, a reset (either side) through `onReset`.
 */
export class SpdyStream {
  onData: (data: Buffer) => void = () => {};
  onEnd: () => void = () => {};
  onReset: (status: number) => void = () => {};
  /** Flow-control window for sending (bytes the peer can take). */
  sendWindow: number;
  /** Bytes received and not yet acknowledged with WINDOW_UPDATE. */
  private unacked = 0;
  replied = false;
  localFin = false;
  remoteFin = false;
  reset = false;
  private pending: Array<{ data: Buffer; fin: boolean }> = [];

  constructor(
    readonly session: SpdySession,
    readonly id: number,
    readonly headers: SpdyHeaders,
    sendWindow: number,
  ) {
    this.sendWindow = sendWindow;
  }

  /** The first value of header `name` (lowercase). */
  header(name: string): string | undefined {
    return this.headers[name]?.[0];
  }

  /** Answers the stream (SYN_REPLY), optionally closing our side at once. */
  reply(headers: SpdyHeaders = {}, fin = false): void {
    if (this.replied || this.reset) return;
    this.replied = true;
    if (fin) this.localFin = true;
    this.session.send({ type: 'SYN_REPLY', streamId: this.id, flags: fin ? FLAG_FIN : 0, headers });
    this.session.maybeForget(this);
  }

  /** Sends data (split into frames; held while the peer's window is closed if enforced). */
  write(data: Buffer): boolean {
    if (this.localFin || this.reset) return false;
    this.pending.push({ data, fin: false });
    return this.flush();
  }

  /** Closes our side (DATA with FIN) after any pending data. */
  end(): void {
    if (this.localFin || this.reset) return;
    this.localFin = true;
    this.pending.push({ data: Buffer.alloc(0), fin: true });
    this.flush();
  }

  /** Resets the stream (RST_STREAM). */
  resetStream(status: number = RST.CANCEL): void {
    if (this.reset) return;
    this.reset = true;
    this.pending = [];
    this.session.send({ type: 'RST_STREAM', streamId: this.id, status });
    this.session.forget(this);
    this.onReset(status);
  }

  /** Tells the session `n` received bytes were consumed (sends WINDOW_UPDATE as the window drains). */
  consumed(n: number): void {
    this.unacked += n;
    if (this.unacked >= this.session.receiveWindow / 2 && !this.remoteFin && !this.reset) {
      this.session.send({ type: 'WINDOW_UPDATE', streamId: this.id, delta: this.unacked });
      this.unacked = 0;
    }
  }

  /** Sends what the window allows; true when everything queued went out. */
  flush(): boolean {
    const enforce = this.session.enforcePeerWindow;
    while (this.pending.length && !this.reset) {
      const p = this.pending[0]!;
      if (p.data.length === 0) {
        this.pending.shift();
        if (p.fin) {
          this.session.send({ type: 'DATA', streamId: this.id, flags: FLAG_FIN, data: p.data });
          this.session.maybeForget(this);
        }
        continue;
      }
      const room = enforce ? Math.min(this.sendWindow, MAX_DATA_FRAME) : MAX_DATA_FRAME;
      if (room <= 0) return false;
      const part = p.data.subarray(0, room);
      p.data = p.data.subarray(part.length);
      this.sendWindow -= part.length;
      this.session.send({ type: 'DATA', streamId: this.id, flags: 0, data: part });
    }
    return this.pending.length === 0;
  }

  /** Bytes queued waiting for the peer's window. */
  get queued(): number {
    return this.pending.reduce((n, p) => n + p.data.length, 0);
  }
}

/**
 * The server side of a SPDY/3.1 session: accepts the peer's streams (odd
 * ids), answers PING, honours GOAWAY and RST_STREAM, tracks windows.
 */
export class SpdySession {
  readonly reader = new FrameReader();
  private readonly compressor = new HeaderCompressor();
  private readonly streams = new Map<number, SpdyStream>();
  private lastPeerStream = 0;
  private pumping = false;
  private running: Promise<void> = Promise.resolve();
  private closed = false;
  private initialSendWindow = DEFAULT_WINDOW;
  readonly receiveWindow = DEFAULT_WINDOW;
  readonly enforcePeerWindow: boolean;

  constructor(private readonly o: SpdySessionOptions) {
    this.enforcePeerWindow = o.enforcePeerWindow ?? false;
  }

  /** Open streams. */
  get openStreams(): number {
    return this.streams.size;
  }

  /** Feeds bytes received from the transport. */
  receive(data: Buffer): void {
    if (this.closed) return;
    this.reader.push(data);
    if (!this.pumping) this.running = this.pump();
  }

  /** Resolves once every frame received so far has been handled. */
  async idle(): Promise<void> {
    await this.running;
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      // next() resolves undefined once the buffered bytes hold no whole frame;
      // bytes that arrive meanwhile are in the buffer before it looks again
      for (;;) {
        const f = await this.reader.next();
        if (!f || this.closed) break;
        this.handle(f);
      }
    } catch (err) {
      if (!this.closed) {
        this.send({ type: 'GOAWAY', lastGoodStreamId: this.lastPeerStream, status: 1 });
        this.close(err as Error);
      }
    } finally {
      this.pumping = false;
    }
  }

  private handle(f: SpdyFrame): void {
    switch (f.type) {
      case 'SYN_STREAM': {
        if (f.streamId % 2 !== 1 || f.streamId <= this.lastPeerStream) {
          this.send({ type: 'RST_STREAM', streamId: f.streamId, status: RST.PROTOCOL_ERROR });
          return;
        }
        this.lastPeerStream = f.streamId;
        const s = new SpdyStream(this, f.streamId, f.headers, this.initialSendWindow);
        if (f.flags & FLAG_FIN) s.remoteFin = true;
        if (f.flags & FLAG_UNIDIRECTIONAL) s.localFin = true;
        this.streams.set(f.streamId, s);
        this.o.onStream(s);
        if (s.remoteFin) s.onEnd();
        return;
      }
      case 'DATA': {
        const s = this.streams.get(f.streamId);
        if (!s) {
          this.send({ type: 'RST_STREAM', streamId: f.streamId, status: RST.INVALID_STREAM });
          return;
        }
        if (s.remoteFin) {
          s.resetStream(RST.STREAM_ALREADY_CLOSED);
          return;
        }
        if (f.data.length) s.onData(f.data);
        if (f.flags & FLAG_FIN) {
          s.remoteFin = true;
          s.onEnd();
          this.maybeForget(s);
        }
        return;
      }
      case 'RST_STREAM': {
        const s = this.streams.get(f.streamId);
        if (!s) return;
        s.reset = true;
        this.forget(s);
        s.onReset(f.status);
        return;
      }
      case 'WINDOW_UPDATE': {
        const s = this.streams.get(f.streamId);
        if (!s) return;
        s.sendWindow += f.delta;
        if (s.sendWindow > 0x7fffffff) {
          s.resetStream(RST.FLOW_CONTROL_ERROR);
          return;
        }
        s.flush();
        return;
      }
      case 'SETTINGS':
        for (const e of f.entries)
          if (e.id === SETTINGS_INITIAL_WINDOW_SIZE) {
            const delta = e.value - this.initialSendWindow;
            this.initialSendWindow = e.value;
            for (const s of this.streams.values()) {
              s.sendWindow += delta;
              s.flush();
            }
          }
        return;
      case 'PING':
        // the peer's pings (odd ids from a client) are echoed
        if (f.id % 2 === 1) this.send(f);
        return;
      case 'GOAWAY':
        this.close();
        return;
      case 'SYN_REPLY':
      case 'HEADERS':
        return; // the server opens no streams; HEADERS carry nothing used here
    }
  }

  /** Sends one frame. */
  send(f: SpdyFrame): boolean {
    if (this.closed) return false;
    return this.o.transport.write(encodeFrame(f, this.compressor));
  }

  /** Calls fn once the transport drained. */
  onDrain(fn: () => void): void {
    this.o.transport.onDrain(fn);
  }

  /** Drops a stream that is closed both ways. */
  maybeForget(s: SpdyStream): void {
    if (s.localFin && s.remoteFin && s.queued === 0) this.forget(s);
  }

  /** Drops a stream. */
  forget(s: SpdyStream): void {
    this.streams.delete(s.id);
  }

  /** Sends GOAWAY and closes the transport. */
  goAway(): void {
    if (this.closed) return;
    this.send({ type: 'GOAWAY', lastGoodStreamId: this.lastPeerStream, status: 0 });
    this.close();
  }

  /** Ends the session: every open stream is reset locally, the transport closed. */
  close(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of [...this.streams.values()]) {
      s.reset = true;
      s.onReset(RST.CANCEL);
    }
    this.streams.clear();
    this.reader.close();
    this.o.transport.close();
    this.o.onClose?.(err);
  }
}

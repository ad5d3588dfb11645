import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  createDeflate,
  createInflate,
  constants as zc,
  type Deflate,
  type Inflate,
} from 'node:zlib';
import {
  DEFAULT_WINDOW,
  FLAG_FIN,
  FrameReader,
  HeaderCompressor,
  HeaderDecompressor,
  SPDY_DICTIONARY,
  SpdySession,
  adler32,
  encodeFrame,
  headerBlock,
  parseHeaderBlock,
  type SpdyFrame,
  type SpdyStream,
} from './spdy.js';

/** Runs a zlib stream over one block with a sync flush, as Go's compressor does per frame. */
function through(z: Deflate | Inflate, block: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const onData = (c: Buffer) => chunks.push(c);
    z.on('data', onData);
    z.once('error', reject);
    z.write(block);
    z.flush(zc.Z_SYNC_FLUSH, () => {
      z.off('data', onData);
      resolve(Buffer.concat(chunks));
    });
  });
}

async function readAll(bytes: Buffer, chunk = bytes.length): Promise<SpdyFrame[]> {
  const r = new FrameReader();
  const out: SpdyFrame[] = [];
  for (let i = 0; i < bytes.length; i += chunk) {
    r.push(bytes.subarray(i, i + chunk));
    for (let f = await r.next(); f; f = await r.next()) out.push(f);
  }
  r.close();
  return out;
}

describe('SPDY/3.1 framing', () => {
  it('has SPDY/3 dictionary of 1423 bytes', () => {
    assert.equal(SPDY_DICTIONARY.length, 1423);
    assert.equal(SPDY_DICTIONARY.subarray(0, 11).toString('latin1'), '\0\0\0\u0007options');
    assert.ok(SPDY_DICTIONARY.toString('latin1').endsWith(',enq=0.'));
  });

  it('round-trips every frame type, also fed one byte at a time', async () => {
    const c = new HeaderCompressor();
    const frames: SpdyFrame[] = [
      {
        type: 'SYN_STREAM',
        streamId: 1,
        associatedTo: 0,
        priority: 3,
        flags: 0,
        headers: { streamtype: ['error'], port: ['8080'], requestid: ['0'] },
      },
      { type: 'SYN_REPLY', streamId: 1, flags: 0, headers: {} },
      { type: 'HEADERS', streamId: 1, flags: FLAG_FIN, headers: { a: ['1', '2'] } },
      { type: 'DATA', streamId: 1, flags: 0, data: Buffer.from('GET / HTTP/1.1\r\n\r\n') },
      { type: 'DATA', streamId: 1, flags: FLAG_FIN, data: Buffer.alloc(0) },
      { type: 'RST_STREAM', streamId: 3, status: 5 },
      { type: 'SETTINGS', flags: 0, entries: [{ flags: 1, id: 7, value: 1 << 20 }] },
      { type: 'PING', id: 7 },
      { type: 'WINDOW_UPDATE', streamId: 1, delta: 4096 },
      { type: 'GOAWAY', lastGoodStreamId: 3, status: 0 },
    ];
    const bytes = Buffer.concat(frames.map((f) => encodeFrame(f, c)));
    assert.deepEqual(await readAll(bytes), frames);
    assert.deepEqual(await readAll(bytes, 1), frames);
  });

  it('skips unknown control frames and refuses another SPDY version', async () => {
    const unknown = Buffer.from([0x80, 3, 0, 0x0a, 0, 0, 0, 2, 9, 9]);
    const ping = encodeFrame({ type: 'PING', id: 1 }, new HeaderCompressor());
    assert.deepEqual(await readAll(Buffer.concat([unknown, ping])), [{ type: 'PING', id: 1 }]);
    const v2 = Buffer.from([0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1]);
    await assert.rejects(readAll(v2), /SPDY version 2/);
  });

  it('decodes header blocks that share one zlib context across frames (as Go writes them)', async () => {
    const deflate = createDeflate({ dictionary: SPDY_DICTIONARY, level: 9 });
    const blocks: Buffer[] = [];
    const headers = [
      { streamtype: ['error'], port: ['8080'], requestid: ['0'] },
      { streamtype: ['data'], port: ['8080'], requestid: ['0'] },
      { streamtype: ['error'], port: ['8080'], requestid: ['1'] },
    ];
    for (const h of headers) blocks.push(await through(deflate, headerBlock(h)));
    deflate.destroy();
    // later blocks refer back into earlier ones: alone they do not decode
    assert.ok(blocks[1]!.length < blocks[0]!.length);
    const alone = new HeaderDecompressor();
    await assert.rejects(alone.decode(blocks[1]!));
    alone.close();
    const frames = blocks.map((b, i) => {
      const fixed = Buffer.alloc(10);
      fixed.writeUInt32BE(2 * i + 1, 0);
      const body = Buffer.concat([fixed, b]);
      const h = Buffer.from([0x80, 3, 0, 1, 0, 0, 0, 0]);
      h.writeUInt32BE(body.length, 4);
      return Buffer.concat([h, body]);
    });
    const got = await readAll(Buffer.concat(frames));
    assert.deepEqual(
      got.map((f) => (f.type === 'SYN_STREAM' ? f.headers : undefined)),
      headers,
    );
  });

  it('encodes header blocks one inflate stream reads in sequence (dictionary id in the zlib header)', async () => {
    const c = new HeaderCompressor();
    const a = c.encode({ 'x-stream-protocol-version': ['portforward.k8s.io'] });
    const b = c.encode({ port: ['80'], many: ['a', 'b', 'c'] });
    assert.equal(a.readUInt32BE(2), adler32(SPDY_DICTIONARY));
    // every block ends as a sync flush does (Go's reader needs it to hand out the bytes)
    for (const x of [a, b]) assert.deepEqual([...x.subarray(-5)], [0, 0, 0, 0xff, 0xff]);
    const inflate = createInflate({ dictionary: SPDY_DICTIONARY });
    assert.deepEqual(parseHeaderBlock(await through(inflate, a)), {
      'x-stream-protocol-version': ['portforward.k8s.io'],
    });
    assert.deepEqual(parseHeaderBlock(await through(inflate, b)), {
      port: ['80'],
      many: ['a', 'b', 'c'],
    });
    inflate.destroy();
    // names are sent lowercased
    assert.deepEqual(parseHeaderBlock(headerBlock({ StreamType: ['data'] })), {
      streamtype: ['data'],
    });
    assert.throws(() => parseHeaderBlock(Buffer.from([0, 0, 0, 2, 0, 0, 0, 1])), /truncated/);
  });
});

/** A session whose transport collects what it sends, decoded. */
function harness(enforcePeerWindow: boolean) {
  const sent: Buffer[] = [];
  const streams: SpdyStream[] = [];
  const session = new SpdySession({
    transport: { write: (d) => (sent.push(d), true), onDrain: (fn) => fn(), close: () => {} },
    onStream: (s) => {
      streams.push(s);
      s.reply();
    },
    enforcePeerWindow,
  });
  const client = new HeaderCompressor();
  const feed = async (f: SpdyFrame) => {
    session.receive(encodeFrame(f, client));
    await session.idle();
  };
  const frames = async () => {
    const all = await readAll(Buffer.concat(sent.splice(0)));
    return all;
  };
  /** The peer opens stream STREAMID (priority 0, no flags) with HEADERS. */
  const openStream = (streamId = 1, headers: Record<string, string[]> = {}) =>
    feed({ type: 'SYN_STREAM', streamId, associatedTo: 0, priority: 0, flags: 0, headers });
  return { session, streams, feed, frames, openStream };
}

/** The bytes of the DATA frames among FS. */
const dataLen = (fs: SpdyFrame[]) =>
  fs.reduce((n, f) => n + (f.type === 'DATA' ? f.data.length : 0), 0);

describe('SPDY session', () => {
  it('replies to streams, echoes pings, delivers data and FIN, and resets', async () => {
    const h = harness(false);
    const got: string[] = [];
    await h.openStream(1, { port: ['80'] });
    const s = h.streams[0]!;
    assert.equal(s.header('port'), '80');
    s.onData = (d) => got.push(d.toString());
    s.onEnd = () => got.push('<fin>');
    await h.feed({ type: 'DATA', streamId: 1, flags: 0, data: Buffer.from('abc') });
    await h.feed({ type: 'DATA', streamId: 1, flags: FLAG_FIN, data: Buffer.from('d') });
    await h.feed({ type: 'PING', id: 9 });
    assert.deepEqual(got, ['abc', 'd', '<fin>']);
    s.write(Buffer.from('answer'));
    s.end();
    const out = await h.frames();
    assert.deepEqual(
      out.map((f) => f.type),
      ['SYN_REPLY', 'PING', 'DATA', 'DATA'],
    );
    assert.equal(h.session.openStreams, 0, 'closed both ways, the stream is forgotten');
    // a stream id that goes backwards is refused
    await h.openStream();
    const rst = await h.frames();
    assert.deepEqual(rst, [{ type: 'RST_STREAM', streamId: 1, status: 1 }]);
    // the peer resetting a stream reaches its handler
    await h.openStream(3);
    let reset = 0;
    h.streams[1]!.onReset = (st) => (reset = st);
    await h.feed({ type: 'RST_STREAM', streamId: 3, status: 5 });
    assert.equal(reset, 5);
  });

  it('waits for the rest of a frame without spinning', async () => {
    const h = harness(false);
    await h.openStream();
    const got: string[] = [];
    h.streams[0]!.onData = (d) => got.push(d.toString());
    const frame = encodeFrame(
      { type: 'DATA', streamId: 1, flags: 0, data: Buffer.from('0123456789') },
      new HeaderCompressor(),
    );
    h.session.receive(frame.subarray(0, 12));
    // a session that re-ran its frame loop on an incomplete frame would starve this timer
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(got, []);
    h.session.receive(frame.subarray(12));
    await h.session.idle();
    assert.deepEqual(got, ['0123456789']);
  });

  it('holds data past the peer window until WINDOW_UPDATE when enforcing; SETTINGS moves the window', async () => {
    const h = harness(true);
    await h.openStream();
    const s = h.streams[0]!;
    assert.equal(s.write(Buffer.alloc(100_000, 1)), false);
    assert.equal(dataLen(await h.frames()), DEFAULT_WINDOW);
    assert.equal(s.queued, 100_000 - DEFAULT_WINDOW);
    await h.feed({ type: 'WINDOW_UPDATE', streamId: 1, delta: 10_000 });
    assert.equal(dataLen(await h.frames()), 10_000);
    await h.feed({
      type: 'SETTINGS',
      flags: 0,
      entries: [{ flags: 0, id: 7, value: DEFAULT_WINDOW + 50_000 }],
    });
    assert.equal(dataLen(await h.frames()), 100_000 - DEFAULT_WINDOW - 10_000);
    assert.equal(s.queued, 0);
  });

  it('sends everything at once when not enforcing (kubectl does not send WINDOW_UPDATE)', async () => {
    const h = harness(false);
    await h.openStream();
    assert.equal(h.streams[0]!.write(Buffer.alloc(200_000)), true);
    const fs = await h.frames();
    assert.equal(dataLen(fs), 200_000);
  });

  it('acknowledges consumed data with WINDOW_UPDATE every half window', async () => {
    const h = harness(false);
    await h.openStream();
    const s = h.streams[0]!;
    s.onData = (d) => s.consumed(d.length);
    await h.frames();
    await h.feed({ type: 'DATA', streamId: 1, flags: 0, data: Buffer.alloc(20_000) });
    assert.deepEqual(await h.frames(), []);
    await h.feed({ type: 'DATA', streamId: 1, flags: 0, data: Buffer.alloc(20_000) });
    assert.deepEqual(await h.frames(), [{ type: 'WINDOW_UPDATE', streamId: 1, delta: 40_000 }]);
  });
});

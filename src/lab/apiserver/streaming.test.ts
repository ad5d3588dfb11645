import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CHANNEL,
  decodeFrame,
  encodeFrame,
  exitStatus,
  pickProtocol,
  sinceNanos,
  splitLines,
  tailBuffer,
} from './streaming.js';

describe('remote-command framing', () => {
  it('puts the channel byte before the data and reads it back', () => {
    const f = encodeFrame(CHANNEL.stdout, 'hi\n');
    assert.deepEqual([...f], [1, 0x68, 0x69, 0x0a]);
    const d = decodeFrame(f)!;
    assert.equal(d.channel, 1);
    assert.equal(d.data.toString(), 'hi\n');
    assert.equal(decodeFrame(Buffer.alloc(0)), undefined);
    // v5 close of stdin: channel 255 carrying the closed channel
    assert.deepEqual(decodeFrame(Buffer.from([255, 0])), { channel: 255, data: Buffer.from([0]) });
  });

  it('prefers v5 over v4 and refuses other protocols', () => {
    assert.equal(
      pickProtocol(['v4.channel.k8s.io', ' v5.channel.k8s.io', 'channel.k8s.io']),
      'v5.channel.k8s.io',
    );
    assert.equal(pickProtocol(['v4.channel.k8s.io']), 'v4.channel.k8s.io');
    assert.equal(pickProtocol(['channel.k8s.io', 'SPDY/3.1+portforward.k8s.io']), undefined);
  });

  it('reports exit codes as Kubernetes does (NonZeroExitCode, ExitCode cause)', () => {
    assert.deepEqual(exitStatus(0, ['true']), {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Success',
    });
    const s = exitStatus(3, ['sh', '-c', 'exit 3']) as {
      status: string;
      reason: string;
      details: { causes: Array<{ reason: string; message: string }> };
    };
    assert.equal(s.status, 'Failure');
    assert.equal(s.reason, 'NonZeroExitCode');
    assert.deepEqual(s.details.causes, [{ reason: 'ExitCode', message: '3' }]);
  });

  it('tails lines', () => {
    assert.equal(tailBuffer(Buffer.from('a\nb\nc\n'), 2).toString(), 'b\nc\n');
    assert.equal(tailBuffer(Buffer.from('a\nb\nc'), 1).toString(), 'c');
    assert.equal(tailBuffer(Buffer.from('a\nb\n'), 0).toString(), '');
    assert.equal(tailBuffer(Buffer.from('a\nb\n'), -1).toString(), 'a\nb\n');
  });

  it('splits a log into lines with their offsets (the last may lack its newline)', () => {
    const got = splitLines(Buffer.from('ab\ncd\ne'), 100).map((l) => [l.offset, l.line.toString()]);
    assert.deepEqual(got, [
      [100, 'ab\n'],
      [103, 'cd\n'],
      [106, 'e'],
    ]);
    assert.deepEqual(splitLines(Buffer.alloc(0), 0), []);
  });

  it('reads sinceSeconds and sinceTime as nanoseconds, refusing both at once', () => {
    const now = 1_765_000_000_000;
    assert.equal(
      sinceNanos(new URLSearchParams('sinceSeconds=5'), now),
      BigInt(now - 5000) * 1_000_000n,
    );
    assert.equal(
      sinceNanos(new URLSearchParams('sinceTime=2025-12-06T05:46:40.5Z')),
      1_765_000_000_500_000_000n,
    );
    assert.equal(sinceNanos(new URLSearchParams('')), undefined);
    assert.throws(() => sinceNanos(new URLSearchParams('sinceTime=yesterday')), /not an RFC 3339/);
    assert.throws(
      () => sinceNanos(new URLSearchParams('sinceSeconds=1&sinceTime=2025-12-06T05:46:40Z')),
      /at most one/,
    );
    assert.throws(() => sinceNanos(new URLSearchParams('sinceSeconds=0')), /sinceSeconds/);
  });
});

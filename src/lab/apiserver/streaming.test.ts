import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CHANNEL,
  decodeFrame,
  encodeFrame,
  exitStatus,
  pickProtocol,
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
});

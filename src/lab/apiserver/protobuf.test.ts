import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from '../../k8s/status.js';
import { decodeProtobufObject, PROTOBUF_MAGIC } from './protobuf.js';

// A minimal protobuf writer for the test: (field, value) pairs.
function varint(n: number): Buffer {
  const out: number[] = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}
type F = [number, number | string | Buffer];
function msg(...fields: F[]): Buffer {
  return Buffer.concat(
    fields.map(([n, v]) =>
      typeof v === 'number'
        ? Buffer.concat([varint(n << 3), varint(v)])
        : Buffer.concat([
            varint((n << 3) | 2),
            varint(Buffer.byteLength(v)),
            typeof v === 'string' ? Buffer.from(v) : v,
          ]),
    ),
  );
}
function envelope(apiVersion: string, kind: string, raw: Buffer): Buffer {
  return Buffer.concat([PROTOBUF_MAGIC, msg([1, msg([1, apiVersion], [2, kind])], [2, raw])]);
}
const mapEntry = (k: string, v: string | Buffer) => msg([1, k], [2, v]);

describe('protobuf request bodies', () => {
  it('decodes a Deployment as kubectl create deployment sends it', () => {
    const meta = msg([1, 'web'], [4, ''], [11, mapEntry('app', 'web')]);
    const container = msg([1, 'busybox'], [2, 'busybox'], [5, ''], [8, msg()]);
    const template = msg([1, msg([11, mapEntry('app', 'web')])], [2, msg([2, container])]);
    const spec = msg([1, 0], [2, msg([1, mapEntry('app', 'web')])], [3, template], [4, msg()]);
    const d = decodeProtobufObject(
      envelope('apps/v1', 'Deployment', msg([1, meta], [2, spec], [3, msg()])),
    );
    assert.equal(d.kind, 'Deployment');
    assert.equal(d.apiVersion, 'apps/v1');
    assert.deepEqual(d.metadata, { name: 'web', labels: { app: 'web' } });
    assert.equal(d.spec.replicas, 0); // a pointer field: zero is kept
    assert.deepEqual(d.spec.selector, { matchLabels: { app: 'web' } });
    assert.deepEqual(d.spec.template.spec.containers, [
      { name: 'busybox', image: 'busybox', resources: {} },
    ]);
  });

  it('decodes Secret bytes as base64 and IntOrString ports', () => {
    const s = decodeProtobufObject(
      envelope(
        'v1',
        'Secret',
        msg([1, msg([1, 's'])], [2, mapEntry('k', Buffer.from('v'))], [3, 'Opaque']),
      ),
    );
    assert.deepEqual(s.data, { k: 'dg==' });
    assert.equal(s.type, 'Opaque');
    const port = msg([3, 80], [4, msg([1, 0], [2, 8080])]);
    const named = msg([3, 81], [4, msg([1, 1], [3, 'http'])]);
    const svc = decodeProtobufObject(
      envelope(
        'v1',
        'Service',
        msg([1, msg([1, 'x'])], [2, msg([1, port], [1, named], [4, 'ClusterIP'])]),
      ),
    );
    assert.deepEqual(svc.spec.ports, [
      { port: 80, targetPort: 8080 },
      { port: 81, targetPort: 'http' },
    ]);
  });

  it('refuses what it does not understand with 415, naming it', () => {
    const bad = (body: Buffer, re: RegExp) =>
      assert.throws(
        () => decodeProtobufObject(body),
        (e: unknown) => e instanceof ApiError && e.httpCode === 415 && re.test(e.message),
      );
    bad(Buffer.from('{"kind":"Pod"}'), /magic/);
    bad(envelope('v1', 'ReplicationController', msg()), /kind "ReplicationController"/);
    // a non-zero field outside the known ones is refused, not dropped
    bad(envelope('v1', 'ConfigMap', msg([1, msg([1, 'c'])], [9, 'x'])), /field 9 of ConfigMap/);
  });
});

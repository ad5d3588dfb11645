/**
 * The mesh-scale churn's load generator: etcd's KV.Put over one HTTP/2
 * connection with the gRPC framing written by hand (a PutRequest is two
 * length-delimited protobuf fields). The same request the etcd3 client
 * sends, at a fraction of its CPU: the generator stands for 250 other
 * clusters' clustermesh-apiservers, and in a CPU profile of the churn the
 * etcd3/grpc-js call path (builder, retry policy, interceptors, call
 * credentials) was about half of the bench process's busy time, taken from
 * the processes being measured on a 2-CPU machine.
 */
import { connect, type ClientHttp2Session } from 'node:http2';

/** A protobuf varint. */
function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

/** The gRPC message frame of etcdserverpb.PutRequest { key = 1; value = 2 }. */
export function putFrame(key: string, value: string): Buffer {
  const k = Buffer.from(key);
  const v = Buffer.from(value);
  const msg = Buffer.concat([
    Buffer.of(0x0a),
    varint(k.length),
    k,
    Buffer.of(0x12),
    varint(v.length),
    v,
  ]);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(msg.length, 1); // byte 0: not compressed
  return Buffer.concat([head, msg]);
}

/** Puts into one etcd (plain http, h2c) over one HTTP/2 connection. */
export class RawEtcdPut {
  private readonly session: ClientHttp2Session;
  private error: Error | undefined;

  constructor(readonly url: string) {
    if (!url.startsWith('http://'))
      throw new Error(`RawEtcdPut: ${url} is not a plain http:// etcd client URL`);
    this.session = connect(url);
    this.session.on('error', (err) => (this.error = err));
  }

  /** Resolves when etcd acknowledged the put (grpc-status 0); rejects with etcd's status and message otherwise. */
  put(key: string, value: string): Promise<void> {
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      const req = this.session.request({
        ':method': 'POST',
        ':path': '/etcdserverpb.KV/Put',
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      let status: string | undefined;
      let message = '';
      const took = (h: Record<string, unknown>) => {
        if (h['grpc-status'] === undefined) return;
        status = String(h['grpc-status'] as string);
        message = decodeURIComponent(String((h['grpc-message'] as string | undefined) ?? ''));
      };
      req.on('response', took); // a trailers-only answer (an error) has its status here
      req.on('trailers', took);
      req.on('data', () => {}); // the PutResponse: its header's revision is not needed
      req.on('error', reject);
      req.on('end', () => {
        if (status === '0') resolve();
        else
          reject(
            new Error(`etcd put ${key} at ${this.url}: grpc-status ${status ?? 'none'} ${message}`),
          );
      });
      req.end(putFrame(key, value));
    });
  }

  close(): Promise<void> {
    return new Promise((r) => this.session.close(() => r()));
  }
}

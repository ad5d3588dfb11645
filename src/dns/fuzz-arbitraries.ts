/**
 * fast-check arbitraries of DNS queries for fuzzing the cluster DNS server:
 * random bytes, mutations of a valid query, many compressed questions and
 * queries with EDNS(0) payload sizes. Shared by src/lab/apiserver/fuzz.test.ts
 * and the fuzz benchmark (bench/fuzz).
 */
import dnsPacket from 'dns-packet';
import fc from 'fast-check';

/** Names the fuzzers ask for (cluster names, one with many records, junk). */
export const dnsNames = [
  'a.default.svc.cluster.local',
  'big.default.svc.cluster.local',
  'big.default.svc.clusterset.local',
  '_http._tcp.big.default.svc.cluster.local',
  'x.y',
  'cluster.local',
  '.',
];

/** A valid one-question query for `name`, optionally with an OPT record of `udpSize`. */
export function encodeQuery(name: string, type: string, udpSize?: number): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id: 1,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: type as 'A', name, class: 'IN' }],
    ...(udpSize !== undefined
      ? {
          additionals: [
            { type: 'OPT', name: '.', udpPayloadSize: udpSize, flags: 0, options: [] } as never,
          ],
        }
      : {}),
  });
}

/** A query with `n` questions, all but the first a 2-byte compression pointer to the first name. */
export function compressedQuestions(n: number, name: string): Buffer {
  const first = encodeQuery(name, 'A');
  const extra = Buffer.alloc((n - 1) * 6);
  for (let i = 0; i < n - 1; i++) {
    extra.writeUInt16BE(0xc00c, i * 6);
    extra.writeUInt16BE(1, i * 6 + 2);
    extra.writeUInt16BE(1, i * 6 + 4);
  }
  const q = Buffer.concat([first, extra]);
  q.writeUInt16BE(n, 4);
  return q;
}

const typeArb = fc.constantFrom('A', 'AAAA', 'SRV', 'PTR', 'TXT', 'ANY', 'CNAME', 'NS', 'SOA');

/** Valid queries, with and without EDNS sizes (0, below 512, large, over 4096). */
export const validQueryArb = fc
  .tuple(
    fc.oneof(fc.constantFrom(...dnsNames), fc.domain()),
    typeArb,
    fc.option(fc.oneof(fc.integer({ min: 0, max: 65535 }), fc.constantFrom(0, 511, 512, 4096))),
  )
  .map(([n, t, size]) => encodeQuery(n, t, size ?? undefined));

/** Random bytes (mostly not DNS at all). */
export const randomPacketArb = fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b));

/** Several compressed questions (2..400). */
export const manyQuestionsArb = fc
  .tuple(fc.integer({ min: 2, max: 400 }), fc.constantFrom(...dnsNames.slice(0, 3)))
  .map(([n, name]) => compressedQuestions(n, name));

/** A valid query with bytes overwritten (header counts, pointers, lengths) and junk appended. */
export const mutatedQueryArb = fc
  .tuple(
    validQueryArb,
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
    fc.uint8Array({ maxLength: 64 }),
  )
  .map(([q, edits, tail]) => {
    const b = Buffer.concat([q, Buffer.from(tail)]);
    for (const [i, v] of edits) b[i % b.length] = v;
    return b;
  });

/** Any of the above. */
export const dnsQueryArb = fc.oneof(
  validQueryArb,
  randomPacketArb,
  manyQuestionsArb,
  mutatedQueryArb,
);

/** The largest UDP answer a query may get: 512, or its EDNS size up to 4096. */
export function udpAnswerLimit(query: Buffer): number {
  try {
    const d = dnsPacket.decode(query);
    const opt = (d.additionals ?? []).find((a) => a.type === 'OPT') as
      { udpPayloadSize?: number } | undefined;
    return Math.max(512, Math.min(opt?.udpPayloadSize ?? 512, 4096));
  } catch {
    return 512;
  }
}
